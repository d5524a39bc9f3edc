#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""run: the fault harness's workload and nemeses (docs/reliability.md). Starts
a private PostgreSQL (deploy/pgctl) and one fanoutd, drives them with
publishers over websockets and HTTP into a public channel, a private one and
a DM, one publish in ten a reply in a thread (fresh client_msg_ids, a
timed-out publish retried with the same id, the same request), and
subscribers that drop their connection
and resume, injects faults on a schedule from a seed, records every
operation to a history (JSON lines), then runs the checker (check.py) on it.

    run.py --out DIR [--duration 60|30m] [--faults kill,pause,pg-restart,pg-kill]
           [--interval 2s] [--seed N] [--nodes 1..5] [--publishers 4]
           [--subscribers 3] [--unsafe-async-commit] [--patroni]
           [--netem loss=P,delay=MS,jitter=MS,reorder=P,duplicate=P]

With netem among the faults the clients reach the nodes through an
impairing forwarder in network namespaces of their own (netem.py), and a
netem fault makes it drop, delay, reorder and duplicate their frames for 1
to 4 s (--netem says how much).

With --nodes N > 1 it starts a private etcd and a cluster of N nodes
(docs/cluster.md); clients spread over the nodes and move to another when
theirs does not answer; kill and pause hit a random node (a pause is often
longer than the 1 s lease: the node loses its channels), etcd-kill kills
etcd for 0.5 to 3 s, and partition cuts a random node's peer link for 0.5
to 3 s: every node reaches another's peer port through a forwarder of this
run's (the node advertises it), and the cut closes every link through it and
refuses new ones while etcd still sees the node alive, so it keeps its
channels and the others' publishes to them wait or time out.

With --patroni PostgreSQL is a Patroni pair on a private etcd
(deploy/patroni: synchronous replication, a leader and a synchronous
standby), fanoutd follows the primary through a multi-host DSN and reads
history pages on the standby ([postgres] read_dsn), the pg-failover fault
crashes the leader's whole member (Patroni, postmaster and backends, as a
host dying), waits for the standby's promotion and brings the old leader
back as a standby, and pg-switchover hands the leadership over with
`patronictl switchover` and waits for the old leader to follow. With --unsafe-async-commit in that mode, the
pair replicates asynchronously and the leader's WAL sender is stopped
before the crash, so the promoted standby lacks acknowledged commits.

