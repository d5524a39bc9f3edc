# SPDX-License-Identifier: BSD-3-Clause
"""The hostile-input suite: what an attacker can send to the one port a client
reaches. Every HTTP route and every websocket request type is tried with each
kind of bad token, over kept-alive and closing connections, with and without a
body; each case asserts the status, that fanoutd is still alive, and that
PostgreSQL did not change. Then the malformed requests the security review
found (docs/security.md): sizes, framing, methods, resumes from the future, a
second daemon on a busy port. Tokens are minted here with Python's hmac."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import socket
import subprocess
import time
import uuid

import pytest
import websockets

from conftest import SECRET, Client, Server, channel_id, run, sql, token, unique


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(payload, alg="HS256", secret=SECRET, header=None):
    """A token around any payload (a dict, or raw text), signed with HS256."""
    head = b64(json.dumps(header or {"alg": alg, "typ": "JWT"}).encode())
    body = b64(payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
    sig = b64(hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


MALLORY = "mallory" + uuid.uuid4().hex[:6]
NOW = int(time.time())

# Each bad token: (name, Authorization header value or None, query token or None).
BAD_TOKENS = [
    ("missing", None, None),
    ("empty_bearer", "Bearer ", None),
    ("not_bearer", "Basic " + b64(b"mallory:secret"), None),
    ("malformed", "Bearer abc", None),
    ("four_parts", "Bearer a.b.c.d", None),
    ("not_base64", "Bearer !!.??.**", None),
    ("wrong_signature", "Bearer " + token(MALLORY, secret="not-the-secret"), None),
    ("alg_none", "Bearer " + b64(b'{"alg":"none","typ":"JWT"}') + "." +
     b64(json.dumps({"sub": MALLORY, "exp": NOW + 3600}).encode()) + ".", None),
    ("alg_hs512", "Bearer " + signed({"sub": MALLORY, "exp": NOW + 3600}, alg="HS512"), None),
    ("alg_rs256", "Bearer " + signed({"sub": MALLORY, "exp": NOW + 3600}, alg="RS256"), None),
    ("expired", "Bearer " + signed({"sub": MALLORY, "exp": NOW - 10}), None),
    ("not_yet_valid", "Bearer " + signed({"sub": MALLORY, "exp": NOW + 3600, "nbf": NOW + 3000}), None),
    ("no_exp", "Bearer " + signed({"sub": MALLORY}), None),
    ("exp_string", "Bearer " + signed({"sub": MALLORY, "exp": str(NOW + 3600)}), None),
    ("exp_float", "Bearer " + signed({"sub": MALLORY, "exp": NOW + 3600.5}), None),
    ("nbf_string", "Bearer " + signed({"sub": MALLORY, "exp": NOW + 3600, "nbf": "0"}), None),
    ("no_sub", "Bearer " + signed({"exp": NOW + 3600}), None),
    ("bad_sub", "Bearer " + signed({"sub": "mal lory", "exp": NOW + 3600}), None),
    ("sub_number", "Bearer " + signed({"sub": 7, "exp": NOW + 3600}), None),
    ("payload_not_json", "Bearer " + signed("not json"), None),
    ("huge", "Bearer " + "a" * 3000, None),
    ("in_url", None, token(MALLORY)),
]
CODES = {"missing_token", "bad_token", "token_expired", "token_in_url"}


@pytest.fixture(scope="module")
def world():
    """A server, and data a refused caller would like to change: a private
    channel, a DM, a message by someone else."""
    server = Server()
    owner, peer = unique("own"), unique("peer")

    async def setup():
        a = await Client.connect(server, owner)
        general = channel_id(a, "general")
        ack = await a.publish(general, "owner's words")
        await a.close()
        return general, ack["seq"]

    general, seq = run(setup())
    _, body = server.http("POST", "/api/v1/channels", {"name": unique("priv"), "kind": "private"}, user=owner)
    private = body["channel"]["id"]
    server.http("GET", "/api/v1/channels", user=peer)  # a DM is with someone who exists
    _, body = server.http("POST", "/api/v1/dms", {"user": peer}, user=owner)
    dm = body["channel"]["id"]
    _, ack = server.http("POST", f"/api/v1/channels/{private}/messages", {"text": "secret"}, user=owner)
    yield {"server": server, "general": general, "private": private, "dm": dm,
           "seq": seq, "private_seq": ack["seq"], "owner": owner}
    assert server.stop() == 0, "fanoutd did not exit 0 on SIGTERM"


def routes(w):
    """Every route of docs/api.md, each with a body that would change
    something if it were carried out."""
    p, g, dm, s = w["private"], w["general"], w["dm"], w["seq"]
    return [
        ("GET", "/api/v1/channels", None),
        ("POST", "/api/v1/channels", {"name": unique("evil")}),
        ("POST", "/api/v1/dms", {"user": w["owner"]}),
        ("POST", f"/api/v1/channels/{g}/join", None),
        ("POST", f"/api/v1/channels/{g}/leave", None),
        ("GET", f"/api/v1/channels/{p}/members", None),
        ("POST", f"/api/v1/channels/{p}/members", {"user": MALLORY}),
        ("GET", f"/api/v1/channels/{p}/messages", None),
        ("POST", f"/api/v1/channels/{p}/messages", {"text": "pwned"}),
        ("POST", f"/api/v1/channels/{dm}/messages", {"text": "pwned"}),
        ("GET", f"/api/v1/channels/{p}/threads/{w['private_seq']}", None),
        ("POST", f"/api/v1/channels/{g}/read", {"seq": s}),
        ("POST", f"/api/v1/channels/{g}/messages/{s}/edit", {"text": "pwned"}),
        ("DELETE", f"/api/v1/channels/{g}/messages/{s}", None),
        ("POST", f"/api/v1/channels/{g}/messages/{s}/reactions", {"emoji": "skull"}),
        ("DELETE", f"/api/v1/channels/{g}/messages/{s}/reactions?emoji=skull", None),
    ]


def snapshot():
    """Everything a refused caller could change, hashed."""
    return sql(
        "SELECT (SELECT md5(coalesce(string_agg(concat_ws(':', channel_id, seq, author_id, kind, body, "
        "edited_at, deleted_at), ',' ORDER BY channel_id, seq), '')) FROM messages), "
        "(SELECT md5(coalesce(string_agg(concat_ws(':', channel_id, user_id, role, last_read_seq), ',' "
        "ORDER BY channel_id, user_id), '')) FROM channel_members), "
        "(SELECT md5(coalesce(string_agg(concat_ws(':', id, name, kind, last_seq), ',' ORDER BY id), '')) "
        "FROM channels), "
        "(SELECT md5(coalesce(string_agg(name, ',' ORDER BY name), '')) FROM users), "
        "(SELECT count(*) FROM reactions)")


def alive(server):
    assert server.proc.poll() is None, "fanoutd died: " + open(server.log.name).read()[-3000:]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    conn.close()


def send(conn, method, path, body, headers, with_body):
    data = json.dumps(body).encode() if (body is not None and with_body) else None
    hdrs = dict(headers)
    if data is not None:
        hdrs["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=hdrs)
    r = conn.getresponse()
    raw = r.read()
    return r.status, r.getheader("content-type"), raw


@pytest.mark.parametrize("keep_alive", [True, False], ids=["keepalive", "close"])
@pytest.mark.parametrize("kind,auth,query", BAD_TOKENS, ids=[t[0] for t in BAD_TOKENS])
def test_refused_token_changes_nothing_and_crashes_nothing(world, kind, auth, query, keep_alive):
    server = world["server"]
    before = snapshot()
    headers = {} if keep_alive else {"Connection": "close"}
    if auth is not None:
        headers["Authorization"] = auth
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    tried = 0
    for method, path, body in routes(world):
        for with_body in (True, False):
            if query:
                path = path + ("&" if "?" in path else "?") + "token=" + query
            if not keep_alive:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            status, ctype, raw = send(conn, method, path, body, headers, with_body)
            assert status == 401, (kind, method, path, status, raw)
            assert ctype == "application/json"
            assert json.loads(raw)["error"]["code"] in CODES
            tried += 1
    conn.close()
    assert tried == 2 * len(routes(world))
    time.sleep(0.3)  # anything wrongly started would have reached PostgreSQL by now
    alive(server)
    assert snapshot() == before, f"a request refused for {kind} changed the database"
    # No identity was taken from any of these tokens.
    assert sql(f"SELECT count(*) FROM users WHERE name = '{MALLORY}'") == [["0"]]


def ws_request_types(w):
    """Every websocket request type, aimed at the private channel."""
    p, s = w["private"], w["private_seq"]
    return [
        {"type": "subscribe", "channels": [{"channel": p, "since": 0}]},
        {"type": "unsubscribe", "channels": [p]},
        {"type": "publish", "channel": p, "text": "pwned", "client_msg_id": "x1"},
        {"type": "history", "channel": p},
        {"type": "mark_read", "channel": p, "seq": s},
        {"type": "typing", "channel": p},
        {"type": "edit", "channel": p, "seq": s, "text": "pwned"},
        {"type": "delete", "channel": p, "seq": s},
        {"type": "react", "channel": p, "seq": s, "emoji": "skull"},
        {"type": "unreact", "channel": p, "seq": s, "emoji": "skull"},
    ]


WS_BAD_TOKENS = [t for t in BAD_TOKENS if t[0] != "in_url"]


@pytest.mark.parametrize("kind,auth,query", WS_BAD_TOKENS, ids=[t[0] for t in WS_BAD_TOKENS])
def test_websocket_upgrade_refused_for_every_bad_token(world, kind, auth, query):
    """The websocket takes its token from the header or, for browsers, the
    URL: each bad one is refused 401 before the upgrade, either way."""
    server = world["server"]
    before = snapshot()
    headers = {"Authorization": auth} if auth else {}

    async def go():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
            await websockets.connect(server.ws_url, extra_headers=headers, open_timeout=5)
        assert e.value.status_code == 401
        if auth and auth.startswith("Bearer ") and len(auth) > 7:
            with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
                await websockets.connect(f"{server.ws_url}?token={auth[7:]}", open_timeout=5)
            # a URL past 2 KiB is refused as such, before its token is read
            assert e.value.status_code == (414 if len(auth) > 2000 else 401)

    run(go())
    alive(server)
    assert snapshot() == before


def test_websocket_requests_of_a_non_member_change_nothing(world):
    server = world["server"]
    requests = ws_request_types(world)

    async def go():
        c = await Client.connect(server, unique("out"))
        before = snapshot()
        for r in requests:
            answer = await c.answer(dict(r))
            if r["type"] == "unsubscribe":
                # leaving what one never had changes nothing; it is answered
                assert answer["type"] == "unsubscribed", answer
                continue
            assert answer["type"] == "error", (r, answer)
            assert answer["code"] in ("not_member", "not_found", "forbidden"), (r, answer)
        await c.quiet(0.3)
        assert not [f for f in c.frames if f.get("type") in ("message", "typing", "event")]
        await c.close()
        return before

    before = run(go())
    alive(server)
    assert snapshot() == before


def raw_exchange(port, data, read_for=2.0):
    """Sends bytes on a fresh connection; returns what comes back before the
    server closes or read_for seconds pass."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_for)
    s.sendall(data)
    out = b""
    deadline = time.monotonic() + read_for
    try:
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    s.close()
    return out


