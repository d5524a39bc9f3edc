# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end tests of the cluster (docs/cluster.md): three real fanoutd
processes joined through the real etcd deploy/test started, on the real
PostgreSQL, driven by independent websocket clients. Each module gets a
cluster of its own (a unique cluster name in etcd)."""
import asyncio
import json
import os
import socket
import subprocess
import time
import uuid

import pytest

from conftest import Client, Server, channel_id, free_port, run, sql, unique

CTL = os.environ.get("FANOUT_CTL", "")
ETCD = os.environ.get("FANOUT_TEST_ETCD", "")
PRESENCE_GRACE_MS = 800


def cluster_ini(name, cluster, peer_port, advertise=None):
    return ("[dataplane]\nchannels = 65536\n[auth]\nadmins = ops\n"
            f"[cluster]\netcd = {ETCD}\nname = {name}\ncluster = {cluster}\n"
            f"peer = 127.0.0.1:{peer_port}\nlease_ttl_s = 1\n"
            + (f"advertise = 127.0.0.1:{advertise}\n" if advertise else ""))


class Node(Server):
    def __init__(self, name, cluster, peer_port=None, advertise=None):
        self.name, self.cluster, self.peer_port = name, cluster, peer_port or free_port()
        os.environ["FANOUT_CLUSTER_SECRET"] = "e2e-cluster-secret"
        super().__init__(extra_ini=cluster_ini(name, cluster, self.peer_port, advertise),
                         presence_grace_ms=PRESENCE_GRACE_MS, presence_interval_ms=200)

    def logtext(self):
        return open(self.log.name).read()


class Cluster:
    def __init__(self, n=3, proxies=None):
        """proxies: {node name: a Proxy the others reach its peer link through}."""
        assert ETCD and CTL, "FANOUT_TEST_ETCD and FANOUT_CTL must be set (deploy/test and meson do)"
        self.name = "e2e" + uuid.uuid4().hex[:8]
        proxies = proxies or {}
        self.nodes = []
        for i in range(n):
            name, px = f"n{i + 1}", proxies.get(f"n{i + 1}")
            self.nodes.append(Node(name, self.name, peer_port=px.target if px else None,
                                   advertise=px.port if px else None))
        self.wait_ring(n)

    def ctl(self, *args, check=True):
        out = subprocess.run([CTL, *args, "--endpoints", ETCD, "--cluster", self.name],
                             capture_output=True, text=True, timeout=20)
        if check and out.returncode != 0:
            raise AssertionError(f"fanoutctl {args}: {out.returncode} {out.stderr}")
        return out

    def owner(self, channel):
        return json.loads(self.ctl("channel", "locate", str(channel), "-o", "json").stdout)["owner"]

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def wait_ring(self, n, timeout=10):
        """Until every live node's log says it built a ring of n members."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            live = [x for x in self.nodes if x.proc.poll() is None]
            if all(f'"{n} members' in x.logtext() or f": {n} members" in x.logtext() for x in live) and \
                    len(json.loads(self.ctl("node", "list", "-o", "json").stdout)) == n:
                time.sleep(0.3)  # the peer links come up right after
                return
            time.sleep(0.05)
        raise AssertionError("the cluster did not settle: " + " | ".join(x.logtext()[-600:] for x in self.nodes))

    def stop(self):
        return [n.stop() for n in self.nodes]


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(3)
    yield c
    c.stop()