--unsafe-async-commit is the negative control: PostgreSQL with
synchronous_commit = off (and a slow WAL writer), fanoutd told to accept it
([postgres] allow_unsafe_commit), so a kill of PostgreSQL loses commits that
were acknowledged: the checker must report lost acks. Exit: the checker's
(0 clean, 1 violations), 2 when the run itself could not be made."""
import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from conftest import SECRET, Proxy, free_port_pair, free_ports, http_request, token  # noqa: E402  (independent JWTs, as the e2e tests)

import check  # noqa: E402
import netem  # noqa: E402

FAULTS = ("kill", "pause", "pg-restart", "pg-kill", "etcd-kill", "partition", "pg-failover",
          "pg-switchover", "netem")
CLUSTER_FAULTS = ("etcd-kill", "partition")
PATRONI_FAULTS = ("pg-failover", "pg-switchover")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



class History:
    def __init__(self):
        self.ops, self.t0 = [], time.monotonic()

    def add(self, op_name, **kw):
        self.ops.append({"op": op_name, "t": round(time.monotonic() - self.t0, 4), **kw})

    def write(self, path):
        with open(path, "w") as f:
            for op in self.ops:
                f.write(json.dumps(op) + "\n")


class Postgres:
    """A private PostgreSQL through deploy/pgctl, killed and restarted at will."""

    def __init__(self, directory, unsafe):
        self.dir, self.port = directory, free_port()
        self.pgctl = os.path.join(ROOT, "deploy", "pgctl")
        self.dsn = f"host=127.0.0.1 port={self.port} dbname=fanout user=fanout"
        self.ctl("start", self.port)
        self.data = subprocess.run([self.pgctl, "datadir", self.dir], check=True,
                                   capture_output=True, text=True).stdout.strip()
        if unsafe:  # acknowledged commits sit in shared memory up to 10 s
            self.psql("ALTER SYSTEM SET synchronous_commit = off")
            self.psql("ALTER SYSTEM SET wal_writer_delay = '10s'")
            self.ctl("restart")

    def ctl(self, *args):
        subprocess.run([self.pgctl, args[0], self.dir, *map(str, args[1:])], check=True,
                       capture_output=True, text=True, timeout=120)

    def psql(self, query):
        subprocess.run(["psql", f"host=127.0.0.1 port={self.port} dbname=postgres user=postgres",
                        "-qtAX", "-c", query], check=True, capture_output=True, timeout=30)

    def kill(self):
        """SIGKILL to the postmaster and every backend, then crash recovery."""
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            pid = int(f.readline())
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                  text=True).stdout.split()
        pids = [pid, *map(int, children)]
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.time() + 10  # gone, shared memory released
        while any(os.path.exists(f"/proc/{p}") for p in pids) and time.time() < deadline:
            time.sleep(0.05)
        for attempt in range(5):
            try:
                self.ctl("start", self.port)
                return
            except subprocess.CalledProcessError:
                if attempt == 4:
                    raise
                time.sleep(1)

    def stop(self):
        """Stops it and removes its data: every run starts from an empty one."""
        self.ctl("stop")
        shutil.rmtree(self.data, ignore_errors=True)


class Patroni:
    """A Patroni pair through deploy/patroni, on its own etcd; the leader
    crashed (a failover) at will."""

    def __init__(self, directory, etcd, unsafe):
        self.dir, self.etcd, self.unsafe = directory, etcd, unsafe
        self.port = free_port_pair()
        self.patroni = os.path.join(ROOT, "deploy", "patroni")
        self.ctl("start", etcd.port, self.port, 2)
        self.dsn = self.ctl("dsn").strip()
        self.read_dsn = self.ctl("read-dsn").strip()  # history pages on the standby
        self.scope = self.ctl("scope").strip()
        self.failovers = []  # seconds from each crash to the new leader
        self.crashed_at = []  # time.monotonic() of each crash
        self.switchovers = []  # seconds from each switchover's start to the new leader
        if unsafe:  # asynchronous replication: a failover may lose commits
            self.ctl("ctl", "edit-config", "--force", "-s", "synchronous_mode=false",
                     "-s", "synchronous_mode_strict=false",
                     "-s", "maximum_lag_on_failover=1099511627776")

    def ctl(self, *args):
        return subprocess.run([self.patroni, args[0], self.dir, *map(str, args[1:])], check=True,
                              capture_output=True, text=True, timeout=300).stdout

    def leader(self):
        return self.ctl("leader").strip()

    def fail_over(self):
        """Crashes the leader's member; returns once another member leads,
        then brings the crashed one back."""
        old = self.leader()
        if self.unsafe:  # the leader stops sending WAL: acks pile up on it alone
            subprocess.run(["pkill", "-STOP", "-f", f"postgres: {self.scope}: walsender"],
                           capture_output=True)
            time.sleep(2)
        t0 = time.monotonic()
        self.ctl("crash", old)
        self.crashed_at.append(time.monotonic())  # every process of it gone
        self.new_leader(old, time.monotonic() + 90)
        self.failovers.append(time.monotonic() - t0)
        self.ctl("start", self.etcd.port, self.port, 2)

    def new_leader(self, old, deadline):
        while time.monotonic() < deadline:
            try:
                if self.leader() not in ("", old):
                    return
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.2)

    def switch_over(self):
        """patronictl switchover: the leader hands over to the synchronous
        standby and comes back as a standby; returns once both run again."""
        old = self.leader()
        t0 = time.monotonic()
        self.ctl("ctl", "switchover", "--leader", old, "--force")
        self.new_leader(old, time.monotonic() + 90)
        self.switchovers.append(time.monotonic() - t0)
        self.ctl("start", self.etcd.port, self.port, 2)  # waits for the standby

    def stop(self):
        self.ctl("destroy")


class Etcd:
    """A private etcd through deploy/etcd, for a cluster run."""

    def __init__(self, directory):
        self.dir, self.port = directory, free_ports(0, 1)  # client, raft peer
        self.etcd = os.path.join(ROOT, "deploy", "etcd")
        self.url = f"http://127.0.0.1:{self.port}"
        self.ctl("start", self.port)

    def ctl(self, *args):
        subprocess.run([self.etcd, args[0], self.dir, *map(str, args[1:])], check=True,
                       capture_output=True, text=True, timeout=60)

    def kill(self, down):
        self.ctl("kill")
        time.sleep(down)
        self.ctl("start", self.port)

    def stop(self):
        self.ctl("stop")
        shutil.rmtree(self.dir, ignore_errors=True)


class Fanoutd:
    def __init__(self, binary, directory, dsn, unsafe, cluster="", read_dsn="",
                 listen="127.0.0.1"):
        """cluster: a [cluster] section's text, or "" for a node alone;
        read_dsn: standbys for history pages; listen: the address the
        clients' path reaches (the harness itself uses loopback)."""
        self.binary, self.dir, self.dsn = binary, directory, dsn
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        os.makedirs(directory, exist_ok=True)
        self.config = os.path.join(directory, "fanout.ini")
        with open(self.config, "w") as f:
            f.write(f"[server]\nport = {self.port}\nlisten_address = {listen}\n"
                    "heartbeat_ms = 30000\n"
                    "publish_rate = 100000\npublish_burst = 100000\n"
                    f"[postgres]\nallow_unsafe_commit = {'true' if unsafe else 'false'}\n"
                    f"read_dsn = {read_dsn}\n"
                    f"[log]\nlevel = notice\n{cluster}")
        self.log_path = os.path.join(directory, "fanoutd.log")
        self.log = open(self.log_path, "a")
        self.proc, self.proxy = None, None
        self.refused_starts = 0
        self.start()

    def start(self):
        """Starts the node and waits until it is ready. A start that fails
        (fanoutd exits 1 when no PostgreSQL host takes writes, as during a
        failover) is tried again 2 s later, as systemd's Restart=on-failure
        with the unit's RestartSec does, for up to two minutes."""
        env = dict(os.environ, FANOUT_PG_DSN=self.dsn, FANOUT_JWT_SECRET=SECRET,
                   FANOUT_CLUSTER_SECRET="faults-cluster-secret")
        deadline = time.time() + 120
        self.proc = subprocess.Popen([self.binary, "-c", self.config], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/readyz", timeout=1)
                return
            except OSError:
                if self.proc.poll() is None:
                    time.sleep(0.05)
                    continue
                if self.proc.returncode != 1:
                    break
                self.refused_starts += 1
                time.sleep(2)
                self.proc = subprocess.Popen([self.binary, "-c", self.config], env=env,
                                             stdout=self.log, stderr=subprocess.STDOUT)
        with open(self.log_path, errors="replace") as f:
            last = (f.read().strip().splitlines() or [""])[-1]
        raise RuntimeError(f"fanoutd did not become ready (exit {self.proc.poll()}): {last}")

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self):
        self.signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9
        finally:
            if self.proxy:
                self.proxy.stop()

    def http(self, method, path, user, body=None, headers=None, timeout=5):
        return http_request(self.url, method, path, body, user, headers=headers, timeout=timeout)


