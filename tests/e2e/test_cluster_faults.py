# SPDX-License-Identifier: BSD-3-Clause
"""The cluster under faults (docs/cluster.md, "Faults"): the owner of a
channel killed with SIGKILL or frozen with SIGSTOP past its lease while
publishers on the other nodes stream, a node drained under traffic, etcd
killed and restarted. Each test gets a fresh three-node cluster. The
guarantees checked every time: every acknowledged message is in PostgreSQL
exactly once, seqs are dense, and every subscriber on a surviving node
receives every acknowledged message in seq order, with no gap, once it has
caught up."""
import asyncio
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
import websockets.exceptions

from conftest import Client, Proxy, channel_id, run, sql, unique
from test_cluster import Cluster


@pytest.fixture
def cluster():
    c = Cluster(3)
    yield c
    c.stop()


async def publish_until_acked(client, channel, text, cmid, deadline):
    """Publishes as a careful client does: the same client_msg_id again after
    an error, until acked or the deadline."""
    while True:
        ack = await client.publish(channel, text, cmid=cmid)
        if ack.get("type") == "ack":
            return ack
        assert ack.get("code") in ("unavailable", "overloaded"), ack
        if time.monotonic() > deadline:
            raise AssertionError(f"{cmid} never acked: {ack}")
        await asyncio.sleep(0.05)


async def stream(client, channel, tag, count, acks, deadline):
    for i in range(count):
        cmid = f"{tag}-{i}-{uuid.uuid4().hex[:6]}"
        ack = await publish_until_acked(client, channel, f"{tag} {i}", cmid, deadline)
        acks[cmid] = ack["seq"]
        await asyncio.sleep(0.01)


def check_durable(channel, acks):
    """Every acked message is exactly one row, at the acked seq (the test's
    client_msg_ids are unique); the channel's seqs are dense."""
    rows = sql(f"SELECT client_msg_id, seq FROM messages WHERE channel_id = {channel}")
    stored = {}
    for cmid, seq in rows:
        if cmid in acks:
            assert cmid not in stored, f"{cmid} stored twice"
            stored[cmid] = int(seq)
    for cmid, seq in acks.items():
        assert stored.get(cmid) == seq, (cmid, seq, stored.get(cmid))
    seqs = sorted(int(s) for _, s in rows)
    assert seqs == list(range(1, len(seqs) + 1)), "seqs are not dense"


async def check_received(client, channel, acks, timeout=20):
    """client sees every acked seq, in increasing order, each once."""
    want, seen, last = set(acks.values()), [], 0
    deadline = time.monotonic() + timeout
    while not want <= set(seen):
        left = deadline - time.monotonic()
        assert left > 0, f"{client.user} missing {sorted(want - set(seen))[:10]}"
        try:
            msg = await client.next(lambda f: f.get("type") == "message" and f.get("channel") == channel,
                                    timeout=left)
        except TimeoutError:
            continue
        assert msg["seq"] > last, f"out of order or repeated: {msg['seq']} after {last}"
        last = msg["seq"]
        seen.append(msg["seq"])


def ready_status(node):
    try:
        return urllib.request.urlopen(node.url + "/readyz", timeout=5).status
    except urllib.error.HTTPError as e:
        return e.code


def owner_and_others(cluster, channel):
    owner = cluster.node(cluster.owner(channel))
    return owner, [n for n in cluster.nodes if n is not owner]


def test_kill_the_owner_under_load(cluster):
    async def go():
        probe = await Client.connect(cluster.nodes[0], unique())
        general = channel_id(probe, "general")
        await probe.close()
        owner, others = owner_and_others(cluster, general)
        pubs = [await Client.connect(n, unique()) for n in others]
        subs = [await Client.connect(n, unique()) for n in others]
        for s in subs:
            await s.subscribe(general)
        await asyncio.sleep(0.3)
        acks = {}
        deadline = time.monotonic() + 60
        tasks = [asyncio.create_task(stream(p, general, f"k{i}", 60, acks, deadline))
                 for i, p in enumerate(pubs)]
        while len(acks) < 20:
            await asyncio.sleep(0.01)
        owner.proc.send_signal(signal.SIGKILL)
        await asyncio.gather(*tasks)
        assert len(acks) == 120
        for s in subs:
            await check_received(s, general, acks)
        for c in pubs + subs:
            await c.close()
        return general, acks
    general, acks = run(go())
    check_durable(general, acks)


