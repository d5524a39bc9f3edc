# SPDX-License-Identifier: BSD-3-Clause
"""Mentions (docs/protocol.md, "Mentions"): counted per user and channel in
hello beside unread and cleared by reading, a live `mention` frame for the
members named (never the author, never a non-member), the server's two
readers of a text (the live frame's and the stored column's) agreeing, and
@channel/@here limited per user and channel with retries let through."""
import pytest

from conftest import Client, Server, run, sql, unique


@pytest.fixture(scope="module")
def server():
    s = Server(broad_mention_interval_ms=60000)
    yield s
    assert s.stop() == 0


def channel_with(server, owner, *members):
    status, body = server.http("POST", "/api/v1/channels", {"name": unique("men")}, user=owner)
    assert status == 201, body
    chan = body["channel"]["id"]
    for m in members:
        status, _ = server.http("POST", f"/api/v1/channels/{chan}/join", user=m)
        assert status == 200
    return chan


def entry(client, chan):
    return next(c for c in client.hello["channels"] if c["id"] == chan)


def test_mentions_are_counted_in_hello_and_cleared_by_reading(server):
    alice, bob, carol = unique("al"), unique("bo"), unique("ca")
    chan = channel_with(server, alice, bob, carol)

    async def go():
        a, c = await Client.connect(server, alice), await Client.connect(server, carol)
        top = await a.publish(chan, "a plain line")
        for text in (f"@{bob.upper()} look", "@channel deploy at 5", "@someone_else hi",
                     f"mail {bob}@example.com"):
            assert (await a.publish(chan, text))["type"] == "ack"
        assert (await c.publish(chan, "@here quick one"))["type"] == "ack"
        reply = await a.publish(chan, f"in the thread, @{bob}.", parent=top["seq"])
        assert reply["type"] == "ack"
        b = await Client.connect(server, bob)
        e = entry(b, chan)
        # named, @channel, and the reply; @here is for who is connected then
        assert (e["mentions"], e["unread"]) == (3, 6), e
        assert entry(a, chan)["mentions"] == 0
        r = await b.answer({"type": "mark_read", "channel": chan, "seq": reply["seq"]})
        assert r["type"] == "read"
        await b.close()
        b = await Client.connect(server, bob)
        assert entry(b, chan)["mentions"] == 0
        await a.close(); await b.close(); await c.close()
    run(go())


def test_a_live_mention_reaches_the_named_members_only(server):
    alice, bob, carol = unique("al"), unique("bo"), unique("ca")
    chan = channel_with(server, alice, bob)  # carol is not a member

    async def go():
        a, b, c = [await Client.connect(server, u) for u in (alice, bob, carol)]
        for x in (a, b):
            assert (await x.subscribe(chan))["type"] == "subscribed"
        r = await c.subscribe(chan)
        assert r["type"] == "error" and r["code"] == "not_member", r
        ack = await a.publish(chan, f"@{carol} @{bob} @{alice} please review")
        m = await b.expect("mention")
        assert (m["channel"], m["seq"], m["author"], m["broad"]) == (chan, ack["seq"], alice, "none")
        assert sorted(m["users"]) == sorted([carol, bob, alice]) and "please review" in m["text"]
        ack = await a.publish(chan, "@here standup")
        m = await b.expect("mention")
        assert (m["seq"], m["broad"]) == (ack["seq"], "here")
        await b.messages(chan, 2)
        await a.messages(chan, 2)  # the author has the messages, not the mentions
        for x in (a, c):
            await x.quiet(0.5)
            assert not [f for f in x.frames if f.get("type") == "mention"], x.frames
        for x in (a, b, c):
            await x.close()
    run(go())


TEXTS = ["@Bob, and @carol.smith. too", "(@dave) @@erin", "mail x@y.com", "@everyone",
         "@here and @channel", "@here", "@", "@. @-x- @_", "a@b @c@d", "@" + "z" * 70,
         "`@code` **@bold** @\u00fcn\u00efcode @x", "ends with @name..."]


def test_the_live_frame_and_the_stored_column_read_a_text_alike():
    """Each text ends naming bob, so his frame lists every name the live
    reader found; the stored column must hold the same."""
    s = Server(broad_mention_interval_ms=0)
    try:
        alice, bob = unique("al"), unique("bo")
        chan = channel_with(s, alice, bob)

        async def go():
            a, b = await Client.connect(s, alice), await Client.connect(s, bob)
            assert (await b.subscribe(chan))["type"] == "subscribed"
            for text in TEXTS:
                ack = await a.publish(chan, f"{text} @{bob}")
                assert ack["type"] == "ack", ack
                stored = sql(f"SELECT array_to_string(mentions, ' ') FROM messages "
                             f"WHERE channel_id = {chan} AND seq = {ack['seq']}")[0][0].split()
                m = await b.expect("mention")
                assert m["seq"] == ack["seq"], (text, m)
                live = set(m["users"]) | ({m["broad"]} - {"none"})
                # the column keeps both broad words; the frame says the wider
                drop = {"here"} if m["broad"] == "channel" else set()
                assert sorted(live) == sorted(set(stored) - drop), (text, m, stored)
            await a.close(); await b.close()
        run(go())
    finally:
        assert s.stop() == 0


