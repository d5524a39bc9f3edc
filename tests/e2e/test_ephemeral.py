# SPDX-License-Identifier: BSD-3-Clause
"""Ephemeral channels: live-only feeds that are never stored, have no
catch-up, and cannot be DMs."""
from conftest import Client, run, sql, unique


def test_ephemeral_channel_is_live_only(server):
    async def go():
        owner, early, late = unique("own"), unique("ea"), unique("la")
        status, body = server.http("POST", "/api/v1/channels", {"name": unique("feed"), "kind": "ephemeral"}, user=owner)
        assert status == 201 and body["channel"]["kind"] == "ephemeral"
        chan = body["channel"]["id"]
        assert server.http("POST", f"/api/v1/channels/{chan}/join", user=early)[0] == 200
        pub = await Client.connect(server, owner)
        sub = await Client.connect(server, early)
        assert next(c for c in sub.hello["channels"] if c["id"] == chan)["kind"] == "ephemeral"
        await sub.subscribe(chan)
        acks = [await pub.publish(chan, f"tick {i}") for i in range(3)]
        assert [a["seq"] for a in acks] == [1, 2, 3] and all(a["ephemeral"] for a in acks)
        got = await sub.messages(chan, 3)
        assert [m["text"] for m in got] == ["tick 0", "tick 1", "tick 2"]
        assert all(m["ephemeral"] for m in got)
        # A user who joins after connecting learns the kind from the event:
        # their publishes are live-only too.
        lat = await Client.connect(server, late)
        assert server.http("POST", f"/api/v1/channels/{chan}/join", user=late)[0] == 200
        await lat.expect("joined")
        ack = await lat.publish(chan, "late tick")
        assert ack["ephemeral"] and ack["seq"] == 4
        assert (await sub.messages(chan, 1))[0]["text"] == "late tick"
        # Over HTTP too.
        status, body = server.http("POST", f"/api/v1/channels/{chan}/messages", {"text": "http tick"}, user=owner)
        assert status == 201 and body["ephemeral"] and body["seq"] == 5
        assert (await sub.messages(chan, 1))[0]["text"] == "http tick"
        # Never stored; no history, no catch-up.
        assert sql(f"SELECT count(*) FROM messages WHERE channel_id = {chan}") == [["0"]]
        page = await sub.answer({"type": "history", "channel": chan, "limit": 10})
        assert page["messages"] == []
        again = await Client.connect(server, early)
        await again.subscribe(chan, since=0)
        await again.quiet(0.5)
        assert [f for f in again.frames if f.get("type") == "message"] == []
        for c in (pub, sub, lat, again):
            await c.close()
    run(go())


def test_no_ephemeral_dms_or_other_kinds(server):
    user = unique()
    for kind in ("dm", "broadcast"):
        status, body = server.http("POST", "/api/v1/channels", {"name": unique("k"), "kind": kind}, user=user)
        assert status == 400 and body["error"]["code"] == "bad_request", kind
    peer = unique()
    server.http("GET", "/api/v1/channels", user=peer)  # a DM is with someone who exists
    status, body = server.http("POST", "/api/v1/dms", {"user": peer}, user=user)
    assert status == 201 and body["channel"]["kind"] == "dm"
