# SPDX-License-Identifier: BSD-3-Clause
"""Presence: devices count as one, a grace period before offline, coalesced
changes for a flapping connection, away, refusals, and users a watcher may
not see (no channel in common)."""
import asyncio
import time

import pytest

from conftest import Client, Server, run, sql, unique

GRACE_MS, INTERVAL_MS = 600, 300


@pytest.fixture(scope="module")
def server():
    s = Server(presence_grace_ms=GRACE_MS, presence_interval_ms=INTERVAL_MS)
    yield s
    assert s.stop() == 0


def changes(c, user):
    return [f["status"] for f in c.frames if f.get("type") == "presence" and f["user"] == user]


def test_two_devices_are_one_presence_and_grace_before_offline(server):
    async def go():
        watcher, user = await Client.connect(server, unique("w")), unique("u")
        r = await watcher.answer({"type": "presence_subscribe", "users": [user]})
        assert r["type"] == "presence_subscribed" and r["users"] == [{"user": user, "status": "offline"}]
        phone = await Client.connect(server, user)
        assert (await watcher.expect("presence"))["status"] == "online"
        laptop = await Client.connect(server, user)
        await phone.close()
        await watcher.quiet(0.5)
        assert changes(watcher, user) == []  # still online: the laptop is there
        await laptop.close()
        await watcher.quiet(GRACE_MS / 2000)
        assert changes(watcher, user) == []  # within the grace period
        off = await watcher.next(lambda f: f.get("type") == "presence" and f["user"] == user, 5)
        assert off["status"] == "offline"
        await watcher.quiet(0.5)
        assert changes(watcher, user) == []  # exactly one change
        await watcher.close()
    run(go())


def test_a_flapping_connection_is_coalesced(server):
    async def go():
        watcher, user = await Client.connect(server, unique("w")), unique("f")
        steady = await Client.connect(server, user)
        await watcher.answer({"type": "presence_subscribe", "users": [user]})
        start = time.monotonic()
        for _ in range(8):  # a second connection comes and goes fast
            c = await Client.connect(server, user)
            await c.close()
        await steady.close()
        for _ in range(8):  # then the only one flaps
            c = await Client.connect(server, user)
            await c.close()
        elapsed = time.monotonic() - start
        await watcher.quiet((GRACE_MS + 2 * INTERVAL_MS) / 1000)
        seen = changes(watcher, user)
        bound = int(elapsed * 1000 / INTERVAL_MS) + 2
        assert len(seen) <= bound, (seen, bound)
        assert seen[-1] == "offline"
        await watcher.close()
    run(go())


def test_away_and_back(server):
    async def go():
        watcher, user = await Client.connect(server, unique("w")), unique("a")
        c = await Client.connect(server, user)
        r = await watcher.answer({"type": "presence_subscribe", "users": [user]})
        assert r["users"][0]["status"] == "online"
        assert (await c.answer({"type": "presence_set", "status": "away"}))["status"] == "away"
        assert (await watcher.expect("presence"))["status"] == "away"
        await asyncio.sleep(INTERVAL_MS / 1000)
        await c.answer({"type": "presence_set", "status": "online"})
        assert (await watcher.expect("presence"))["status"] == "online"
        bad = await c.answer({"type": "presence_set", "status": "invisible"})
        assert bad["code"] == "bad_request"
        await c.close(); await watcher.close()
    run(go())


def test_presence_refusals(server):
    async def go():
        c = await Client.connect(server, unique())
        for users in ("bob", ["not a name"], [f"u{i}" for i in range(501)]):
            r = await c.answer({"type": "presence_subscribe", "users": users})
            assert r["type"] == "error" and r["code"] == "bad_request", users
        await c.close()
    run(go())


def test_watching_many_users_at_once(server):
    async def go():
        watcher = await Client.connect(server, unique("w"))
        online = [unique("on") for _ in range(3)]
        conns = [await Client.connect(server, u) for u in online]
        users = online + [unique("off") for _ in range(200)]
        r = await watcher.answer({"type": "presence_subscribe", "users": users})
        assert r["type"] == "presence_subscribed" and len(r["users"]) == 203
        status = {u["user"]: u["status"] for u in r["users"]}
        assert all(status[u] == "online" for u in online)
        assert sum(1 for s in status.values() if s == "offline") == 200
        for c in conns + [watcher]:
            await c.close()
    run(go())


def test_a_user_who_shares_no_channel_is_answered_offline_and_never_announced(server):
    async def go():
        hidden, shown = unique("h"), unique("s")
        for name in (hidden, shown):  # a first connection makes the user, in general
            c = await Client.connect(server, name)
            await c.close()
        sql("DELETE FROM channel_members m USING users u WHERE m.user_id = u.id "
            f"AND u.name = '{hidden}'")
        await asyncio.sleep((GRACE_MS + 2 * INTERVAL_MS) / 1000)  # both offline now
        watcher = await Client.connect(server, unique("w"))
        r = await watcher.answer({"type": "presence_subscribe", "users": [hidden, shown]})
        assert r["users"] == [{"user": hidden, "status": "offline"},
                              {"user": shown, "status": "offline"}], r
        devices = [await Client.connect(server, hidden), await Client.connect(server, shown)]
        f = await watcher.next(lambda f: f.get("type") == "presence" and f["user"] == shown, 5)
        assert f["status"] == "online"
        await watcher.quiet((GRACE_MS + 2 * INTERVAL_MS) / 1000)
        assert changes(watcher, hidden) == []  # online, but not to this watcher
        for c in devices + [watcher]:
            await c.close()
    run(go())
