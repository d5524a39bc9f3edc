# SPDX-License-Identifier: BSD-3-Clause
"""Slow consumers, rate limits, heartbeats and shutdown: each with a server
configured for the case."""
import asyncio
import http.client
import json
import signal
import os
import socket
import threading
import time
import uuid

import pytest
import websockets
import websockets.exceptions

from conftest import Client, Server, channel_id, run, sql, token, unique


def new_channel(server, owner):
    status, body = server.http("POST", "/api/v1/channels", {"name": unique("ch")}, user=owner)
    assert status == 201
    return body["channel"]["id"]


def stall_report(server, highest, nseqs, nlagged):
    """What a stalled replay looked like, for the failure message: whether
    pages were still being read (a spin) or not (a fetch never answered)."""
    pages = [server.metric("fanout_history_pages_total")]
    time.sleep(1)
    pages.append(server.metric("fanout_history_pages_total"))
    with open(server.log.name) as f:
        tail = f.read()[-3000:]
    return (f"replay stalled after seq {highest} ({nseqs} messages, {nlagged} lagged notices); "
            f"history pages read {pages[0]:.0f} then {pages[1]:.0f} a second later; "
            f"lagged_total {server.metric('fanout_lagged_total'):.0f}; server log tail:\n{tail}")


async def slow_reader(server):
    """A new channel and a member of it whose client has a tiny receive
    buffer, subscribes, then stops reading: the server's output and send
    queue back up behind it. (the channel's owner, the channel, the client)"""
    owner = unique()
    chan = new_channel(server, owner)
    user = unique("slow")
    assert server.http("POST", f"/api/v1/channels/{chan}/join", user=user)[0] == 200
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    ws = await websockets.connect(f"{server.ws_url}?token={token(user)}", sock=sock,
                                  ping_interval=None, max_queue=1, max_size=2**24)
    slow = Client(ws)
    slow.hello = await slow.expect("hello")
    await slow.subscribe(chan)
    return owner, chan, slow


async def flood(server, owner, chan, total):
    """total messages of 3 KB published to chan, every one acknowledged in
    order; the publisher's client. It pings while it waits, so a short
    heartbeat never closes it before its acks are in."""
    pub = await Client.connect(server, owner)
    body = "x" * 3000
    for i in range(total):
        await pub.send({"type": "publish", "req": f"p{i}", "channel": chan, "text": f"{i} {body}",
                        "client_msg_id": f"m{i}"})
    acks, deadline = [], time.monotonic() + 60
    while len(acks) < total and time.monotonic() < deadline:
        try:
            acks.append(await pub.next(lambda f: f.get("type") == "ack", 0.5))
        except TimeoutError:
            await pub.send({"type": "ping", "req": "keepalive"})
    assert sorted(a["seq"] for a in acks) == list(range(1, total + 1))
    return pub


def test_slow_consumer_lags_and_loses_nothing():
    # The slow client sends nothing while it does not read: a heartbeat
    # longer than the run keeps a slow machine from closing it (4000).
    server = Server(send_queue_bytes=65536, publish_rate=1000000, publish_burst=1000000,
                    heartbeat_ms=300000)
    try:
        async def go():
            owner, chan, slow = await slow_reader(server)
            lagged_before = server.metric("fanout_lagged_total")
            total = 4000
            pub = await flood(server, owner, chan, total)
            deadline = time.time() + 20
            while server.metric("fanout_lagged_total") == lagged_before and time.time() < deadline:
                await asyncio.sleep(0.1)
            assert server.metric("fanout_lagged_total") > lagged_before

            # Now read everything: a lagged notice, then every seq in order.
            highest, seqs, lagged = 0, [], []
            while highest < total:
                try:
                    f = await slow.next(lambda f: f.get("type") in ("message", "lagged"), 30)
                except TimeoutError:
                    raise AssertionError(stall_report(server, highest, len(seqs), len(lagged)))
                if f["type"] == "lagged":
                    lagged.append(f)
                    continue
                seqs.append(f["seq"])
                assert f["seq"] <= highest + 1, f"gap after {highest}: {f['seq']}"
                highest = max(highest, f["seq"])
            assert lagged and lagged[0]["channels"][0]["channel"] == chan
            assert set(seqs) == set(range(1, total + 1))
            await slow.close(); await pub.close()
        run(go())
    finally:
        assert server.stop() == 0


def test_a_close_behind_a_full_output_still_reaches_the_client():
    # A heartbeat close (4000) decided while the session's frames wait behind
    # an output past its high-water mark: once the client reads, the frames
    # and then the close frame follow. Before the fix the flush that emptied
    # the output left the rest queued with nothing to pull it, and the
    # connection hung open, silent (most runs).
    server = Server(heartbeat_ms=1000, send_queue_bytes=65536, publish_rate=1000000,
                    publish_burst=1000000)
    try:
        async def go():
            owner, chan, slow = await slow_reader(server)
            await flood(server, owner, chan, 2500)
            await asyncio.sleep(3.5)  # past twice heartbeat_ms and the once-a-second check
            with pytest.raises(websockets.exceptions.ConnectionClosed) as e:
                await slow.expect("never", timeout=20)
            assert e.value.rcvd is not None and e.value.rcvd.code == 4000
            seqs = [f["seq"] for f in slow.frames if f.get("type") == "message"]
            assert seqs and seqs == sorted(set(seqs)), seqs[:20]
        run(go())
    finally:
        assert server.stop() == 0


