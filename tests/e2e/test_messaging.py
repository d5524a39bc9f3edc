# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end tests of the messaging core over the socket edge: auth, the
protocol, membership boundaries, and the invariants of DESIGN.md section 3."""
import asyncio
import json

import pytest
import websockets
import websockets.exceptions

from conftest import Client, channel_id, run, sql, token, unique


# Authentication: a bad token never upgrades.

@pytest.mark.parametrize("make", [
    lambda u: "",
    lambda u: token(u, secret="wrong"),
    lambda u: token(u, ttl=-10),
    lambda u: token(u, alg="none"),
    lambda u: "garbage.token.here",
])
def test_bad_token_never_upgrades(server, make):
    async def go():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
            await websockets.connect(f"{server.ws_url}?token={make(unique())}")
        assert e.value.status_code == 401
    run(go())


def test_bearer_header_and_hello(server):
    async def go():
        user = unique()
        ws = await websockets.connect(server.ws_url, extra_headers={"Authorization": "Bearer " + token(user)})
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello" and hello["protocol"] == 1
        assert hello["user"]["name"] == user and hello["heartbeat_ms"] == 30000
        assert [c["name"] for c in hello["channels"]] == ["general"]
        await ws.close()
    run(go())


def test_api_requires_token(server):
    status, body = server.http("GET", "/api/v1/channels")
    assert status == 401 and body["error"]["code"] == "missing_token"
    status, body = server.http("GET", "/api/v1/channels", tok=token("x", ttl=-5))
    assert status == 401 and body["error"]["code"] == "token_expired"


def test_wrong_path_is_404(server):
    async def go():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
            await websockets.connect(f"ws://127.0.0.1:{server.port}/other?token={token('a')}")
        assert e.value.status_code == 404
    run(go())


# Publish, ack after commit, broadcast.

def test_publish_ack_and_broadcast(server):
    async def go():
        alice, bob = await Client.connect(server, unique()), await Client.connect(server, unique())
        general = channel_id(alice, "general")
        await bob.subscribe(general)
        ack = await alice.publish(general, "hi bob", cmid="c-1")
        assert ack["type"] == "ack" and ack["duplicate"] is False and ack["client_msg_id"] == "c-1"
        # Acked only after COMMIT: the row is there the moment the ack is.
        rows = sql(f"SELECT body, client_msg_id FROM messages WHERE channel_id = {general} AND seq = {ack['seq']}")
        assert rows == [["hi bob", "c-1"]]
        msg, = await bob.messages(general, 1)
        assert (msg["seq"], msg["text"], msg["author"], msg["ts"]) == (ack["seq"], "hi bob", alice.user, ack["ts"])
        assert msg["id"] == f"{general}:{ack['seq']}" and msg["parent_seq"] is None
        await alice.close(); await bob.close()
    run(go())


def test_nothing_is_broadcast_before_it_is_durable(server):
    """Every message a subscriber receives is already a row in PostgreSQL at
    the moment it arrives (checked per message, while publishing goes on)."""
    async def go():
        alice, bob = await Client.connect(server, unique()), await Client.connect(server, unique())
        general = channel_id(alice, "general")
        await bob.subscribe(general)
        for i in range(20):
            await alice.send({"type": "publish", "req": f"d{i}", "channel": general,
                              "text": f"durable {i}", "client_msg_id": f"d{i}"})
        for _ in range(20):
            msg = (await bob.messages(general, 1))[0]
            rows = sql(f"SELECT body FROM messages WHERE channel_id = {general} AND seq = {msg['seq']}")
            assert rows == [[msg["text"]]], msg
        await alice.close(); await bob.close()
    run(go())


def test_duplicate_client_msg_id_same_seq_one_row_one_broadcast(server):
    async def go():
        alice, bob = await Client.connect(server, unique()), await Client.connect(server, unique())
        general = channel_id(alice, "general")
        await bob.subscribe(general)
        first = await alice.publish(general, "once", cmid="dup-1")
        again = await alice.publish(general, "once (retry)", cmid="dup-1")
        assert again["seq"] == first["seq"] and again["duplicate"] is True
        # Over the HTTP API too, with the same author and key: the same
        # request is answered as the original, another one is refused 422.
        status, body = server.http("POST", f"/api/v1/channels/{general}/messages", {"text": "once"},
                                   user=alice.user, headers={"Idempotency-Key": "dup-1"})
        assert status == 200 and body["seq"] == first["seq"] and body["duplicate"] is True
        assert body["ts"] == first["ts"]
        status, body = server.http("POST", f"/api/v1/channels/{general}/messages", {"text": "x"},
                                   user=alice.user, headers={"Idempotency-Key": "dup-1"})
        assert status == 422 and body["error"]["code"] == "idempotency_key_reused"
        rows = sql(f"SELECT count(*) FROM messages WHERE channel_id = {general} AND client_msg_id = 'dup-1' "
                   f"AND author_id = (SELECT id FROM users WHERE name = '{alice.user}')")
        assert rows == [["1"]]
        await bob.messages(general, 1)
        await bob.quiet(0.5)
        assert not [f for f in bob.frames if f.get("type") == "message" and f["seq"] == first["seq"]]
        await alice.close(); await bob.close()
    run(go())


def test_dense_seq_and_order_with_concurrent_publishers(server):
    async def go():
        pubs = [await Client.connect(server, unique()) for _ in range(4)]
        sub = await Client.connect(server, unique())
        general = channel_id(sub, "general")
        await sub.subscribe(general)

        async def burst(c, n):
            seqs = []
            for i in range(n):
                seqs.append((await c.publish(general, f"{c.user} {i}"))["seq"])
            return seqs

        results = await asyncio.gather(*(burst(c, 25) for c in pubs))
        acked = sorted(s for r in results for s in r)
        assert len(set(acked)) == 100
        got = [m["seq"] for m in await sub.messages(general, 100)]
        assert got == sorted(got) and set(acked) <= set(got) or got == acked
        assert got == list(range(got[0], got[0] + 100))  # dense and in order
        for c in pubs + [sub]:
            await c.close()
    run(go())


# Membership boundaries.

def test_non_member_cannot_subscribe_publish_or_read(server):
    async def go():
        owner, stranger = unique(), unique()
        status, body = server.http("POST", "/api/v1/channels", {"name": unique("priv"), "kind": "private"}, user=owner)
        assert status == 201 and body["channel"]["kind"] == "private"
        secret = body["channel"]["id"]
        c = await Client.connect(server, stranger)
        for msg in ({"type": "subscribe", "channels": [{"channel": secret}]},
                    {"type": "publish", "channel": secret, "text": "x", "client_msg_id": "z"},
                    {"type": "history", "channel": secret}):
            reply = await c.answer(msg)
            assert reply["type"] == "error" and reply["code"] == "not_member", reply
        # Invisible over HTTP: the same 404 as a channel that does not exist.
        for method, path in (("GET", f"/api/v1/channels/{secret}/messages"),
                             ("GET", f"/api/v1/channels/{secret}/members"),
                             ("POST", f"/api/v1/channels/{secret}/join"),
                             ("GET", "/api/v1/channels/999999999/messages")):
            status, body = server.http(method, path, user=stranger)
            assert status == 404 and body["error"]["code"] == "not_found", (path, status, body)
        status, body = server.http("POST", f"/api/v1/channels/{secret}/messages", {"text": "x"}, user=stranger)
        assert status == 404
        assert sql(f"SELECT count(*) FROM messages WHERE channel_id = {secret}") == [["0"]]
        status, body = server.http("GET", "/api/v1/channels", user=stranger)
        assert secret not in [ch["id"] for ch in body["channels"]]
        await c.close()
    run(go())


def test_join_and_leave_follow_live_sessions(server):
    async def go():
        owner = unique()
        status, body = server.http("POST", "/api/v1/channels", {"name": unique("pub")}, user=owner)
        chan = body["channel"]["id"]
        c = await Client.connect(server, unique())
        assert (await c.subscribe(chan))["code"] == "not_member"
        status, body = server.http("POST", f"/api/v1/channels/{chan}/join", user=c.user)
        assert status == 200 and body["member"] is True
        await c.expect("joined")
        assert (await c.subscribe(chan))["type"] == "subscribed"
        status, _ = server.http("POST", f"/api/v1/channels/{chan}/leave", user=c.user)
        assert status == 200
        await c.expect("left")
        assert (await c.publish(chan, "gone"))["code"] == "not_member"
        await c.close()
    run(go())


# Resume and catch-up.

def test_resume_with_since_replays_exactly_the_missed_range_then_live(server):
    async def go():
        pub = await Client.connect(server, unique())
        sub = await Client.connect(server, unique())
        general = channel_id(sub, "general")
        await sub.subscribe(general)
        seen = [m["seq"] for m in [await pub.publish(general, f"before {i}") for i in range(5)]]
        last = (await sub.messages(general, 5))[-1]["seq"]
        assert last == seen[-1]
        await sub.close()
        missed = [(await pub.publish(general, f"missed {i}"))["seq"] for i in range(30)]
        sub = await Client.connect(server, sub.user)
        await sub.subscribe(general, since=last)
        # Live traffic while the replay runs must not overtake it.
        async def live_burst():
            return [(await pub.publish(general, f"live {i}"))["seq"] for i in range(10)]
        live_task = asyncio.create_task(live_burst())
        got = await sub.messages(general, 40)
        live = await live_task
        seqs = [m["seq"] for m in got]
        assert seqs == list(range(last + 1, last + 41)), seqs
        assert seqs[:30] == missed and set(live) == set(seqs[30:])
        await sub.quiet(0.3)
        assert not [f for f in sub.frames if f.get("type") == "message"]  # nothing twice
        await pub.close(); await sub.close()
    run(go())


# Threads.

def test_thread_replies_and_reply_count(server):
    async def go():
        c = await Client.connect(server, unique())
        general = channel_id(c, "general")
        parent = (await c.publish(general, "parent"))["seq"]
        replies = [(await c.publish(general, f"reply {i}", parent=parent))["seq"] for i in range(3)]
        bad = await c.publish(general, "orphan", parent=10**9)
        assert bad["type"] == "error" and bad["code"] == "bad_parent"
        page = await c.answer({"type": "history", "channel": general, "thread": parent, "limit": 10})
        assert [m["seq"] for m in page["messages"]] == [parent] + replies
        assert page["messages"][0]["reply_count"] == 3
        assert all(m["parent_seq"] == parent for m in page["messages"][1:])
        status, body = server.http("GET", f"/api/v1/channels/{general}/threads/{parent}", user=c.user)
        assert status == 200 and [m["seq"] for m in body["messages"]] == [parent] + replies
        await c.close()
    run(go())


# History pages over the websocket (docs/protocol.md, "history").

def test_history_pages_newest_before_and_after(server):
    async def go():
        user = unique()
        status, body = server.http("POST", "/api/v1/channels", {"name": unique("hist"), "kind": "private"},
                                   user=user)
        assert status == 201
        chan = body["channel"]["id"]
        c = await Client.connect(server, user)
        seqs = [(await c.publish(chan, f"page {i}"))["seq"] for i in range(12)]
        newest = await c.answer({"type": "history", "channel": chan, "limit": 5})
        below = await c.answer({"type": "history", "channel": chan, "before": seqs[5], "limit": 3})
        above = await c.answer({"type": "history", "channel": chan, "after": seqs[5], "limit": 3})
        start = await c.answer({"type": "history", "channel": chan, "after": 0, "limit": 2})
        bad = [await c.answer({"type": "history", "channel": chan, **kw})
               for kw in ({"after": -1}, {"before": -3}, {"after": 1, "before": 5}, {"limit": 0})]
        await c.close()
        return seqs, newest, below, above, start, bad

    seqs, newest, below, above, start, bad = run(go())
    # neither after nor before: the newest page, ascending
    assert [m["seq"] for m in newest["messages"]] == seqs[7:] and newest["has_more"]
    assert [m["seq"] for m in below["messages"]] == seqs[2:5] and below["has_more"]
    assert [m["seq"] for m in above["messages"]] == seqs[6:9] and above["has_more"]
    assert [m["seq"] for m in start["messages"]] == seqs[:2]
    assert all(b["type"] == "error" and b["code"] == "bad_request" for b in bad), bad


# Direct messages.

def test_dm_is_stable_private_and_live(server):
    async def go():
        alice, bob, carol = unique("a"), unique("b"), unique("c")
        b = await Client.connect(server, bob)
        status, body = server.http("POST", "/api/v1/dms", {"user": bob}, user=alice)
        assert status == 201 and body["channel"]["kind"] == "dm"
        dm = body["channel"]["id"]
        joined = await b.expect("joined")
        assert joined["channel"] == dm
        status, again = server.http("POST", "/api/v1/dms", {"user": alice}, user=bob)
        assert status == 200 and again["channel"]["id"] == dm  # one DM per pair
        await b.subscribe(dm)
        a = await Client.connect(server, alice)
        assert [c for c in a.hello["channels"] if c["id"] == dm][0]["peer"] == bob
        await a.publish(dm, "psst")
        assert (await b.messages(dm, 1))[0]["text"] == "psst"
        assert server.http("GET", f"/api/v1/channels/{dm}/messages", user=carol)[0] == 404
        assert server.http("POST", f"/api/v1/channels/{dm}/join", user=carol)[0] == 404
        assert server.http("POST", "/api/v1/dms", {"user": alice}, user=alice)[0] == 400
        await a.close(); await b.close()
    run(go())


# The HTTP API.

def test_http_api_messages_idempotency_and_paging(server):
    user = unique()
    status, body = server.http("POST", "/api/v1/channels", {"name": unique("api")}, user=user)
    chan = body["channel"]["id"]
    seqs = []
    for i in range(25):
        status, body = server.http("POST", f"/api/v1/channels/{chan}/messages", {"text": f"m{i}"},
                                   user=user, headers={"Idempotency-Key": f"k{i}"})
        assert status == 201 and body["duplicate"] is False
        seqs.append(body["seq"])
    assert seqs == list(range(1, 26))
    status, page = server.http("GET", f"/api/v1/channels/{chan}/messages?after_seq=3&limit=1", user=user)
    stored_ts = page["messages"][0]["ts"]
    status, body = server.http("POST", f"/api/v1/channels/{chan}/messages", {"text": "m3"},
                               user=user, headers={"Idempotency-Key": "k3"})
    assert status == 200 and body["seq"] == 4 and body["duplicate"] is True
    assert body["ts"] == stored_ts and not body["ts"].startswith("1970")
    status, body = server.http("POST", f"/api/v1/channels/{chan}/messages", {"text": "again"},
                               user=user, headers={"Idempotency-Key": "k3"})
    assert status == 422 and body["error"]["code"] == "idempotency_key_reused"
    assert sql(f"SELECT count(*) FROM messages WHERE channel_id = {chan}") == [["25"]]
    status, page = server.http("GET", f"/api/v1/channels/{chan}/messages?after_seq=0&limit=10", user=user)
    assert [m["seq"] for m in page["messages"]] == list(range(1, 11)) and page["has_more"]
    status, page = server.http("GET", f"/api/v1/channels/{chan}/messages?after_seq=20&limit=10", user=user)
    assert [m["seq"] for m in page["messages"]] == list(range(21, 26)) and not page["has_more"]
    status, page = server.http("GET", f"/api/v1/channels/{chan}/messages?limit=10", user=user)
    assert [m["seq"] for m in page["messages"]] == list(range(16, 26)) and page["has_more"]
    status, page = server.http("GET", f"/api/v1/channels/{chan}/messages?before_seq=6&limit=10", user=user)
    assert [m["seq"] for m in page["messages"]] == list(range(1, 6)) and not page["has_more"]
    assert page["messages"][0]["text"] == "m0" and page["messages"][0]["author"] == user


def test_http_api_errors(server):
    user = unique()
    name = unique("dup")
    assert server.http("POST", "/api/v1/channels", {"name": name}, user=user)[0] == 201
    status, body = server.http("POST", "/api/v1/channels", {"name": name}, user=user)
    assert status == 409 and body["error"]["code"] == "name_taken"
    for bad in ({"name": "Has Spaces"}, {"name": "x", "kind": "secret"}, {}):
        status, body = server.http("POST", "/api/v1/channels", bad, user=user)
        assert status == 400 and body["error"]["code"] == "bad_request", bad
    status, body = server.http("POST", "/api/v1/channels/1/messages", None, user=user)
    assert status == 400 and body["error"]["code"] == "bad_json"
    assert server.http("GET", "/api/v1/nothing", user=user)[0] == 404
    assert server.http("GET", "/api/v1/channels/1/join", user=user)[0] == 405
    status, body = server.http("GET", "/api/v1/channels/1/messages?limit=abc", user=user)
    assert status in (400, 403, 404)


def test_members_and_invites(server):
    owner, guest, third = unique(), unique(), unique()
    for u in (guest, third):
        server.http("GET", "/api/v1/channels", user=u)  # users exist once seen
    status, body = server.http("POST", "/api/v1/channels", {"name": unique("team"), "kind": "private"}, user=owner)
    chan = body["channel"]["id"]
    status, body = server.http("POST", f"/api/v1/channels/{chan}/members", {"user": guest}, user=owner)
    assert status == 201 and body["added"] is True
    status, body = server.http("GET", f"/api/v1/channels/{chan}/members", user=guest)
    assert status == 200
    assert {(m["name"], m["role"]) for m in body["members"]} == {(owner, "admin"), (guest, "member")}
    status, body = server.http("POST", f"/api/v1/channels/{chan}/members", {"user": unique()}, user=unique())
    assert status == 404
    # a private channel's members are added by its admins only
    status, body = server.http("POST", f"/api/v1/channels/{chan}/members", {"user": third}, user=guest)
    assert status == 403 and body["error"]["code"] == "forbidden", body
    # nobody of that name: 404, and no user is made
    ghost = unique("ghost")
    status, body = server.http("POST", f"/api/v1/channels/{chan}/members", {"user": ghost}, user=owner)
    assert status == 404 and body["error"]["message"] == "no such user", body
    assert sql(f"SELECT count(*) FROM users WHERE name = '{ghost}'") == [["0"]]
    # a public channel's members may add others
    status, body = server.http("POST", "/api/v1/channels", {"name": unique("open")}, user=owner)
    pub = body["channel"]["id"]
    server.http("POST", f"/api/v1/channels/{pub}/join", user=guest)
    status, body = server.http("POST", f"/api/v1/channels/{pub}/members", {"user": third}, user=guest)
    assert status == 201, body


# Bad input on the websocket.

def test_bad_json_and_unknown_type_keep_the_connection(server):
    async def go():
        c = await Client.connect(server, unique())
        await c.ws.send("{not json")
        err = await c.expect("error")
        assert err["code"] == "bad_json"
        reply = await c.answer({"type": "frobnicate"})
        assert reply["type"] == "error" and reply["code"] == "unknown_type"
        reply = await c.answer({"type": "publish", "channel": "general"})
        assert reply["code"] == "bad_request"
        assert (await c.answer({"type": "ping"}))["type"] == "pong"
        await c.close()
    run(go())


def test_oversized_message_closes_1009(server):
    async def go():
        c = await Client.connect(server, unique())
        await c.ws.send(json.dumps({"type": "ping", "pad": "x" * 70000}))
        with pytest.raises(websockets.exceptions.ConnectionClosed) as e:
            await c.expect("pong", timeout=5)
        assert e.value.rcvd.code == 1009
    run(go())


def test_binary_frame_closes_1003(server):
    async def go():
        c = await Client.connect(server, unique())
        await c.ws.send(b"\x00\x01")
        with pytest.raises(websockets.exceptions.ConnectionClosed) as e:
            await c.expect("pong", timeout=5)
        assert e.value.rcvd.code == 1003
    run(go())


def test_text_over_the_limit_is_refused(server):
    async def go():
        c = await Client.connect(server, unique())
        reply = await c.publish(channel_id(c, "general"), "x" * 40001)
        assert reply["type"] == "error" and reply["code"] == "too_large"
        await c.close()
    run(go())


def test_metrics_count_the_work(server):
    assert server.metric("fanout_connections") >= 0
    assert server.metric("fanout_frames_out_total") > 0
    assert server.metric("fanout_bytes_out_total") > server.metric("fanout_frames_out_total")
    assert server.metric("fanout_publishes_total") > 0
    assert server.metric("fanout_frames_encoded_total") > 0
    assert server.metric("fanout_deliveries_total") > 0
    assert server.metric("fanout_persist_messages_committed_total") > 0


def test_http_posts_without_a_key_are_never_deduplicated(server):
    user = unique()
    status, body = server.http("POST", "/api/v1/channels", {"name": unique("nokey")}, user=user)
    chan = body["channel"]["id"]
    results = [server.http("POST", f"/api/v1/channels/{chan}/messages", {"text": "same"}, user=user)
               for _ in range(3)]
    assert [r[0] for r in results] == [201, 201, 201]
    assert [r[1]["seq"] for r in results] == [1, 2, 3]
    assert len({r[1]["client_msg_id"] for r in results}) == 3


def test_invalid_utf8_text_closes_1007(server):
    async def go():
        c = await Client.connect(server, unique())
        await c.ws.write_frame(True, 0x1, b'{"type":"ping","x":"\xff\xfe"}')
        with pytest.raises(websockets.exceptions.ConnectionClosed) as e:
            await c.expect("pong", timeout=5)
        assert e.value.rcvd.code == 1007
    run(go())


def test_api_requests_on_one_keep_alive_connection(server):
    """Successive API requests on one keep-alive connection each get their own
    body. Under the ASan build the server's clean exit (checked by the
    fixture) also proves that no request body is leaked."""
    import http.client
    user = unique()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"Authorization": "Bearer " + token(user), "Content-Type": "application/json"}
    for i in range(3):
        conn.request("POST", "/api/v1/channels", json.dumps({"name": unique(f"ka{i}")}), headers)
        r = conn.getresponse()
        body = json.loads(r.read())
        assert r.status == 201, body
    conn.request("GET", "/api/v1/channels", headers=headers)
    r = conn.getresponse()
    assert r.status == 200 and len(json.loads(r.read())["channels"]) == 4  # general + 3
    conn.close()


def test_first_sign_in_from_many_devices_at_once(server):
    """A new user connecting from many devices at the same moment: every
    connection gets its hello (user creation races are resolved)."""
    async def go():
        user = unique("new")
        clients = await asyncio.gather(*(Client.connect(server, user) for _ in range(30)))
        ids = {c.hello["user"]["id"] for c in clients}
        assert len(ids) == 1
        for c in clients:
            await c.close()
    for _ in range(3):
        run(go())
