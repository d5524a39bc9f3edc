# SPDX-License-Identifier: BSD-3-Clause
"""scrollback: the scroll-back load the history benchmarks share
(bench/standby-reads, bench/history-pages): a writer that fills general with
messages, and websocket readers asking for pages of 50 below a random seq,
closed loop, each page's latency kept."""
import asyncio
import json
import os
import random
import sys
import time

import websockets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from conftest import token  # noqa: E402  (the same independent HS256 tokens)


async def connect(port, secret, user):
    """A websocket to fanoutd on port, and general's id from its hello."""
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws?token={token(user, secret=secret)}",
                                  max_size=2**24, ping_interval=None)
    while True:
        f = json.loads(await ws.recv())
        if f["type"] == "hello":
            return ws, next(c["id"] for c in f["channels"] if c["name"] == "general")


async def answer(ws, req):
    while True:
        f = json.loads(await ws.recv())
        if f.get("req") == req:
            return f


async def fill(port, secret, n):
    """Publishes n messages of about 100 bytes into general; returns general's
    head as the acks say."""
    ws, ch = await connect(port, secret, "sb-writer")
    for i in range(n):
        await ws.send(json.dumps({"type": "publish", "req": str(i), "channel": ch,
                                  "text": f"scroll-back message {i} " + "x" * 80,
                                  "client_msg_id": f"sb-{time.time_ns()}-{i}"}))
    got, top = 0, 0
    while got < n:
        f = json.loads(await ws.recv())
        if f.get("type") in ("ack", "error") and "req" in f:
            got += 1
            top = max(top, f.get("seq", 0))
    await ws.close()
    return top


async def reader(port, secret, k, seconds, top, lat):
    ws, ch = await connect(port, secret, f"sb-reader{k}")
    await ws.send(json.dumps({"type": "subscribe", "req": "s", "channels": [{"channel": ch}]}))
    await answer(ws, "s")
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        n += 1
        t0 = time.monotonic()
        await ws.send(json.dumps({"type": "history", "req": str(n), "channel": ch,
                                  "before": random.randint(51, top), "limit": 50}))
        page = await answer(ws, str(n))
        assert page["type"] == "history" and len(page["messages"]) == 50, page
        lat.append(time.monotonic() - t0)
    await ws.close()


def load(port, secret, clients, seconds, top):
    """Runs the readers; returns the latencies (seconds) and the wall time."""
    lat = []
    t0 = time.monotonic()

    async def all_readers():
        await asyncio.gather(*(reader(port, secret, k, seconds, top, lat)
                               for k in range(clients)))

    asyncio.run(all_readers())
    return sorted(lat), time.monotonic() - t0


def postgres_cpu(pid_file):
    """CPU seconds of the postmaster in pid_file and its children so far."""
    import subprocess
    pm = int(open(pid_file).readline())
    kids = subprocess.run(["pgrep", "-P", str(pm)], capture_output=True, text=True).stdout
    total = 0
    for p in [pm] + [int(x) for x in kids.split()]:
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])  # utime stime cutime cstime
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")