def test_publish_rate_limit():
    server = Server(publish_rate=5, publish_burst=5)
    try:
        async def go():
            c = await Client.connect(server, unique())
            general = next(ch["id"] for ch in c.hello["channels"] if ch["name"] == "general")
            replies = [await c.publish(general, f"r{i}") for i in range(12)]
            limited = [r for r in replies if r["type"] == "error"]
            assert limited and all(r["code"] == "rate_limited" for r in limited)
            assert len(limited) >= 5
            await asyncio.sleep(1.2)
            assert (await c.publish(general, "later"))["type"] == "ack"
            await c.close()
        run(go())
    finally:
        assert server.stop() == 0


def test_heartbeat_timeout_closes_4000_and_pings_keep_alive():
    server = Server(heartbeat_ms=1000)
    try:
        async def go():
            silent = await Client.connect(server, unique())
            chatty = await Client.connect(server, unique())
            for _ in range(6):
                assert (await chatty.answer({"type": "ping"}))["type"] == "pong"
                await asyncio.sleep(0.5)
            with pytest.raises(websockets.exceptions.ConnectionClosed) as e:
                await silent.expect("never", timeout=5)
            assert e.value.rcvd.code == 4000
            assert (await chatty.answer({"type": "ping"}))["type"] == "pong"
            await chatty.close()
        run(go())
    finally:
        assert server.stop() == 0


def test_sigterm_closes_1012_and_exits_0():
    """SIGTERM: clients hear 1012 (service restart: reconnect, here or to
    another node, and resume), and the process exits 0."""
    server = Server()
    async def go():
        c = await Client.connect(server, unique())
        server.proc.send_signal(signal.SIGTERM)
        with pytest.raises(websockets.exceptions.ConnectionClosed) as e:
            await c.expect("never", timeout=10)
        assert e.value.rcvd.code == 1012
    run(go())
    assert server.proc.wait(timeout=15) == 0


def test_sigterm_acknowledges_what_the_writer_holds():
    """SIGTERM while publishes wait in the writer (a 300 ms batch window
    holds them): fanoutd commits them, their acks reach the client before
    the 1012, and every one is stored. None is lost or left unanswered."""
    server = Server(extra_ini="[persist]\nbatch_window_us = 300000\nbatch_max = 1000\n")

    async def go():
        c = await Client.connect(server, unique())
        general = channel_id(c, "general")
        ids = [uuid.uuid4().hex for _ in range(50)]
        for i, cmid in enumerate(ids):
            await c.send({"type": "publish", "channel": general, "text": f"queued {i}",
                          "client_msg_id": cmid, "req": cmid})
        await asyncio.sleep(0.05)  # in the writer's queue, its window still open
        server.proc.send_signal(signal.SIGTERM)
        acks = {}
        with pytest.raises(websockets.exceptions.ConnectionClosed) as e:
            while True:
                f = await c.next(lambda f: f.get("req") in ids, timeout=15)
                acks[f["req"]] = f
        assert e.value.rcvd.code == 1012
        return general, ids, acks

    general, ids, acks = run(go())
    assert server.proc.wait(timeout=15) == 0
    assert sorted(acks) == sorted(ids), f"{len(acks)} of {len(ids)} answered before the 1012"
    assert all(a["type"] == "ack" for a in acks.values()), acks
    stored = sql(f"SELECT count(*) FROM messages WHERE channel_id = {general} AND "
                 f"client_msg_id IN ({','.join(repr(i) for i in ids)})")
    assert int(stored[0][0]) == len(ids)


def test_wss_and_https_on_the_same_port():
    server = Server(tls=True)
    try:
        async def go():
            c = await Client.connect(server, unique())
            general = next(ch["id"] for ch in c.hello["channels"] if ch["name"] == "general")
            await c.subscribe(general)
            ack = await c.publish(general, "over tls")
            assert ack["type"] == "ack"
            assert (await c.messages(general, 1))[0]["text"] == "over tls"
            await c.close()

        async def plain():
            # Plain websocket on the TLS port does not upgrade.
            with pytest.raises(Exception):
                await websockets.connect(f"ws://127.0.0.1:{server.port}/ws?token={token('x')}",
                                         open_timeout=3)
        # Plain requests between TLS ones leave the next handshakes whole.
        for _ in range(3):
            run(go())
            status, body = server.http("GET", "/api/v1/channels", user=unique())
            assert status == 200 and body["channels"][0]["name"] == "general"
            run(plain())
        assert server.proc.poll() is None
    finally:
        assert server.stop() == 0