class Run:
    def __init__(self, a, nodes, pg, hist, etcd=None, path=None):
        self.a, self.nodes, self.pg, self.h, self.etcd = a, nodes, pg, hist, etcd
        self.path = path or netem.Loopback()  # where the clients' sockets live
        self.rng = random.Random(a.seed)  # the workload's
        # The nemesis draws from its own generator: the seed alone fixes the
        # schedule of faults, whatever the workload's tasks draw meanwhile.
        self.fault_rng = random.Random(f"faults-{a.seed}")
        self.stopping = False  # publishers stop starting new publishes
        self.ending = False  # subscribers stop dropping and catch up

    async def connect(self, user, deadline, at=0):
        """A session on node at, or, while it does not answer, the next."""
        while time.monotonic() < deadline:
            node = self.nodes[at % len(self.nodes)]
            at += 1
            try:
                ws = await websockets.connect(f"ws://{self.path.host}:{node.port}/ws?token="
                                              f"{token(user)}", sock=await self.dial(node),
                                              ping_interval=None, open_timeout=2,
                                              close_timeout=1, max_size=2**24)
                hello = json.loads(await asyncio.wait_for(ws.recv(), 3))
                if hello.get("type") == "hello":
                    return ws
                await ws.close()
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                pass
            await asyncio.sleep(0.2)
        return None

    async def dial(self, node):
        """A TCP connection to node over the clients' path."""
        s = self.path.socket()
        s.setblocking(False)
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(
                s, (self.path.host, node.port)), 2)
        except BaseException:
            s.close()
            raise
        return s

    async def http(self, node, method, path, user, body, headers, timeout):
        """One HTTP/1.1 request over the clients' path: (status, JSON body or
        None)."""
        async def call():
            reader, writer = await asyncio.open_connection(sock=await self.dial(node))
            try:
                data = json.dumps(body).encode()
                head = [f"{method} {path} HTTP/1.1", f"Host: {self.path.host}:{node.port}",
                        f"Authorization: Bearer {token(user)}", "Connection: close",
                        "Content-Type: application/json", f"Content-Length: {len(data)}"]
                head += [f"{k}: {v}" for k, v in headers.items()]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
                status = int((await reader.readline()).split()[1])
                length = None
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    key, _, value = line.decode().partition(":")
                    if key.strip().lower() == "content-length":
                        length = int(value)
                raw = await (reader.read() if length is None else reader.readexactly(length))
                return status, (json.loads(raw) if raw else None)
            finally:
                writer.close()
        return await asyncio.wait_for(call(), timeout)

    # ---- publishers ----

    async def ws_attempt(self, state, user, channel, cid, parent):
        """One attempt: ("ok", seq), ("fail", code) or ("info", reason)."""
        if state.get("ws") is None:
            state["ws"] = await self.connect(user, time.monotonic() + 5, state["at"])
            state["at"] += 1  # the next connection tries another node first
            if state["ws"] is None:
                return "info", "cannot connect"
        ws = state["ws"]
        try:
            await ws.send(json.dumps({"type": "publish", "req": cid, "channel": channel,
                                      "text": f"{cid} text", "client_msg_id": cid,
                                      "parent_seq": parent}))
            deadline = time.monotonic() + 3
            while True:
                f = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
                if f.get("req") != cid:
                    continue
                if f.get("type") == "ack":
                    return "ok", f["seq"]
                return ("fail" if f.get("code") in check.DEFINITE else "info"), f.get("code")
        except (asyncio.TimeoutError, OSError, websockets.exceptions.WebSocketException) as e:
            state["ws"] = None
            await ws.close()
            return "info", type(e).__name__

    async def http_attempt(self, state, user, channel, cid, parent):
        body = {"text": f"{cid} text"}
        if parent:
            body["parent_seq"] = parent
        try:
            node = self.nodes[state["at"] % len(self.nodes)]
            status, body = await self.http(node, "POST", f"/api/v1/channels/{channel}/messages",
                                           user, body, {"Idempotency-Key": cid}, 3)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError,
                IndexError) as e:
            # killed mid-answer: the outcome is unknown; the next try elsewhere
            state["at"] += 1
            return "info", type(e).__name__
        if status in (200, 201) and body and "seq" in body:
            return "ok", body["seq"]
        code = (body or {}).get("error", {}).get("code") if isinstance(body, dict) else None
        return ("fail" if status < 500 and code in check.DEFINITE else "info"), code or status

    async def publisher(self, user, channels, via, at):
        state, n, acked = {"at": at}, 0, {}
        attempt = self.ws_attempt if via == "ws" else self.http_attempt
        while not self.stopping:
            n += 1
            channel, cid = self.rng.choice(channels), f"{user}-{n}"
            # one in ten a reply in a thread: the same request at each retry
            parent = acked.get(channel) if self.rng.random() < 0.1 else None
            for _ in range(30):  # the same id until the outcome is known
                self.h.add("invoke", proc=user, author=user, channel=channel, id=cid, via=via,
                           parent=parent)
                kind, what = await attempt(state, user, channel, cid, parent)
                if kind == "ok":
                    self.h.add("ok", proc=user, author=user, channel=channel, id=cid, seq=what)
                    acked[channel] = what
                    break
                if kind == "fail":
                    self.h.add("fail", proc=user, author=user, channel=channel, id=cid, code=what)
                    break
                self.h.add("info", proc=user, author=user, channel=channel, id=cid,
                           reason=str(what))
                await asyncio.sleep(0.2)
            await asyncio.sleep(self.rng.uniform(0.002, 0.02))
        if state.get("ws"):
            await state["ws"].close()

    # ---- subscribers ----

    async def subscriber(self, user, channels, heads, at):
        last = {c: 0 for c in channels}
        caught_up = False
        while True:
            ws = await self.connect(user, time.monotonic() + 10, at)
            at += 1  # resume on another node: a cluster serves it anywhere
            if ws is None:
                if self.ending:
                    break
                continue
            self.h.add("resume", sub=user, since={str(c): s for c, s in last.items()})
            try:
                await ws.send(json.dumps({"type": "subscribe", "channels": [
                    {"channel": c, "since": s} for c, s in last.items()]}))
                drop_at = time.monotonic() + self.rng.uniform(1.5, 5)
                while self.ending or time.monotonic() < drop_at:
                    if self.ending and heads and all(last[c] >= heads[c] for c in channels):
                        caught_up = True
                        break
                    if self.ending and time.monotonic() > self.end_deadline:
                        break
                    try:
                        f = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                    except asyncio.TimeoutError:
                        continue
                    if f.get("type") == "message" and f.get("channel") in last:
                        self.h.add("deliver", sub=user, channel=f["channel"], seq=f["seq"],
                                   id=f["client_msg_id"])
                        last[f["channel"]] = max(last[f["channel"]], f["seq"])
            except (OSError, websockets.exceptions.WebSocketException):
                pass
            await ws.close()
            if caught_up or (self.ending and self.end_deadline < time.monotonic()):
                break
        self.h.add("final", sub=user, caught_up=caught_up, last={str(c): s for c, s in last.items()})

    # ---- the nemesis ----

    async def nemesis(self, faults, until):
        while time.monotonic() < until:
            await asyncio.sleep(self.fault_rng.uniform(0.5, 1.5) * self.a.interval)
            if time.monotonic() >= until:
                break
            kind = self.fault_rng.choice(faults)
            self.h.add("fault", kind=kind, phase="start")
            await asyncio.to_thread(self.inject, kind)
            self.h.add("fault", kind=kind, phase="end")

    def inject(self, kind):
        node = self.fault_rng.choice(self.nodes)
        if kind == "kill":
            node.kill()
            time.sleep(self.fault_rng.uniform(0.1, 0.8))
            node.start()
        elif kind == "pause":  # in a cluster, often past the node's 1 s lease
            node.signal(signal.SIGSTOP)
            time.sleep(self.fault_rng.uniform(0.5, 4))
            node.signal(signal.SIGCONT)
        elif kind == "etcd-kill":
            self.etcd.kill(self.fault_rng.uniform(0.5, 3))
        elif kind == "partition":
            node.proxy.cut()
            time.sleep(self.fault_rng.uniform(0.5, 3))
            node.proxy.heal()
        elif kind == "pg-restart":
            self.pg.ctl("restart")
        elif kind == "pg-kill":
            self.pg.kill()
        elif kind == "pg-failover":
            self.pg.fail_over()
        elif kind == "pg-switchover":
            self.pg.switch_over()
        elif kind == "netem":  # the clients' path drops, delays, reorders, duplicates
            self.path.burst(self.fault_rng.uniform(1, 4))


