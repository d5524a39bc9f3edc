# SPDX-License-Identifier: BSD-3-Clause
"""fanoutd on a Patroni pair (deploy/patroni: a primary and a synchronous
standby on the etcd deploy/test started): `fanoutctl db status` shows the
pair; history pages (scroll-back, catch-up, threads, the HTTP API) are read
on the standby when it has replayed the channel far enough, and on the
primary when it has not (replay stopped), with the same answer either way."""
import asyncio
import json
import os
import subprocess
import urllib.parse

import pytest

from conftest import Client, Server, channel_id, free_port_pair, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATRONI = os.path.join(ROOT, "deploy", "patroni")
CTL = os.environ.get("FANOUT_CTL", "")
ETCD = os.environ.get("FANOUT_TEST_ETCD", "")


class Pair:
    def __init__(self, directory):
        assert ETCD and CTL, "FANOUT_TEST_ETCD and FANOUT_CTL must be set (deploy/test and meson do)"
        self.dir = str(directory)
        self.port = free_port_pair()
        self.patroni("start", urllib.parse.urlparse(ETCD).port, self.port, 2)
        self.dsn = self.patroni("dsn").strip()
        self.read_dsn = self.patroni("read-dsn").strip()
        self.scope = self.patroni("scope").strip()

    def patroni(self, *args):
        return subprocess.run([PATRONI, args[0], self.dir, *map(str, args[1:])], check=True,
                              capture_output=True, text=True, timeout=300).stdout

    def status(self, *extra):
        """fanoutctl db status -o json: (exit code, the parsed view or None, stderr)."""
        out = subprocess.run([CTL, "db", "status", "--endpoints", ETCD, "--scope", self.scope,
                              "-o", "json", *extra], capture_output=True, text=True, timeout=20)
        return out.returncode, json.loads(out.stdout) if out.stdout else None, out.stderr

    def standby_port(self):
        rc, view, _ = self.status()
        assert rc == 0
        return next(int(m["address"].rsplit(":", 1)[1]) for m in view["members"]
                    if m["role"] == "sync-standby")

    def psql(self, port, query):
        return subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                               "-d", "fanout", "-Atc", query], check=True, capture_output=True,
                              text=True, timeout=20).stdout.strip()

    def replay(self, on):
        """Stops or restarts the standby's replay: SIGSTOP to its startup
        process. (pg_wal_replay_pause() would not last: Patroni resumes a
        paused replay within a loop.) It still receives and flushes WAL, so
        synchronous commits go on."""
        sig = "-CONT" if on else "-STOP"
        subprocess.run(["pkill", sig, "-f", f"^postgres: {self.scope}: startup"], check=True)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    p = Pair(tmp_path_factory.mktemp("patroni"))
    yield p
    p.patroni("destroy")


@pytest.fixture(scope="module")
def node(pair):
    s = Server(dsn=pair.dsn, extra_ini=f"[postgres]\nread_dsn = {pair.read_dsn}\n")
    yield s
    assert s.stop() == 0


def pages(node):
    return {k: node.metric(f"fanout_history_{k}_total")
            for k in ("pages", "standby_pages", "standby_behind")}


def delta(before, after):
    return {k: after[k] - before[k] for k in before}


def test_patroni_db_status_shows_the_pair(pair):
    rc, view, err = pair.status()
    assert rc == 0, err
    leader = pair.patroni("leader").strip()
    assert view["leader"] == leader and view["scope"] == pair.scope
    roles = sorted(m["role"] for m in view["members"])
    assert roles == ["primary", "sync-standby"]
    assert all(m["state"] == "running" and m["timeline"] >= 1 for m in view["members"])
    assert all(m["lag_bytes"] is not None for m in view["members"])
    table = subprocess.run([CTL, "db", "status", "--endpoints", ETCD, "--scope", pair.scope],
                           capture_output=True, text=True, timeout=20).stdout
    assert f"leader: {leader}, synchronous standby: {view['sync_standby']}" in table