def exchange_in_turn(port, requests, read_for=3.0):
    """Sends each request on one kept-alive connection once the answer to the
    one before is in (as curl and browsers do); returns the statuses."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_for)
    statuses = []
    for data in requests:
        s.sendall(data)
        out = b""
        while b"\r\n\r\n" not in out:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        head, _, rest = out.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        statuses.append(status_of(out))
    s.close()
    return statuses


def status_of(raw):
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else None


def test_refused_post_then_good_request_on_one_connection(world):
    """The request that crashed fanoutd: a refused POST with a body on a kept
    connection, followed by more requests on it."""
    server = world["server"]
    good = token(world["owner"])
    body = b'{"text":"x"}'
    refused = (f"POST /api/v1/channels/{world['general']}/messages HTTP/1.1\r\nHost: x\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    ok = f"GET /api/v1/channels HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {good}\r\n\r\n".encode()
    before = snapshot()
    assert exchange_in_turn(server.port, [refused, ok, refused, ok, refused]) == [401, 200, 401, 200, 401]
    alive(server)
    assert snapshot() == before


def parse_answers(raw):
    """The (status, body) of each HTTP/1.1 answer in raw, in order."""
    answers = []
    while raw.startswith(b"HTTP/1.1 "):
        head, _, rest = raw.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        answers.append((status_of(head), rest[:length]))
        raw = rest[length:]
    return answers, raw


def test_pipelined_requests_are_answered_in_order(world):
    """Requests sent back to back in one write, before any answer (a refused
    POST with a body, an admitted POST that waits on PostgreSQL, GETs), are
    each answered once, in order, and the refused one changes nothing."""
    server = world["server"]
    owner, g = world["owner"], world["general"]
    auth = f"Authorization: Bearer {token(owner)}\r\n"
    body = b'{"text":"pipelined"}'
    post = lambda a: (f"POST /api/v1/channels/{g}/messages HTTP/1.1\r\nHost: x\r\n{a}"
                      f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                      f"Idempotency-Key: pipe-{unique()}\r\n\r\n").encode() + body
    get = f"GET /api/v1/channels HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode()
    health = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    before = sql(f"SELECT count(*) FROM messages WHERE channel_id = {g} AND body::text LIKE '%pipelined%'")
    raw = raw_exchange(server.port, post("") + get + post(auth) + health + get + last, read_for=10)
    answers, rest = parse_answers(raw)
    assert [a[0] for a in answers] == [401, 200, 201, 200, 200, 200], raw[:400]
    assert rest == b""
    assert json.loads(answers[2][1])["seq"] > 0 and answers[3][1] == b"ok\n"
    after = sql(f"SELECT count(*) FROM messages WHERE channel_id = {g} AND body::text LIKE '%pipelined%'")
    assert int(after[0][0]) == int(before[0][0]) + 1
    alive(server)


def test_expect_100_continue(world):
    """A client that waits for 100 Continue gets it once admitted, then the
    answer; refused, it gets the refusal and the connection closes (it may
    or may not send the body it announced)."""
    server = world["server"]
    owner, g = world["owner"], world["general"]
    body = b'{"text":"after continue"}'
    head = lambda a: (f"POST /api/v1/channels/{g}/messages HTTP/1.1\r\nHost: x\r\n{a}"
                      f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                      f"Expect: 100-continue\r\n\r\n").encode()
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(head(f"Authorization: Bearer {token(owner)}\r\n"))
    assert s.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
    s.sendall(body)
    answers, _ = parse_answers(s.recv(65536))
    assert answers[0][0] == 201
    s.close()
    before = snapshot()
    out = raw_exchange(server.port, head(""))
    answers, rest = parse_answers(out)
    assert [a[0] for a in answers] == [401] and rest == b"" and b"connection: close" in out
    assert snapshot() == before
    alive(server)


def test_framing_and_size_refusals(world):
    server = world["server"]
    good = token(world["owner"])
    path = f"/api/v1/channels/{world['general']}/messages"
    auth = f"Authorization: Bearer {good}\r\n"
    before = snapshot()
    # chunked bodies are refused with 411 and the connection closed
    out = raw_exchange(server.port, (f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}"
                                     "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").encode())
    assert status_of(out) == 411 and b"length_required" in out
    # a length that is not a number
    out = raw_exchange(server.port, (f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}"
                                     "Content-Length: -5\r\n\r\n").encode())
    assert status_of(out) == 400 and b"bad_request" in out, out[:200]
    # a body over 1 MiB: 413 at once, the body never read
    out = raw_exchange(server.port, (f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}"
                                     f"Content-Length: {2 << 20}\r\n\r\n").encode() + b"x" * 1000)
    assert status_of(out) == 413 and b"too_large" in out
    # a 10 KB Idempotency-Key: a clear 400, not a dropped connection
    status, body = server.http("POST", path, {"text": "k"}, user=world["owner"],
                               headers={"Idempotency-Key": "k" * 10000})
    assert status == 400 and body["error"]["code"] == "bad_request"
    status, body = server.http("POST", path, {"text": "k"}, user=world["owner"],
                               headers={"Idempotency-Key": "k" * 65})
    assert status == 400
    # a head past 16 KiB: 431 and the connection closed
    out = raw_exchange(server.port, (f"GET /api/v1/channels HTTP/1.1\r\nHost: x\r\n{auth}"
                                     f"X-Big: {'b' * 20000}\r\n\r\n").encode())
    assert status_of(out) == 431 and b"headers_too_large" in out, out[:200]
    alive(server)
    assert snapshot() == before


def test_methods_and_bodyless_posts(world):
    server = world["server"]
    owner, g = world["owner"], world["general"]
    for method, path in [("PUT", "/api/v1/channels"), ("PATCH", f"/api/v1/channels/{g}/messages"),
                         ("GET", f"/api/v1/channels/{g}/join"), ("DELETE", "/api/v1/dms"),
                         ("POST", f"/api/v1/channels/{g}/messages/1"), ("OPTIONS", "/api/v1/channels")]:
        status, body = server.http(method, path, user=owner)
        assert status == 405 and body["error"]["code"] == "method_not_allowed", (method, path, body)
    status, body = server.http("GET", "/api/v1/nothing", user=owner)
    assert status == 404 and body["error"]["code"] == "not_found"
    # A POST with no body at all (no Content-Length) is answered.
    user = unique()
    server.http("GET", "/api/v1/channels", user=user)
    out = raw_exchange(server.port, (f"POST /api/v1/channels/{g}/leave HTTP/1.1\r\nHost: x\r\n"
                                     f"Authorization: Bearer {token(user)}\r\nConnection: close\r\n\r\n").encode())
    assert status_of(out) == 200, out
    out = raw_exchange(server.port, (f"POST /api/v1/channels/{g}/join HTTP/1.1\r\nHost: x\r\n"
                                     f"Authorization: Bearer {token(user)}\r\nConnection: close\r\n\r\n").encode())
    assert status_of(out) == 200 and b'"member":true' in out, out
    # Health endpoints refuse other methods; a body on them is read, not parsed as a request.
    assert exchange_in_turn(server.port, [
        b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"]) == [405, 200]
    alive(server)


def test_oversized_req_is_refused(world):
    server = world["server"]

    async def go():
        c = await Client.connect(server, unique())
        await c.send({"type": "ping", "req": "r" * 10000})
        err = await c.expect("error")
        assert err["code"] == "bad_request" and "req" in err["message"]
        await c.send({"type": "ping", "req": {"an": "object"}})
        assert (await c.expect("error"))["code"] == "bad_request"
        assert (await c.answer({"type": "ping"}))["type"] == "pong"
        await c.close()
    run(go())


def test_subscribe_since_beyond_the_head_is_clamped_and_told(world):
    server = world["server"]

    async def go():
        a, b = await Client.connect(server, unique()), await Client.connect(server, unique())
        general = channel_id(a, "general")
        head = int(sql(f"SELECT last_seq FROM channels WHERE id = {general}")[0][0])
        answer = await b.subscribe(general, since=head + 1000)
        assert answer["type"] == "subscribed"
        err = await b.expect("error")
        assert err["code"] == "since_ahead" and err["channel"] == general
        assert err["since"] == head + 1000 and err["last_seq"] >= head
        ack = await a.publish(general, "after the clamp")
        got = await b.messages(general, 1)
        assert got[0]["seq"] == ack["seq"] and got[0]["text"] == "after the clamp"
        await a.close(); await b.close()
    run(go())


def test_second_daemon_on_a_busy_port_refuses_to_start(world):
    server = world["server"]
    env = dict(os.environ, FANOUT_PG_DSN=os.environ["FANOUT_TEST_PG_DSN"], FANOUT_JWT_SECRET=SECRET)
    r = subprocess.run([os.environ["FANOUT_BIN"], "-c", server.config], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert "Address already in use" in r.stdout + r.stderr
    alive(server)