def setup_channels(node, publishers, subscribers):
    """general (public), a private channel and a DM, every client a member."""
    status, body = node.http("GET", "/api/v1/channels", publishers[0])
    general = next(c["id"] for c in body["channels"] if c["name"] == "general")
    for u in publishers + subscribers:  # users exist once they have been seen
        node.http("GET", "/api/v1/channels", u)
    status, body = node.http("POST", "/api/v1/channels", publishers[0],
                             {"name": f"faults{random.randrange(10**9)}", "kind": "private"})
    private = body["channel"]["id"]
    for u in publishers[1:] + subscribers:
        node.http("POST", f"/api/v1/channels/{private}/members", publishers[0], {"user": u})
    status, body = node.http("POST", "/api/v1/dms", publishers[0], {"user": publishers[1]})
    dm = body["channel"]["id"]
    return [general, private], dm


async def drive(r, publishers, subscribers, channels, dm):
    heads = {}
    tasks = [asyncio.create_task(r.publisher(p, channels + ([dm] if i < 2 else []),
                                             "http" if i == len(publishers) - 1 else "ws", i))
             for i, p in enumerate(publishers)]
    subs = [asyncio.create_task(r.subscriber(s, channels, heads, i + 1))
            for i, s in enumerate(subscribers)]
    until = time.monotonic() + r.a.duration
    await r.nemesis([f for f in r.a.faults.split(",") if f], until)
    while time.monotonic() < until:
        await asyncio.sleep(0.2)
    r.stopping = True
    await asyncio.gather(*tasks)
    # Everything answered: the heads now, then every subscriber to them.
    rows = check.load_rows(r.pg.dsn, channels)
    for c in channels:
        heads[c] = max([x["seq"] for x in rows if x["channel"] == c] or [0])
    r.end_deadline = time.monotonic() + 30
    r.ending = True
    await asyncio.gather(*subs)