def test_sigstop_the_owner_past_its_lease(cluster):
    """Frozen past its lease, the owner commits and acknowledges nothing on
    its old lease when it wakes: the others took the channel over, and what
    its own clients sent meanwhile is refused until it has joined again."""
    async def go():
        probe = await Client.connect(cluster.nodes[0], unique())
        general = channel_id(probe, "general")
        await probe.close()
        owner, others = owner_and_others(cluster, general)
        on_owner = await Client.connect(owner, unique())
        pub = await Client.connect(others[0], unique())
        sub = await Client.connect(others[1], unique())
        await sub.subscribe(general)
        await asyncio.sleep(0.3)
        acks = {}
        deadline = time.monotonic() + 40
        await stream(pub, general, "before", 5, acks, deadline)
        owner.proc.send_signal(signal.SIGSTOP)
        try:
            # Sent to the frozen owner: sits in its socket until it wakes.
            frozen_cmid = "frozen-" + uuid.uuid4().hex[:6]
            await on_owner.send({"type": "publish", "req": "frozen", "channel": general,
                                 "text": "sent while frozen", "client_msg_id": frozen_cmid})
            await asyncio.sleep(2.5)  # past the 1 s lease: the others take over
            await stream(pub, general, "during", 5, acks, deadline)
        finally:
            owner.proc.send_signal(signal.SIGCONT)
        answer = await on_owner.next(lambda f: f.get("req") == "frozen", timeout=15)
        if answer.get("type") != "ack":
            assert answer.get("code") == "unavailable", answer
            answer = await publish_until_acked(on_owner, general, "sent while frozen", frozen_cmid,
                                               deadline)
        acks[frozen_cmid] = answer["seq"]
        # Awake, it finds its lease gone and joins again with a new one;
        # then it acknowledges again.
        for _ in range(100):
            if "joined again with a new lease" in owner.logtext():
                break
            await asyncio.sleep(0.05)
        assert "lease lost" in owner.logtext() and "joined again" in owner.logtext()
        await stream(on_owner, general, "rejoined", 3, acks, deadline)
        await stream(pub, general, "after", 5, acks, deadline)
        await check_received(sub, general, acks)
        for c in (on_owner, pub, sub):
            await c.close()
        return general, acks
    general, acks = run(go())
    check_durable(general, acks)


def test_etcd_gone_stops_acks_then_recovers(cluster):
    """With etcd killed, owners stop acknowledging once their lease may have
    expired; with etcd back, they recover their leases and acknowledge."""
    ctl, edir = os.environ["FANOUT_TEST_ETCD_CTL"], os.environ["FANOUT_TEST_ETCD_DIR"]
    port = os.environ["FANOUT_TEST_ETCD"].rsplit(":", 1)[1]

    async def go():
        c = await Client.connect(cluster.nodes[0], unique())
        general = channel_id(c, "general")
        assert (await c.publish(general, "before"))["type"] == "ack"
        subprocess.run([ctl, "kill", edir], check=True, capture_output=True)
        try:
            await asyncio.sleep(1.2)  # past the lease
            refused = await c.publish(general, "while etcd is gone")
            assert refused.get("code") == "unavailable", refused
        finally:
            subprocess.run([ctl, "start", edir, port], check=True, capture_output=True)
        acks = {}
        await stream(c, general, "etcd-back", 3, acks, time.monotonic() + 20)
        await c.close()
        return general, acks
    general, acks = run(go())
    check_durable(general, acks)