def test_fanoutctl_sees_the_cluster(cluster):
    nodes = json.loads(cluster.ctl("node", "list", "-o", "json").stdout)
    assert sorted(n["name"] for n in nodes) == ["n1", "n2", "n3"]
    assert all(n["state"] == "active" and n["peer"].startswith("127.0.0.1:") for n in nodes)
    ring = json.loads(cluster.ctl("ring", "show", "-o", "json").stdout)
    assert [m["name"] for m in ring["members"]] == ["n1", "n2", "n3"] and ring["revision"] > 0
    assert abs(sum(m["share"] for m in ring["members"]) - 1) < 1e-6
    # Every owner the tool names is a member, and the nodes agree with it:
    # a publish to a channel succeeds wherever the client is (below).
    assert cluster.owner(1) in ("n1", "n2", "n3")
    status = json.loads(cluster.ctl("cluster", "status", "-o", "json").stdout)
    assert sorted((n["name"], n["ready"]) for n in status["nodes"]) == \
        [("n1", "ready"), ("n2", "ready"), ("n3", "ready")]
    for n in cluster.nodes:
        assert n.metric("fanout_cluster_ring_members") == 3
        assert n.metric("fanout_cluster_lease_held") == 1
        assert n.metric("fanout_cluster_draining") == 0
    # the operator's view lists the members, this node marked
    status, body = cluster.nodes[1].http("GET", "/api/v1/admin/status", user="ops")
    assert status == 200, body
    assert sorted((n["name"], n["self"]) for n in body["nodes"]) == \
        [("n1", False), ("n2", True), ("n3", False)]
    assert all(n["admin"] and not n["draining"] for n in body["nodes"])
    # each node's own share is the ring's figure for it
    shares = {m["name"]: m["share"] for m in ring["members"]}
    for n in cluster.nodes:
        assert abs(n.metric("fanout_cluster_ring_share") - shares[n.name]) < 1e-9
    out = cluster.ctl("channel", "locate", "0", check=False)
    assert out.returncode == 2 and "positive number" in out.stderr
    out = subprocess.run([CTL, "node", "list", "--endpoints", "http://127.0.0.1:1"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 3 and "cannot read cluster" in out.stderr
    out = cluster.ctl("node", "drain", "nobody", check=False)
    assert out.returncode == 4


def test_every_subscriber_on_every_node_gets_every_message_once_in_order(cluster):
    """Publishers on all three nodes; subscribers on all three. Whichever node
    owns the channel, each subscriber sees every acked message exactly once,
    in seq order, and PostgreSQL holds exactly those rows."""
    async def go():
        clients = [await Client.connect(n, unique()) for n in cluster.nodes]
        general = channel_id(clients[0], "general")
        owner = cluster.owner(general)
        for c in clients:
            await c.subscribe(general)
        await asyncio.sleep(0.3)  # interest registered at the owner
        acks = []
        for i in range(10):
            for k, c in enumerate(clients):
                ack = await c.publish(general, f"m{k}-{i}")
                assert ack["type"] == "ack", ack
                acks.append(ack["seq"])
        assert sorted(acks) == list(range(acks[0], acks[0] + 30))
        for c in clients:
            got = [m["seq"] for m in await c.messages(general, 30)]
            assert got == sorted(acks), (c.user, got)
            await c.quiet(0.3)
            assert not [f for f in c.frames if f.get("type") == "message"], "a duplicate arrived"
        rows = sql(f"SELECT count(*) FROM messages WHERE channel_id = {general} "
                   f"AND seq BETWEEN {acks[0]} AND {acks[0] + 29}")
        assert rows == [["30"]]
        for c in clients:
            await c.close()
        return owner
    owner = run(go())
    # The owner forwarded nothing; the others forwarded their clients' publishes.
    assert owner in ("n1", "n2", "n3")


def test_direct_messages_across_nodes(cluster):
    async def go():
        a, b = unique(), unique()
        ca = await Client.connect(cluster.nodes[0], a)
        cb = await Client.connect(cluster.nodes[2], b)
        status, body = cluster.nodes[0].http("POST", "/api/v1/dms", {"user": b}, user=a)
        assert status in (200, 201), body
        dm = body["channel"]["id"]
        await cb.expect("joined")
        await ca.subscribe(dm)
        await cb.subscribe(dm)
        await asyncio.sleep(0.3)
        ack = await ca.publish(dm, "psst")
        assert ack["type"] == "ack"
        msg, = await cb.messages(dm, 1)
        assert (msg["text"], msg["author"], msg["seq"]) == ("psst", a, ack["seq"])
        ack2 = await cb.publish(dm, "hi back")
        mine, theirs = await ca.messages(dm, 2)
        assert (mine["seq"], theirs["seq"], theirs["text"]) == (ack["seq"], ack2["seq"], "hi back")
        await ca.close(); await cb.close()
    run(go())


def test_a_mention_crosses_nodes(cluster):
    """The owner reads the mention; the frame reaches the named user on
    another node, and the author, on a third, gets none."""
    async def go():
        a, b = unique(), unique()
        cluster.nodes[0].http("GET", "/api/v1/channels", user=b)  # b exists
        status, body = cluster.nodes[0].http("POST", "/api/v1/dms", {"user": b}, user=a)
        assert status in (200, 201), body
        dm = body["channel"]["id"]
        others = [n for n in cluster.nodes if n.name != cluster.owner(dm)]
        ca = await Client.connect(others[0], a)
        cb = await Client.connect(others[1], b)
        await ca.subscribe(dm)
        await cb.subscribe(dm)
        await asyncio.sleep(0.3)
        ack = await ca.publish(dm, f"@{b} over here")
        assert ack["type"] == "ack"
        m = await cb.expect("mention")
        assert (m["channel"], m["seq"], m["author"], m["users"]) == (dm, ack["seq"], a, [b])
        await ca.messages(dm, 1)
        await ca.quiet(0.3)
        assert not [f for f in ca.frames if f.get("type") == "mention"]
        await ca.close(); await cb.close()
    run(go())


def test_a_retried_publish_is_one_row_across_nodes(cluster):
    """The same client_msg_id sent through two different gateways: one row,
    one seq."""
    async def go():
        user = unique()
        c1 = await Client.connect(cluster.nodes[0], user)
        c2 = await Client.connect(cluster.nodes[1], user)
        general = channel_id(c1, "general")
        cmid = uuid.uuid4().hex
        a1 = await c1.publish(general, "once", cmid=cmid)
        a2 = await c2.publish(general, "once", cmid=cmid)
        assert a1["seq"] == a2["seq"] and a2["duplicate"] is True
        assert sql(f"SELECT count(*) FROM messages WHERE client_msg_id = '{cmid}'") == [["1"]]
        await c1.close(); await c2.close()
    run(go())


def test_a_second_node_with_a_live_name_is_refused(cluster):
    with pytest.raises(RuntimeError) as e:
        Node("n2", cluster.name)
    assert "held by a live member" in str(e.value)


def test_a_node_without_etcd_exits_1_and_says_why(tmp_path):
    """A start that fails with the reader's and writer's threads inside libpq
    ends with status 1, never an abort from exit()'s library destructors
    (seen 1 start in 5 before: Kerberos' mutex assertion). Twenty starts."""
    ini = tmp_path / "fanout.ini"
    ini.write_text(f"[server]\nport = {free_port()}\n"
                   f"[cluster]\netcd = http://127.0.0.1:{free_port()}\nname = lone\n"
                   f"peer = 127.0.0.1:{free_port()}\n")
    env = dict(os.environ, FANOUT_PG_DSN=os.environ["FANOUT_TEST_PG_DSN"], FANOUT_JWT_SECRET="s",
               FANOUT_CLUSTER_SECRET="e2e-cluster-secret")
    for _ in range(20):
        r = subprocess.run([os.environ["FANOUT_BIN"], "-c", str(ini)], env=env,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
        assert "cannot reach etcd at http://127.0.0.1:" in r.stdout + r.stderr


def test_bad_peer_frames_are_refused_and_counted(cluster):
    n = cluster.nodes[1]
    before = n.metric("fanout_peer_frames_refused_total")
    rows_before = sql("SELECT count(*) FROM messages")
    for junk in (b"\x00\x00\x00\x03\x09\x01\x00",           # another version
                 b"\x7f\xff\xff\xff\x01\x01",               # a length past the limit
                 b"\x00\x00\x00\x02\x01\x63",               # an unknown type
                 b"\x00\x00\x00\x0a\x01\x04" + b"\x00" * 8):  # a publish before the handshake
        with socket.create_connection(("127.0.0.1", n.peer_port), timeout=5) as s:
            s.sendall(junk)
            s.settimeout(5)
            assert s.recv(1) == b"", "the link stayed open"
    deadline = time.time() + 5
    while n.metric("fanout_peer_frames_refused_total") < before + 4 and time.time() < deadline:
        time.sleep(0.05)
    assert n.metric("fanout_peer_frames_refused_total") >= before + 4
    assert "refused inbound peer link" in n.logtext()
    assert sql("SELECT count(*) FROM messages") == rows_before


def test_interest_comes_back_after_the_last_subscriber_left(cluster):
    """A gateway's last subscriber of a channel leaves (interest off at the
    owner), then a new one arrives: broadcasts reach it again."""
    async def go():
        probe = await Client.connect(cluster.nodes[0], unique())
        general = channel_id(probe, "general")
        await probe.close()
        owner = cluster.owner(general)
        gateway = next(n for n in cluster.nodes if n.name != owner)
        pub = await Client.connect(cluster.node(owner), unique())
        for round_ in range(3):
            subs = [await Client.connect(gateway, unique()) for _ in range(12)]
            for sub in subs:
                await sub.subscribe(general)
            await asyncio.sleep(0.3)
            ack = await pub.publish(general, f"round {round_}")
            for sub in subs:
                msg = await sub.next(lambda f: f.get("type") == "message" and f.get("seq") == ack["seq"],
                                     timeout=5)
                assert msg["text"] == f"round {round_}"
            # All leave at once, the next round arrives while they go.
            await asyncio.gather(*(sub.close() for sub in subs))
        await pub.close()
    run(go())


def test_typing_crosses_nodes(cluster):
    """Typing is ephemeral and never stored: from a gateway it goes to the
    owner as a relay, which sends it on to every node with subscribers."""
    async def go():
        probe = await Client.connect(cluster.nodes[0], unique())
        general = channel_id(probe, "general")
        await probe.close()
        owner = cluster.owner(general)
        gateways = [n for n in cluster.nodes if n.name != owner]
        typist = await Client.connect(gateways[0], unique())
        watchers = [await Client.connect(n, unique()) for n in (gateways[1], cluster.node(owner))]
        for w in watchers:
            await w.subscribe(general)
        await typist.subscribe(general)
        await asyncio.sleep(0.3)
        await typist.send({"type": "typing", "channel": general})
        for w in watchers:
            t = await w.next(lambda f: f.get("type") == "typing" and f.get("user") == typist.user,
                             timeout=5)
            assert t["channel"] == general
        for c in watchers + [typist]:
            await c.close()
    run(go())



def test_presence_lives_at_the_users_home_and_reaches_every_node(cluster):
    """A user's presence lives on one node, the home the ring names for the
    user. The user connects to a node that is not the home; watchers on all
    three nodes (the third neither home nor the user's) see them online, and
    offline once the grace period after their last connection is out."""
    async def go():
        for _ in range(50):
            user = unique("p")
            home = json.loads(cluster.ctl("user", "locate", user, "-o", "json").stdout)["home"]
            if home != "n1":
                break
        assert home in ("n2", "n3")
        watchers = [await Client.connect(n, unique("w")) for n in cluster.nodes]
        for w in watchers:
            r = await w.answer({"type": "presence_subscribe", "users": [user]})
            assert r["type"] == "presence_subscribed" and r["users"][0]["user"] == user

        def status(value):
            return lambda f: f.get("type") == "presence" and f["user"] == user and f["status"] == value

        device = await Client.connect(cluster.nodes[0], user)
        for w in watchers:
            await w.next(status("online"), timeout=5)
        await device.close()
        start = time.monotonic()
        for w in watchers:
            await w.next(status("offline"), timeout=10)
        assert time.monotonic() - start >= PRESENCE_GRACE_MS / 1000 * 0.8
        for w in watchers:
            await w.close()
    run(go())
    out = cluster.ctl("user", "locate", "x" * 65, check=False)
    assert out.returncode == 2 and "1 to 64" in out.stderr
