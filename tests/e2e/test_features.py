# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end tests of edits, deletes, reactions, read cursors and typing:
each feature and each refusal."""
import asyncio

from conftest import Client, run, sql, unique


def new_channel(server, owner):
    status, body = server.http("POST", "/api/v1/channels", {"name": unique("f")}, user=owner)
    assert status == 201
    return body["channel"]["id"]


async def join(server, chan, *users):
    clients = []
    for u in users:
        if server.http("POST", f"/api/v1/channels/{chan}/join", user=u)[0] != 200:
            raise AssertionError("join failed")
        c = await Client.connect(server, u)
        await c.subscribe(chan)
        clients.append(c)
    return clients


async def history(c, chan, **kw):
    page = await c.answer({"type": "history", "channel": chan, "limit": 100, **kw})
    assert page["type"] == "history", page
    return {m["seq"]: m for m in page["messages"]}


def test_edit_and_delete_by_author_and_admin(server):
    async def go():
        owner, author, other = unique("own"), unique("aut"), unique("oth")
        chan = new_channel(server, owner)  # owner is the channel's admin
        a, o, adm = await join(server, chan, author, other, owner)
        seq = (await a.publish(chan, "first draft"))["seq"]
        ack = await a.answer({"type": "edit", "channel": chan, "seq": seq, "text": "final text",
                              "client_msg_id": "e1"})
        assert ack["type"] == "ack" and ack["seq"] > seq
        # Subscribers see the event, with its own seq, naming the message.
        ev = await o.next(lambda f: f.get("type") == "message" and f.get("kind") == "edit")
        assert (ev["parent_seq"], ev["text"], ev["seq"]) == (seq, "final text", ack["seq"])
        m = (await history(o, chan))[seq]
        assert (m["text"], m.get("edited")) == ("final text", True)
        # Someone else may not edit or delete it.
        for req in ({"type": "edit", "channel": chan, "seq": seq, "text": "hijack"},
                    {"type": "delete", "channel": chan, "seq": seq}):
            r = await o.answer(req)
            assert r["type"] == "error" and r["code"] == "forbidden", r
        assert (await history(o, chan))[seq]["text"] == "final text"
        # The channel's admin may delete it: a tombstone remains.
        r = await adm.answer({"type": "delete", "channel": chan, "seq": seq})
        assert r["type"] == "ack", r
        m = (await history(o, chan))[seq]
        assert (m["text"], m.get("deleted")) == ("", True)
        r = await a.answer({"type": "edit", "channel": chan, "seq": seq, "text": "too late"})
        assert r["code"] == "not_found"
        r = await a.answer({"type": "edit", "channel": chan, "seq": 10**6, "text": "x"})
        assert r["code"] in ("not_found", "bad_parent")
        for c in (a, o, adm):
            await c.close()
    run(go())


def test_reactions_are_a_set_with_counts_and_me(server):
    async def go():
        owner, u1, u2 = unique("own"), unique("r1"), unique("r2")
        chan = new_channel(server, owner)
        c1, c2 = await join(server, chan, u1, u2)
        seq = (await c1.publish(chan, "react to me"))["seq"]
        for c, emoji in ((c1, "👍"), (c1, "👍"), (c2, "👍"), (c2, ":tada:")):
            assert (await c.answer({"type": "react", "channel": chan, "seq": seq, "emoji": emoji}))["type"] == "ack"
        m1 = (await history(c1, chan))[seq]
        m2 = (await history(c2, chan))[seq]
        assert m1["reactions"] == [{"emoji": ":tada:", "count": 1, "me": False},
                                   {"emoji": "👍", "count": 2, "me": True}]
        assert m2["reactions"] == [{"emoji": ":tada:", "count": 1, "me": True},
                                   {"emoji": "👍", "count": 2, "me": True}]
        assert (await c1.answer({"type": "unreact", "channel": chan, "seq": seq, "emoji": "👍"}))["type"] == "ack"
        m1 = (await history(c1, chan))[seq]
        assert {"emoji": "👍", "count": 1, "me": False} in m1["reactions"]
        # Reactions are events: they do not count as thread replies.
        assert m1.get("reply_count", 0) == 0
        thread = await c1.answer({"type": "history", "channel": chan, "thread": seq})
        assert [m["seq"] for m in thread["messages"]] == [seq]
        # Refusals.
        bad = await c1.answer({"type": "react", "channel": chan, "seq": seq, "emoji": "no spaces"})
        assert bad["code"] == "bad_request"
        outsider = await Client.connect(server, unique("out"))
        bad = await outsider.answer({"type": "react", "channel": chan, "seq": seq, "emoji": "👍"})
        assert bad["code"] == "not_member"
        for c in (c1, c2, outsider):
            await c.close()
    run(go())


def test_events_replay_on_resume(server):
    async def go():
        owner, u1, u2 = unique("own"), unique("p1"), unique("p2")
        chan = new_channel(server, owner)
        c1, c2 = await join(server, chan, u1, u2)
        seq = (await c1.publish(chan, "before"))["seq"]
        await c2.messages(chan, 1)
        await c2.close()
        await c1.answer({"type": "react", "channel": chan, "seq": seq, "emoji": "🎉"})
        await c1.answer({"type": "edit", "channel": chan, "seq": seq, "text": "after"})
        c2 = await Client.connect(server, u2)
        await c2.subscribe(chan, since=seq)
        got = await c2.messages(chan, 2)
        assert [(m["kind"], m["parent_seq"]) for m in got] == [("react", seq), ("edit", seq)]
        await c1.close(); await c2.close()
    run(go())


def test_read_cursor_moves_forward_and_devices_agree(server):
    async def go():
        owner, reader = unique("own"), unique("rd")
        chan = new_channel(server, owner)
        writer, = await join(server, chan, owner)
        for i in range(5):
            await writer.publish(chan, f"m{i}")
        phone = await Client.connect(server, reader)
        assert server.http("POST", f"/api/v1/channels/{chan}/join", user=reader)[0] == 200
        await phone.expect("joined")
        laptop = await Client.connect(server, reader)
        info = next(c for c in laptop.hello["channels"] if c["id"] == chan)
        assert info["unread"] == 5 and info["last_read_seq"] == 0
        r = await phone.answer({"type": "mark_read", "channel": chan, "seq": 4})
        assert (r["type"], r["seq"]) == ("read", 4)
        other = await laptop.expect("read")  # the other device hears it
        assert (other["channel"], other["seq"]) == (chan, 4)
        r = await phone.answer({"type": "mark_read", "channel": chan, "seq": 2})
        assert r["seq"] == 4  # forward only
        r = await phone.answer({"type": "mark_read", "channel": chan, "seq": 10**9})
        assert r["seq"] == 5  # never past the head
        again = await Client.connect(server, reader)
        info = next(c for c in again.hello["channels"] if c["id"] == chan)
        assert (info["last_read_seq"], info["unread"]) == (5, 0)
        outsider = await Client.connect(server, unique("out"))
        assert (await outsider.answer({"type": "mark_read", "channel": chan, "seq": 1}))["code"] == "not_member"
        for c in (writer, phone, laptop, again, outsider):
            await c.close()
    run(go())


def test_typing_is_broadcast_coalesced_and_never_stored(server):
    async def go():
        owner, typist, watcher = unique("own"), unique("ty"), unique("wa")
        chan = new_channel(server, owner)
        t, w = await join(server, chan, typist, watcher)
        await t.send({"type": "typing", "channel": chan})
        notice = await w.expect("typing")
        assert (notice["channel"], notice["user"], notice["expires_ms"]) == (chan, typist, 5000)
        # A storm: one notice per keystroke for a second.
        for _ in range(20):
            await t.send({"type": "typing", "channel": chan})
            await asyncio.sleep(0.05)
        await w.quiet(0.5)
        storm = [f for f in w.frames if f.get("type") == "typing"]
        assert len(storm) <= 1, storm
        assert sql(f"SELECT count(*) FROM messages WHERE channel_id = {chan}") == [["0"]]
        unsub = await Client.connect(server, typist)
        assert (await unsub.answer({"type": "typing", "channel": chan}))["code"] == "not_subscribed"
        outsider = await Client.connect(server, unique("out"))
        assert (await outsider.answer({"type": "typing", "channel": chan}))["code"] == "not_member"
        for c in (t, w, unsub, outsider):
            await c.close()
    run(go())


def test_http_api_for_read_edit_delete_and_reactions(server):
    import urllib.parse
    owner, author, other = unique("own"), unique("aut"), unique("oth")
    chan = new_channel(server, owner)
    for u in (author, other):
        assert server.http("POST", f"/api/v1/channels/{chan}/join", user=u)[0] == 200
    status, body = server.http("POST", f"/api/v1/channels/{chan}/messages", {"text": "via http"}, user=author)
    seq = body["seq"]
    base = f"/api/v1/channels/{chan}/messages/{seq}"

    status, body = server.http("POST", base + "/edit", {"text": "edited via http"}, user=author,
                               headers={"Idempotency-Key": "edit-1"})
    assert status == 201 and body["seq"] > seq, body
    status, again = server.http("POST", base + "/edit", {"text": "edited via http"}, user=author,
                                headers={"Idempotency-Key": "edit-1"})
    assert status == 200 and again["seq"] == body["seq"] and again["duplicate"]
    status, body = server.http("POST", base + "/edit", {"text": "hijack"}, user=other)
    assert status == 403 and body["error"]["code"] == "forbidden"

    thumbs = "👍"
    assert server.http("POST", base + "/reactions", {"emoji": thumbs}, user=other)[0] == 201
    assert server.http("POST", base + "/reactions", {"emoji": thumbs}, user=author)[0] == 201
    status, page = server.http("GET", f"/api/v1/channels/{chan}/messages?after_seq=0", user=other)
    m = next(x for x in page["messages"] if x["seq"] == seq)
    assert (m["text"], m["edited"]) == ("edited via http", True)
    assert m["reactions"] == [{"emoji": thumbs, "count": 2, "me": True}]
    q = urllib.parse.quote(thumbs)
    assert server.http("DELETE", base + f"/reactions?emoji={q}", user=other)[0] == 201
    status, page = server.http("GET", f"/api/v1/channels/{chan}/messages?after_seq=0", user=other)
    m = next(x for x in page["messages"] if x["seq"] == seq)
    assert m["reactions"] == [{"emoji": thumbs, "count": 1, "me": False}]

    status, body = server.http("POST", f"/api/v1/channels/{chan}/read", {"seq": 10**9}, user=other)
    assert status == 200 and body["last_read_seq"] >= seq
    status, body = server.http("POST", f"/api/v1/channels/{chan}/read", {"seq": 1}, user=other)
    assert body["last_read_seq"] > 1  # forward only

    assert server.http("DELETE", base, user=other)[0] == 403
    assert server.http("DELETE", base, user=author)[0] == 201
    status, page = server.http("GET", f"/api/v1/channels/{chan}/messages?after_seq=0", user=author)
    m = next(x for x in page["messages"] if x["seq"] == seq)
    assert (m["text"], m["deleted"]) == ("", True) and "reactions" not in m
    assert server.http("DELETE", base, user=author)[0] == 404  # already deleted
    stranger = unique("str")
    assert server.http("POST", base + "/reactions", {"emoji": "x"}, user=stranger)[0] == 403
    assert server.http("GET", base + "/edit", user=author)[0] == 405