# API calls run on the reader threads: with one, the call that makes the
# channel has opened the only connection there is to freeze.
ONE_READER = "[postgres]\nreader_threads = 1\n"


class frozen_database:
    """Stops (SIGSTOP) every client backend of the test database for the
    block's duration: fanoutd's queries hang as on an overloaded server."""

    def __enter__(self):
        rows = sql("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                   "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
        self.pids = [int(r[0]) for r in rows]
        assert self.pids, "no backends to freeze"
        for pid in self.pids:
            os.kill(pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc):
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


def test_slow_api_call_is_answered_late_not_dropped():
    # A call that waits on the database for seconds still gets its answer
    # on the same kept-alive connection (only api_timeout_ms bounds it);
    # the body is empty, as a join's is.
    server = Server(extra_ini=ONE_READER)
    try:
        owner = unique()
        channel = new_channel(server, owner)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)

        def join():
            conn.request("POST", f"/api/v1/channels/{channel}/join", body=b"",
                         headers={"Authorization": "Bearer " + token(unique())})
            r = conn.getresponse()
            return r.status, json.loads(r.read())

        assert join()[0] == 200
        with frozen_database():
            t0 = time.monotonic()
            box = {}
            def call():
                try:
                    box["r"] = join()
                except Exception as e:  # noqa: BLE001 -- reported by the assert below
                    box["r"] = (repr(e),)
            th = threading.Thread(target=call)
            th.start()
            time.sleep(7)
        th.join(15)
        assert box.get("r", (None,))[0] == 200, box
        assert time.monotonic() - t0 >= 7
        assert join()[0] == 200  # the same connection, still open
        conn.close()
    finally:
        assert server.stop() == 0


def test_api_call_past_its_deadline_gets_503_timeout():
    server = Server(api_timeout_ms=1500, extra_ini=ONE_READER)
    try:
        owner = unique()
        channel = new_channel(server, owner)
        joiner = unique()
        with frozen_database():
            t0 = time.monotonic()
            status, body = server.http("POST", f"/api/v1/channels/{channel}/join", {}, user=joiner)
            waited = time.monotonic() - t0
        assert status == 503 and body["error"]["code"] == "timeout", (status, body)
        assert 1.4 <= waited < 5, waited
        # Nothing is lost: the call may have been applied late; a retry is safe.
        status, body = server.http("POST", f"/api/v1/channels/{channel}/join", user=joiner)
        assert status == 200 and body["member"] is True
        status, body = server.http("GET", f"/api/v1/channels/{channel}/members", user=owner)
        assert status == 200 and joiner in [m["name"] for m in body["members"]]
        assert server.metric("fanout_api_timeouts_total") >= 1
    finally:
        assert server.stop() == 0


def test_a_node_full_of_connections_closes_the_next_1013():
    """[server] max_connections: the connection past the cap is accepted and
    closed at once with 1013 "try again later"; a refused connection takes
    no place, and a place given back serves the next client."""
    server = Server(max_connections=2)
    try:
        async def go():
            a = await Client.connect(server, unique("a"))
            b = await Client.connect(server, unique("b"))
            for _ in range(3):
                ws = await websockets.connect(f"{server.ws_url}?token={token(unique('c'))}",
                                              ping_interval=None)
                with pytest.raises(websockets.exceptions.ConnectionClosed) as e:
                    await asyncio.wait_for(ws.recv(), 10)
                assert e.value.rcvd.code == 1013
                assert "try again later" in e.value.rcvd.reason
            assert server.metric("fanout_connections") == 2
            await a.ws.close()
            deadline = time.monotonic() + 10
            while server.metric("fanout_connections") > 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            c = await Client.connect(server, unique("c"))
            assert c.hello["type"] == "hello"
            await b.ws.close()
            await c.ws.close()
        run(go())
    finally:
        assert server.stop() == 0


def test_slow_and_idle_http_clients_are_closed():
    """A client that sends half a request head, or nothing after its last
    answer, is closed after http_idle_ms; a websocket is not timed by it."""
    server = Server(http_idle_ms=800)
    try:
        def closed_within(sock, seconds):
            sock.settimeout(seconds)
            try:
                return sock.recv(65536) == b""
            except socket.timeout:
                return False

        half = socket.create_connection(("127.0.0.1", server.port))
        half.sendall(b"GET /healthz HTTP/1.1\r\nHost:")
        idle = socket.create_connection(("127.0.0.1", server.port))
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        idle.settimeout(5)
        assert idle.recv(65536).startswith(b"HTTP/1.1 200 ")

        async def go():
            c = await Client.connect(server, unique())
            await asyncio.sleep(2.5)
            assert (await c.answer({"type": "ping"}))["type"] == "pong"
            await c.close()
        run(go())
        assert closed_within(half, 5) and closed_within(idle, 5)
        assert server.proc.poll() is None
    finally:
        assert server.stop() == 0
