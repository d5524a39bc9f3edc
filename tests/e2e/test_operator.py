# SPDX-License-Identifier: BSD-3-Clause
"""The operator's API (docs/api.md, "Operator API") and the fanoutctl commands
that read it: status, connections list|kill, channel info. Only [auth]
admins may call it; everyone else gets 403, nobody without a token gets in."""
import json
import os
import subprocess
import time

import pytest
import websockets

from conftest import SECRET, Client, Server, channel_id, free_port, run, unique

ADMIN = "ops"


@pytest.fixture(scope="module")
def node():
    s = Server(extra_ini=f"[auth]\nadmins = {ADMIN}, second.admin\n")
    yield s
    assert s.stop() == 0


def ctl(node, *args, env=None, config=True):
    """fanoutctl against the node: (exit code, stdout, stderr)."""
    cmd = [os.environ["FANOUT_CTL"], *args]
    if config:
        cmd += ["-c", node.config]
    e = dict(os.environ, FANOUT_JWT_SECRET=SECRET, **(env or {}))
    p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def test_only_admins_may_call_it(node):
    for path in ["/api/v1/admin/status", "/api/v1/admin/connections",
                 "/api/v1/admin/channels/1"]:
        status, body = node.http("GET", path, user=unique())
        assert status == 403 and body["error"]["code"] == "forbidden", (path, body)
        status, body = node.http("GET", path)
        assert status == 401, (path, body)
    status, _ = node.http("DELETE", "/api/v1/admin/connections/1", user="Ops")  # case counts
    assert status == 403
    status, _ = node.http("POST", "/api/v1/admin/status", user=ADMIN)
    assert status == 405
    status, body = node.http("GET", "/api/v1/admin/status", user="second.admin")
    assert status == 200 and body["metrics"]["fanout_uptime_seconds"] >= 0


def test_status_carries_the_metrics(node):
    status, body = node.http("GET", "/api/v1/admin/status", user=ADMIN)
    assert status == 200
    m = body["metrics"]
    assert body["node"]
    assert m["fanout_build_info"]["version"]
    assert m["fanout_persist_connected"] == 1
    assert body["nodes"] is None  # a node alone
    assert set(m["fanout_persist_commit_seconds"]) == {"count", "sum_seconds", "p50_seconds",
                                                       "p99_seconds"}
    rc, out, err = ctl(node, "status")
    assert rc == 0, err
    assert "connections" in out and "persist       connected" in out, out
    rc, out, err = ctl(node, "status", "-o", "json")
    assert rc == 0 and json.loads(out)["metrics"]["fanout_build_info"]["commit"], err


def test_list_filter_and_kill(node):
    async def go():
        alice, bob = unique("a"), unique("b")
        a = await Client.connect(node, alice)
        b = await Client.connect(node, bob)
        general = channel_id(a, "general")
        await a.subscribe(general)
        status, body = node.http("GET", "/api/v1/admin/connections", user=ADMIN)
        assert status == 200
        mine = {c["user"]: c for c in body["connections"] if c["user"] in (alice, bob)}
        assert set(mine) == {alice, bob}, body
        assert mine[alice]["subscriptions"] == 1 and mine[bob]["subscriptions"] == 0
        assert mine[alice]["peer"].startswith("127.0.0.1:") and mine[alice]["state"] == "ready"
        assert body["total"] >= 2
        # filters: a user, a channel
        status, body = node.http("GET", f"/api/v1/admin/connections?user={bob}", user=ADMIN)
        assert [c["user"] for c in body["connections"]] == [bob]
        status, body = node.http("GET", f"/api/v1/admin/connections?channel={general}",
                                 user=ADMIN)
        assert alice in [c["user"] for c in body["connections"]]
        assert bob not in [c["user"] for c in body["connections"]]
        status, body = node.http("GET", "/api/v1/admin/connections?limit=x", user=ADMIN)
        assert status == 400
        # the same through fanoutctl
        rc, out, err = ctl(node, "connections", "list", "--user", alice)
        assert rc == 0 and alice in out and "1 connection(s)" in out, (out, err)
        rc, out, err = ctl(node, "channel", "info", str(general), "-o", "json")
        info = json.loads(out)
        assert rc == 0 and info["name"] == "general" and info["node"]["owner"] is True
        assert info["owner_epoch"] >= 0 and info["last_seq"] >= 0
        assert info["node"]["subscribers"] >= 1 and info["members"] >= 2
        # kill bob: his client sees 4002, alice stays
        rc, out, err = ctl(node, "connections", "kill", str(mine[bob]["id"]))
        assert rc == 0 and "closed (4002)" in out, (out, err)
        with pytest.raises(websockets.exceptions.ConnectionClosed) as e:
            await b.expect("never", timeout=5)
        assert e.value.rcvd.code == 4002
        assert (await a.answer({"type": "ping"}))["type"] == "pong"
        # a second kill finds nothing
        rc, out, err = ctl(node, "connections", "kill", str(mine[bob]["id"]))
        assert rc == 4 and "404" in err
        await a.close()
    run(go())