def test_patroni_db_status_bad_paths(pair):
    rc, _, err = pair.status("--scope", "no-such-scope")
    assert rc == 4 and "no Patroni cluster 'no-such-scope'" in err
    out = subprocess.run([CTL, "db", "status", "--endpoints", "http://127.0.0.1:1"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 3 and "cannot read" in out.stderr
    out = subprocess.run([CTL, "db", "stat"], capture_output=True, text=True, timeout=20)
    assert out.returncode == 2 and "usage: fanoutctl db status" in out.stderr


def test_patroni_history_is_read_on_the_standby(node):
    async def go():
        a = await Client.connect(node, "sb-alice")
        ch = channel_id(a, "general")
        await a.subscribe(ch)
        seqs = [(await a.publish(ch, f"standby {i}"))["seq"] for i in range(12)]
        parent = seqs[0]
        reply = (await a.publish(ch, "a reply", parent=parent))["seq"]
        await asyncio.sleep(0.5)  # the standby replays what it has flushed
        before = pages(node)
        newest = await a.answer({"type": "history", "channel": ch, "limit": 4})
        older = await a.answer({"type": "history", "channel": ch, "before": seqs[5], "limit": 3})
        thread = await a.answer({"type": "history", "channel": ch, "thread": parent})
        b = await Client.connect(node, "sb-bob")  # a resume: catch-up from seqs[3]
        await b.subscribe(ch, since=seqs[3])
        caught = await b.messages(ch, len(seqs) - 4 + 1)
        status, body = node.http("GET", f"/api/v1/channels/{ch}/messages?limit=3", user="sb-bob")
        got = delta(before, pages(node))
        await a.close()
        await b.close()
        return seqs, reply, newest, older, thread, caught, status, body, got

    seqs, reply, newest, older, thread, caught, status, body, got = run(go())
    assert [m["seq"] for m in newest["messages"]] == seqs[9:] + [reply]
    assert [m["seq"] for m in older["messages"]] == seqs[2:5]
    assert [m["seq"] for m in thread["messages"]] == [seqs[0], reply]
    assert [m["seq"] for m in caught] == seqs[4:] + [reply]
    assert status == 200 and [m["seq"] for m in body["messages"]] == seqs[10:] + [reply]
    # five pages at least (the catch-up may take two), every one on the standby
    assert got["pages"] >= 5 and got["standby_pages"] == got["pages"], got
    assert got["standby_behind"] == 0, got


def test_patroni_a_standby_behind_is_not_read(node, pair):
    port = pair.standby_port()
    async def go():
        a = await Client.connect(node, "sb-carol")
        ch = channel_id(a, "general")
        await a.subscribe(ch)
        await a.publish(ch, "replayed")
        await asyncio.sleep(0.5)
        pair.replay(False)
        try:
            # Synchronous commit waits for the standby's flush, not its
            # replay: these are acknowledged and on its disk, not in its tables.
            fresh = [(await a.publish(ch, f"not replayed {i}"))["seq"] for i in range(3)]
            edited = (await a.answer({"type": "edit", "channel": ch, "seq": fresh[0],
                                      "text": "edited while paused",
                                      "client_msg_id": f"edit-{fresh[0]}"}))["seq"]
            await asyncio.sleep(0.3)
            # the premise: the standby really has not got them in its tables
            on_standby = int(pair.psql(port, f"SELECT last_seq FROM channels WHERE id = {ch}"))
            before = pages(node)
            newest = await a.answer({"type": "history", "channel": ch, "limit": 4})
            b = await Client.connect(node, "sb-dave")
            await b.subscribe(ch, since=fresh[0] - 1)
            caught = await b.messages(ch, 4)
            status, body = node.http("GET", f"/api/v1/channels/{ch}/messages?limit=2",
                                     user="sb-dave")
            paused = delta(before, pages(node))
        finally:
            pair.replay(True)
        await asyncio.sleep(0.5)
        before = pages(node)
        again = await a.answer({"type": "history", "channel": ch, "limit": 4})
        resumed = delta(before, pages(node))
        await a.close()
        await b.close()
        return fresh, edited, newest, caught, status, body, paused, again, resumed, on_standby

    fresh, edited, newest, caught, status, body, paused, again, resumed, on_standby = run(go())
    assert on_standby < fresh[0]
    want = fresh + [edited]
    assert [m["seq"] for m in newest["messages"]] == want
    assert newest["messages"][0]["text"] == "edited while paused"
    assert [m["seq"] for m in caught] == want
    assert status == 200 and [m["seq"] for m in body["messages"]] == want[2:]
    # every page while replay was paused came from the primary
    assert paused["pages"] >= 3 and paused["standby_pages"] == 0, paused
    assert paused["standby_behind"] == paused["pages"], paused
    # and once it caught up, the standby answers again, the same
    assert again["messages"] == newest["messages"]
    assert resumed["standby_pages"] == resumed["pages"] == 1, resumed