def seconds(text):
    """A duration: 90, 90s, 30m or 2h."""
    units = {"s": 1, "m": 60, "h": 3600}
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def start_nodes(a, pg, etcd, path):
    """One fanoutd, or with --nodes N a cluster of N on the private etcd."""
    if a.nodes == 1:
        return [Fanoutd(a.bin, a.out, pg.dsn, a.unsafe_async_commit,
                        read_dsn=getattr(pg, "read_dsn", ""), listen=path.listen)]
    nodes = []
    for k in range(1, a.nodes + 1):
        proxy = Proxy()  # the others reach this node's peer port through it
        section = (f"[cluster]\netcd = {etcd.url}\nname = n{k}\ncluster = faults{a.seed}\n"
                   f"peer = 127.0.0.1:{proxy.target}\nadvertise = 127.0.0.1:{proxy.port}\n"
                   "lease_ttl_s = 1\n")
        nodes.append(Fanoutd(a.bin, os.path.join(a.out, f"n{k}"), pg.dsn,
                             a.unsafe_async_commit, section, listen=path.listen))
        nodes[-1].proxy = proxy
    return nodes


def report_failovers(hist, pg):
    """Per crash of the leader: seconds to the new leader, and to the first
    acknowledged publish that was sent after the crash."""
    invoked = {(o["proc"], o["id"]): o["t"] for o in hist.ops if o["op"] == "invoke"}
    for i, (crash, lead) in enumerate(zip(pg.crashed_at, pg.failovers)):
        c = crash - hist.t0
        first = min((o["t"] for o in hist.ops if o["op"] == "ok"
                     and invoked.get((o["proc"], o["id"]), -1) > c), default=float("nan"))
        print(f"run: failover {i + 1}: new leader after {lead:.1f} s, first publish sent "
              f"after the crash acknowledged after {first - c:.1f} s")
    for i, took in enumerate(pg.switchovers):
        print(f"run: switchover {i + 1}: new leader after {took:.1f} s")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--duration", type=seconds, default=60.0)
    p.add_argument("--faults", default="kill,pause,pg-restart,pg-kill")
    p.add_argument("--interval", type=seconds, default=2.0)
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--publishers", type=int, default=4)
    p.add_argument("--subscribers", type=int, default=3)
    p.add_argument("--unsafe-async-commit", action="store_true")
    p.add_argument("--patroni", action="store_true")
    p.add_argument("--netem", default=netem.DEFAULT,
                   help="what a netem burst does to the clients' path (default %(default)s)")
    p.add_argument("--bin", default=os.environ.get("FANOUT_BIN",
                                                   os.path.join(ROOT, "build/apps/fanoutd")))
    a = p.parse_args(argv)
    faults = [f for f in a.faults.split(",") if f]
    bad = [f for f in faults if f not in FAULTS or (f in CLUSTER_FAULTS and a.nodes == 1) or
           (f in PATRONI_FAULTS) != a.patroni and f in PATRONI_FAULTS + ("pg-kill", "pg-restart")]
    if bad or a.publishers < 2 or not 1 <= a.nodes <= 5:
        print(f"run: unknown faults {bad} (known: {','.join(FAULTS)}; etcd-kill and partition need "
              "--nodes > 1; pg-failover and pg-switchover need --patroni, which takes no pg-kill or "
              "pg-restart), fewer than 2 publishers, or --nodes not 1..5", file=sys.stderr)
        return 2
    try:
        knobs = netem.parse(a.netem)
    except ValueError as e:
        print(f"run: {e}", file=sys.stderr)
        return 2
    os.makedirs(a.out, exist_ok=True)
    print(f"run: seed {a.seed}, {a.duration:g} s, {a.nodes} node(s), faults "
          f"{a.faults or 'none'} every ~{a.interval:g} s"
          f"{', UNSAFE async commit (negative control)' if a.unsafe_async_commit else ''}")
    hist, pg, etcd, nodes, lane = History(), None, None, [], netem.Loopback()
    try:
        if "netem" in faults:
            lane = netem.ClientPath(a.out, a.seed, knobs)
        etcd = Etcd(os.path.join(a.out, "etcd")) if a.nodes > 1 or a.patroni else None
        pg = (Patroni(os.path.join(a.out, "patroni"), etcd, a.unsafe_async_commit) if a.patroni
              else Postgres(os.path.join(a.out, "pg"), a.unsafe_async_commit))
        nodes = start_nodes(a, pg, etcd, lane)
        tag = f"{a.seed % 100000}"
        publishers = [f"fp{tag}x{i}" for i in range(a.publishers)]
        subscribers = [f"fs{tag}x{i}" for i in range(a.subscribers)]
        channels, dm = setup_channels(nodes[0], publishers, subscribers)
        r = Run(a, nodes, pg, hist, etcd, lane)
        asyncio.run(drive(r, publishers, subscribers, channels, dm))
        path = os.path.join(a.out, "history.jsonl")
        hist.write(path)
        if a.patroni:
            report_failovers(hist, pg)
        refused = sum(n.refused_starts for n in nodes)
        if refused:
            print(f"run: {refused} node start(s) failed (no PostgreSQL host took writes) and "
                  "were made again 2 s later, as systemd's Restart=on-failure does")
        counts = lane.stop()
        if counts:
            print(f"run: netem on the clients' path ({a.netem}): {counts['bursts']} burst(s), "
                  f"{counts['forwarded']} frames forwarded, {counts['dropped']} dropped, "
                  f"{counts['reordered']} reordered, {counts['duplicated']} duplicated")
        report = os.path.join(a.out, "report.json")
        rc = check.main([path, "--dsn", pg.dsn, "--json", report])
        if counts and os.path.exists(report):
            with open(report) as f:
                merged = dict(json.load(f), netem=counts)
            with open(report, "w") as f:
                json.dump(merged, f, indent=1)
        return rc
    except (RuntimeError, subprocess.CalledProcessError, OSError, KeyError, TypeError) as e:
        print(f"run: the run could not be made: {e}", file=sys.stderr)
        return 2
    finally:
        lane.stop()
        for node in nodes:
            node.stop()
        if etcd:
            etcd.stop()
        if pg:
            pg.stop()


if __name__ == "__main__":
    sys.exit(main())