STAGES = ("fanout_publish_accept_seconds", "fanout_persist_queue_seconds",
          "fanout_persist_publish_seconds", "fanout_persist_callback_seconds",
          "fanout_publish_seconds")


def stages(node):
    status, body = node.http("GET", "/api/v1/admin/status", user=ADMIN)
    assert status == 200
    return {k: body["metrics"][k] for k in STAGES}


def test_the_durable_path_is_timed_stage_by_stage(node):
    """Each durable publish, websocket or HTTP, is counted once in every stage
    histogram, and the stages nest: arrival to broadcast takes at least as
    long as submit to durable, which takes at least as long as the writer's
    queue."""
    async def go():
        alice = unique("st")
        a = await Client.connect(node, alice)
        general = channel_id(a, "general")
        before = stages(node)
        for i in range(20):
            assert (await a.publish(general, f"stage {i}"))["type"] == "ack"
        for i in range(5):
            status, body = node.http("POST", f"/api/v1/channels/{general}/messages",
                                     {"text": f"http stage {i}"}, user=alice)
            assert status == 201, body
        await a.close()
        return before
    before = run(go())
    deadline = time.time() + 5  # the last callback's figure lands just after its ack
    while time.time() < deadline:
        after = stages(node)
        grew = {k: after[k]["count"] - before[k]["count"] for k in STAGES}
        if min(grew.values()) >= 25:
            break
        time.sleep(0.05)
    assert grew == {k: 25 for k in STAGES}, grew
    spent = {k: after[k]["sum_seconds"] - before[k]["sum_seconds"] for k in STAGES}
    assert spent["fanout_publish_seconds"] >= spent["fanout_persist_publish_seconds"], spent
    assert spent["fanout_persist_publish_seconds"] >= spent["fanout_persist_queue_seconds"], spent
    assert spent["fanout_persist_publish_seconds"] > 0, spent


def test_channel_info_and_bad_ids(node):
    rc, out, err = ctl(node, "channel", "info", "999999999999")
    assert rc == 4 and "no such channel" in err
    rc, out, err = ctl(node, "channel", "info", "x")
    assert rc == 2
    status, _ = node.http("DELETE", f"/api/v1/admin/connections/{1 << 50}", user=ADMIN)
    assert status == 404


def test_fanoutctl_finds_what_it_needs(node):
    # no admin to act as: the defaults name none
    rc, out, err = ctl(node, "status", config=False,
                       env={"FANOUT_NODE": node.url.split("//")[1]})
    assert rc == 2 and "no admin" in err
    # --as and FANOUT_NODE instead of the file
    rc, out, err = ctl(node, "status", "--as", ADMIN, config=False,
                       env={"FANOUT_NODE": node.url.split("//")[1]})
    assert rc == 0, err
    # FANOUT_CONFIG instead of -c
    rc, out, err = ctl(node, "status", config=False, env={"FANOUT_CONFIG": node.config})
    assert rc == 0, err
    # acting as a user who is not an admin
    rc, out, err = ctl(node, "status", "--as", "mallory")
    assert rc == 1 and "403 forbidden" in err
    # a node that is not there
    rc, out, err = ctl(node, "status", "--node", f"127.0.0.1:{free_port()}")
    assert rc == 3, err
    # no secret at all
    e = dict(os.environ)
    e.pop("FANOUT_JWT_SECRET", None)
    p = subprocess.run([os.environ["FANOUT_CTL"], "status", "-c", node.config], env=e,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "no secret" in p.stderr
