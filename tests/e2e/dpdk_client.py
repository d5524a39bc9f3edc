# SPDX-License-Identifier: BSD-3-Clause
"""A websocket client for the DPDK edge tests, run inside the clients' network
namespace (ip netns exec) by test_dpdk_edge.py: one scenario per call, its
result as one JSON line on stdout. python3-websockets over the Linux kernel's
TCP: an independent client of our userspace TCP."""
import argparse
import asyncio
import http.client
import json
import socket
import struct
import sys
import time

import websockets


async def recv_json(ws, timeout):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def connect(url):
    ws = await websockets.connect(url, open_timeout=10, ping_interval=None, max_size=2**24)
    hello = await recv_json(ws, 10)
    assert hello["type"] == "hello", hello
    return ws, hello


async def collect(ws, channel, count, timeout, frames=None):
    """Messages of channel until count distinct seqs (or the timeout); every
    seq received is kept, duplicates included, in arrival order."""
    seqs, deadline = [], time.monotonic() + timeout
    while len(set(seqs)) < count and time.monotonic() < deadline:
        try:
            f = await recv_json(ws, max(0.05, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            break
        if frames is not None:
            frames.append(f)
        if f.get("type") == "message" and f.get("channel") == channel:
            seqs.append(f["seq"])
    return seqs


async def subscribe(ws, channel, since=None):
    entry = {"channel": channel}
    if since is not None:
        entry["since"] = since
    await ws.send(json.dumps({"type": "subscribe", "req": "sub", "channels": [entry]}))


async def publish_all(pub, a, texts):
    """Publishes every text to a.channel without waiting, then collects the
    acks: the seq of each text, in the order given (-1: an error, or no ack
    before a.timeout)."""
    for i, text in enumerate(texts):
        await pub.send(json.dumps({"type": "publish", "req": f"p{i}", "channel": a.channel,
                                   "client_msg_id": f"{a.tag}-{i}", "text": text}))
    acks, deadline = {}, time.monotonic() + a.timeout
    while len(acks) < len(texts) and time.monotonic() < deadline:
        try:
            f = await recv_json(pub, max(0.05, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            break
        if f.get("type") in ("ack", "error") and f.get("req"):
            acks[f["req"]] = f["seq"] if f.get("type") == "ack" else -1
    return [acks.get(f"p{i}", -1) for i in range(len(texts))]


async def pubsub(a):
    """Publisher and subscriber on two connections, read at once: the
    publisher sends count messages and collects its acks while the
    subscriber collects the channel's messages."""
    pub, _ = await connect(a.url_pub)
    sub, _ = await connect(a.url_sub)
    await subscribe(sub, a.channel)
    frames = []
    while True:  # subscribed before the first publish: nothing published is missed
        f = await recv_json(sub, a.timeout)
        frames.append(f)
        if f.get("type") in ("subscribed", "error"):
            break
    reader = asyncio.create_task(collect(sub, a.channel, a.count, a.timeout, frames))
    acks = await publish_all(pub, a, [f"{a.tag} {i} " + "x" * a.size for i in range(a.count)])
    got = await reader
    await pub.close()
    await sub.close()
    return {"acks": acks, "received": got, "types": sorted({f.get("type") for f in frames})}


async def mention(a):
    """The publisher says @here twice; the subscriber, a member, collects
    what comes for a.timeout / 10 s: the answers and the mention frames."""
    pub, _ = await connect(a.url_pub)
    sub, _ = await connect(a.url_sub)
    await subscribe(sub, a.channel)
    while (await recv_json(sub, a.timeout)).get("type") not in ("subscribed", "error"):
        pass
    answers = []
    for i, text in enumerate([f"@here {a.tag} first", f"@here {a.tag} again"]):
        await pub.send(json.dumps({"type": "publish", "req": f"m{i}", "channel": a.channel,
                                   "client_msg_id": f"{a.tag}-m{i}", "text": text}))
        while True:
            f = await recv_json(pub, a.timeout)
            if f.get("req") == f"m{i}":
                answers.append(f.get("code") or f.get("type"))
                break
    got, deadline = [], time.monotonic() + a.timeout / 10
    while time.monotonic() < deadline:
        try:
            f = await recv_json(sub, max(0.05, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            break
        if f.get("type") == "mention":
            got.append(f)
    await pub.close()
    await sub.close()
    return {"answers": answers, "mentions": [(f["broad"], f["text"]) for f in got]}


def text_of(tag, i, size):
    """The text of message i: size characters that differ from message to
    message and place to place (some of them two or three bytes of UTF-8),
    so a byte out of place anywhere in a segment shows."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789é€ \"\\"
    head = f"{tag}:{i}:"
    return head + "".join(alphabet[(i * 7 + k * 13 + k // 97) % len(alphabet)]
                          for k in range(max(0, size - len(head))))


async def texts(a):
    """One publisher, a.subscribers subscribers on the same channel:
    a.count messages whose sizes cycle through a.sizes; every subscriber
    must receive every message's exact text, once, in order."""
    sizes = [int(x) for x in a.sizes.split(",")]
    pub, _ = await connect(a.url_pub)
    subs = [(await connect(a.url_sub))[0] for _ in range(a.subscribers)]
    for ws in subs:
        await subscribe(ws, a.channel)
        while (await recv_json(ws, a.timeout)).get("type") not in ("subscribed", "error"):
            pass

    async def read(ws):
        got, deadline = [], time.monotonic() + a.timeout
        while len(got) < a.count and time.monotonic() < deadline:
            try:
                f = await recv_json(ws, max(0.05, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break
            if f.get("type") == "message" and f.get("channel") == a.channel:
                got.append((f["seq"], f["text"]))
        return got

    readers = [asyncio.create_task(read(ws)) for ws in subs]
    # all published at once: frames queue up behind the subscribers'
    # windows and coalesce, so one segment carries the end of one frame and
    # the start of the next, of any two sizes
    texts = [text_of(a.tag, i, sizes[i % len(sizes)]) for i in range(a.count)]
    acks = await publish_all(pub, a, texts)
    expected = dict(zip(acks, texts))
    results = await asyncio.gather(*readers)
    for ws in [pub, *subs]:
        await ws.close()
    wrong = sum(1 for got in results for seq, text in got if expected.get(seq) != text)
    return {"acks": acks, "received": [[seq for seq, _ in got] for got in results],
            "wrong_texts": wrong}


async def burst(a):
    """count connections opened at once; how many got their hello."""
    async def one(i):
        try:
            ws, _ = await connect(a.url_sub)
            await ws.close()
            return True
        except Exception:
            return False
    ok = await asyncio.gather(*(one(i) for i in range(a.count)))
    return {"connected": sum(ok)}


async def waiters(a):
    """The handshake slots' queue: --holders connections each take a slot
    with half a request; --count more send whole requests and wait; every
    other waiter then resets its connection and as many new ones come (each
    on a connection state just given back); the holders leave. Every waiter
    still connected must get its 101."""
    request = ("GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").format(path=a.path, host=a.host).encode()

    async def opened(data):
        r, w = await asyncio.open_connection(a.host, a.port)
        w.write(data)
        await w.drain()
        await asyncio.sleep(0.01)  # one at a time, in order
        return r, w

    holders = [await opened(request[:20]) for _ in range(a.holders)]
    first = [await opened(request) for _ in range(a.count)]
    await asyncio.sleep(0.5)
    for i, (_, w) in enumerate(first):
        if i % 2:
            w.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.close()
    await asyncio.sleep(0.5)
    later = [await opened(request) for _ in range(a.count // 2)]
    await asyncio.sleep(0.5)
    for _, w in holders:
        w.close()

    async def status(r):
        try:
            return (await asyncio.wait_for(r.readline(), a.timeout)).decode(errors="replace")
        except asyncio.TimeoutError:
            return ""
    waiting = [c for i, c in enumerate(first) if i % 2 == 0] + later
    statuses = await asyncio.gather(*(status(r) for r, _ in waiting))
    for _, w in waiting:
        w.close()
    return {"waiting": len(statuses), "statuses": [x.strip() for x in statuses]}


async def resume(a):
    """Subscribes with since and collects count messages."""
    ws, hello = await connect(a.url_sub)
    await subscribe(ws, a.channel, a.since)
    got = await collect(ws, a.channel, a.count, a.timeout)
    await ws.close()
    return {"received": got}


async def frames(a):
    """Sends raw websocket frames the library would not (the edge's answers
    to protocol errors): a binary message, then reads the close code."""
    ws, _ = await connect(a.url_sub)
    await ws.send(b"\x00\x01binary")
    try:
        await asyncio.wait_for(ws.recv(), 10)
    except websockets.exceptions.ConnectionClosed as e:
        return {"close_code": e.rcvd.code if e.rcvd else None}
    return {"close_code": None}


def plain_http(a):
    """One HTTP request without an upgrade or with a bad token."""
    conn = http.client.HTTPConnection(a.host, a.port, timeout=10)
    headers = {}
    if a.upgrade:
        headers = {"Upgrade": "websocket", "Connection": "Upgrade",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
    conn.request("GET", a.path, headers=headers)
    r = conn.getresponse()
    return {"status": r.status, "body": r.read().decode(errors="replace")}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=["pubsub", "resume", "frames", "http", "burst", "texts",
                                        "mention", "waiters"])
    p.add_argument("--url-pub")
    p.add_argument("--url-sub")
    p.add_argument("--channel", type=int)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--sizes", default="16")
    p.add_argument("--subscribers", type=int, default=1)
    p.add_argument("--since", type=int)
    p.add_argument("--tag", default="t")
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--path", default="/ws")
    p.add_argument("--upgrade", action="store_true")
    p.add_argument("--holders", type=int, default=0)
    a = p.parse_args()
    if a.scenario == "http":
        out = plain_http(a)
    else:
        out = asyncio.run({"pubsub": pubsub, "resume": resume, "frames": frames,
                           "burst": burst, "texts": texts, "mention": mention,
                           "waiters": waiters}[a.scenario](a))
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
