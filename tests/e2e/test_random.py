# SPDX-License-Identifier: BSD-3-Clause
"""A randomized test of at-least-once, in-order delivery: publishers and
subscribers with random disconnects and resumes; afterwards every
subscriber's received sequence is checked against PostgreSQL: no gap, no
reorder, and duplicates only of seqs already seen."""
import asyncio
import random

from conftest import Client, run, sql, unique

PUBLISHERS, SUBSCRIBERS, PER_PUBLISHER = 3, 4, 60


def test_random_disconnects_and_resumes(server):
    rng = random.Random(20261128)
    owner = unique()
    status, body = server.http("POST", "/api/v1/channels", {"name": unique("rnd")}, user=owner)
    chan = body["channel"]["id"]
    pubs = [unique("p") for _ in range(PUBLISHERS)]
    subs = [unique("s") for _ in range(SUBSCRIBERS)]
    for u in pubs + subs:
        assert server.http("POST", f"/api/v1/channels/{chan}/join", user=u)[0] == 200
    total = PUBLISHERS * PER_PUBLISHER
    received = {u: [] for u in subs}

    async def publisher(user, seed):
        r = random.Random(seed)
        c = await Client.connect(server, user)
        for i in range(PER_PUBLISHER):
            ack = await c.publish(chan, f"{user} {i}", cmid=f"{user}-{i}")
            assert ack["type"] == "ack", ack
            if r.random() < 0.1:  # reconnect, retrying the last publish
                await c.close()
                c = await Client.connect(server, user)
                again = await c.publish(chan, f"{user} {i}", cmid=f"{user}-{i}")
                assert again["seq"] == ack["seq"] and again["duplicate"]
            await asyncio.sleep(r.random() * 0.01)
        await c.close()

    async def subscriber(user, seed, finished):
        r = random.Random(seed)
        got = received[user]
        last = 0
        while True:
            c = await Client.connect(server, user)
            await c.subscribe(chan, since=last)
            session_end = asyncio.get_running_loop().time() + r.uniform(0.05, 0.4)
            try:
                while True:
                    left = session_end - asyncio.get_running_loop().time()
                    if finished.is_set() and last >= total:
                        return
                    if left <= 0 and not finished.is_set():
                        break
                    try:
                        f = await c.next(lambda f: f.get("type") == "message", max(left, 0.2))
                    except TimeoutError:
                        continue
                    got.append(f["seq"])
                    last = max(last, f["seq"])
            finally:
                # Half the time a clean close, half an abrupt drop.
                if r.random() < 0.5:
                    await c.close()
                else:
                    c.ws.transport.abort()

    async def go():
        finished = asyncio.Event()
        sub_tasks = [asyncio.create_task(subscriber(u, rng.random(), finished)) for u in subs]
        await asyncio.gather(*(publisher(u, rng.random()) for u in pubs))
        finished.set()
        await asyncio.wait_for(asyncio.gather(*sub_tasks), 60)

    run(go())
    rows = sql(f"SELECT seq FROM messages WHERE channel_id = {chan} ORDER BY seq")
    assert [int(r[0]) for r in rows] == list(range(1, total + 1))
    for user, seqs in received.items():
        highest = 0
        for s in seqs:
            assert s <= highest + 1, f"{user}: gap or reorder: {s} after {highest}"
            highest = max(highest, s)
        assert set(seqs) == set(range(1, total + 1)), f"{user} missed {set(range(1, total + 1)) - set(seqs)}"