def test_broad_mentions_are_limited_per_user_and_channel_and_retries_pass(server):
    alice, bob = unique("al"), unique("bo")
    chan = channel_with(server, alice, bob)

    async def go():
        a = await Client.connect(server, alice)
        first = await a.publish(chan, "@channel release at 5", cmid="rel-1")
        assert first["type"] == "ack"
        again = await a.publish(chan, "@here one more thing", cmid="rel-2")
        assert again["type"] == "error" and again["code"] == "mention_limited", again
        assert "limited" in again["message"]
        retry = await a.publish(chan, "@channel release at 5", cmid="rel-1")
        assert retry["type"] == "ack" and retry["seq"] == first["seq"] and retry["duplicate"]
        assert (await a.publish(chan, f"@{bob} not broad"))["type"] == "ack"
        await a.close()
    run(go())
    status, body = server.http("POST", f"/api/v1/channels/{chan}/messages",
                               {"text": "@here via HTTP"}, user=alice)
    assert status == 429 and body["error"]["code"] == "mention_limited", body
    status, body = server.http("POST", f"/api/v1/channels/{chan}/messages",
                               {"text": "@here from bob"}, user=bob)
    assert status == 201, body
    assert sql(f"SELECT count(*) FROM messages WHERE channel_id = {chan} "
               f"AND body LIKE '%one more thing%'") == [["0"]]


def test_broad_mentions_can_be_turned_off():
    s = Server(broad_mention_interval_ms=-1)
    try:
        alice = unique("al")
        chan = channel_with(s, alice)
        status, body = s.http("POST", f"/api/v1/channels/{chan}/messages",
                              {"text": "@channel hi"}, user=alice)
        assert status == 403 and body["error"]["code"] == "mention_refused", body

        async def go():
            a = await Client.connect(s, alice)
            r = await a.publish(chan, "@everyone hi")
            assert r["type"] == "error" and r["code"] == "mention_refused"
            assert (await a.publish(chan, f"@{alice} a note"))["type"] == "ack"
            await a.close()
        run(go())
    finally:
        assert s.stop() == 0


def test_a_mention_counts_behind_thousands_of_plain_messages(server):
    # hello reads only the messages that mention anyone (migration 0011), so
    # a mention is counted however much plain talk came after it
    alice, bob = unique("al"), unique("bo")
    chan = channel_with(server, alice, bob)

    async def go():
        a = await Client.connect(server, alice)
        assert (await a.publish(chan, f"@{bob} before the flood"))["type"] == "ack"
        await a.close()
    run(go())
    # 6,000 plain messages after it, written straight to the table (no
    # publish follows in this channel, so the writer's head is not needed)
    sql(f"INSERT INTO messages (channel_id, seq, author_id, client_msg_id, kind, body, created_at, "
        f"mentions) SELECT {chan}, c.last_seq + g, u.id, 'flood-' || g, 'message', "
        f"'plain words ' || g, now(), '{{}}' "
        f"FROM channels c, users u, generate_series(1, 6000) g "
        f"WHERE c.id = {chan} AND lower(u.name) = lower('{alice}');"
        f"UPDATE channels SET last_seq = last_seq + 6000 WHERE id = {chan}")

    async def hello():
        b = await Client.connect(server, bob)
        e = entry(b, chan)
        await b.close()
        return e["mentions"], e["unread"]
    assert run(hello()) == (1, 1000)


@pytest.mark.parametrize("name", ["here", "Channel", "EVERYONE"])
def test_the_words_that_mention_everyone_are_no_user_names(server, name):
    # a token for one is refused, on the API and the websocket alike
    status, body = server.http("GET", "/api/v1/channels", user=name)
    assert (status, body["error"]["code"]) == (401, "bad_token"), body

    async def upgrade():
        with pytest.raises(Exception) as refused:
            await Client.connect(server, name)
        return str(refused.value)
    assert "401" in run(upgrade())
    # nor can anyone open a DM with one
    status, body = server.http("POST", "/api/v1/dms", {"user": name}, user=unique("dm"))
    assert status == 400, body
    # and names that only contain one are users like any other
    status, _ = server.http("GET", "/api/v1/channels", user=name.lower() + "_1")
    assert status == 200