def test_drain_under_traffic(cluster):
    """fanoutctl node drain: the node's channels move, then its clients are
    closed with 1012 and reconnect elsewhere; nothing acked is lost and the
    subscribers resume where they were. undrain brings it back."""
    async def go():
        probe = await Client.connect(cluster.nodes[0], unique())
        general = channel_id(probe, "general")
        await probe.close()
        drained, others = owner_and_others(cluster, general)
        user_pub, user_sub = unique(), unique()
        pub = await Client.connect(drained, user_pub)
        sub = await Client.connect(drained, user_sub)
        await sub.subscribe(general)
        await asyncio.sleep(0.3)
        acks, closes, received = {}, [], []
        deadline = time.monotonic() + 60

        async def publisher():
            nonlocal pub
            for i in range(60):
                cmid = f"drain-{i}-{uuid.uuid4().hex[:6]}"
                while cmid not in acks:
                    try:
                        acks[cmid] = (await publish_until_acked(pub, general, f"d {i}", cmid, deadline))["seq"]
                    except websockets.exceptions.ConnectionClosed as e:
                        closes.append(e.rcvd.code if e.rcvd else None)
                        pub = await Client.connect(others[0], user_pub)
                await asyncio.sleep(0.02)

        async def subscriber():
            nonlocal sub
            last = 0
            while time.monotonic() < deadline:
                try:
                    msg = await sub.next(lambda f: f.get("type") == "message" and f.get("channel") == general,
                                         timeout=1)
                    assert msg["seq"] > last, (msg["seq"], last)
                    last = msg["seq"]
                    received.append(last)
                except TimeoutError:
                    if len(acks) == 60 and set(acks.values()) <= set(received):
                        return
                except websockets.exceptions.ConnectionClosed as e:
                    closes.append(e.rcvd.code if e.rcvd else None)
                    sub = await Client.connect(others[1], user_sub)
                    await sub.subscribe(general, since=last)

        tasks = [asyncio.create_task(publisher()), asyncio.create_task(subscriber())]
        while len(acks) < 15:
            await asyncio.sleep(0.01)
        cluster.ctl("node", "drain", drained.name)
        await asyncio.gather(*tasks)
        assert closes and set(closes) == {1012}, closes
        assert set(acks.values()) <= set(received)
        ready = drained.http("GET", "/readyz")
        assert ready[0] == 503 and "draining" in str(ready[1])
        assert drained.metric("fanout_cluster_draining") == 1
        assert others[0].metric("fanout_cluster_ring_members") == 2
        out = cluster.ctl("cluster", "status", check=False)
        assert out.returncode == 1 and "draining" in out.stdout
        assert cluster.owner(general) != drained.name
        cluster.ctl("node", "undrain", drained.name)
        for _ in range(100):
            if ready_status(drained) == 200:
                break
            await asyncio.sleep(0.05)
        assert ready_status(drained) == 200
        await pub.close(); await sub.close()
        return general, acks
    general, acks = run(go())
    check_durable(general, acks)


def test_peer_link_cut_and_healed():
    """Every link to n3, the owner of a channel, cut for 2 s while n1
    publishes into it and n2 subscribes: the publishes wait at n1 and go
    through when the link is back; n2 registers again and catches up."""
    proxy = Proxy()
    cluster = Cluster(3, proxies={"n3": proxy})
    try:
        async def go():
            user = unique()
            pub = await Client.connect(cluster.nodes[0], user)
            channel = None
            for _ in range(40):  # a channel n3 owns
                status, body = cluster.nodes[0].http("POST", "/api/v1/channels",
                                                     {"name": unique("cut"), "kind": "public"}, user=user)
                assert status == 201, body
                if cluster.owner(body["channel"]["id"]) == "n3":
                    channel = body["channel"]["id"]
                    break
            assert channel, "no channel landed on n3"
            reader = unique()
            assert cluster.nodes[1].http("POST", f"/api/v1/channels/{channel}/join", {}, user=reader)[0] == 200
            sub = await Client.connect(cluster.nodes[1], reader)
            await sub.subscribe(channel)
            await asyncio.sleep(0.3)
            acks, deadline = {}, time.monotonic() + 40
            task = asyncio.create_task(stream(pub, channel, "cut", 60, acks, deadline))
            while len(acks) < 10:
                await asyncio.sleep(0.01)
            proxy.cut()
            await asyncio.sleep(2)
            cut_acks = len(acks)
            proxy.heal()
            await task
            assert cut_acks < 60
            await check_received(sub, channel, acks)
            await pub.close(); await sub.close()
            return channel, acks
        channel, acks = run(go())
        check_durable(channel, acks)
        log = cluster.nodes[0].logtext()
        assert "peer link to n3" in log
    finally:
        cluster.stop()
        proxy.stop()
