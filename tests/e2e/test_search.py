# SPDX-License-Identifier: BSD-3-Clause
"""Message search (docs/api.md, "Search"): PostgreSQL full-text search over
the channels the searcher is a member of (a private channel's and a DM's
messages never reach anyone else), stemmed, ranked and paged, with in:,
from:, before: and after: filters; edits and deletes followed; bad queries
refused with 400."""
import datetime
import random
import string
import time
import urllib.parse

import pytest

from conftest import Server, unique


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    assert s.stop() == 0


def word():
    """A word no other test wrote (letters only: the English parser keeps it
    as one lexeme)."""
    return "zq" + "".join(random.choice(string.ascii_lowercase) for _ in range(12))


def search(server, user, q, **page):
    query = urllib.parse.urlencode({"q": q, **page})
    return server.http("GET", f"/api/v1/search?{query}", user=user)


def indexed(server, user, q, n, **page):
    """search() once the index holds the n hits a test just posted: words
    are indexed a moment after the commit (docs/api.md), so the first
    search of a test waits for them, at most 10 s."""
    deadline = time.monotonic() + 10
    while True:
        status, body = search(server, user, q, **page)
        if status != 200 or len(body["results"]) >= n or time.monotonic() > deadline:
            return status, body
        time.sleep(0.02)


def channel(server, owner, kind="public", members=()):
    status, body = server.http("POST", "/api/v1/channels", {"name": unique("s"), "kind": kind},
                               user=owner)
    assert status == 201, body
    cid = body["channel"]["id"]
    for m in members:
        server.http("GET", "/api/v1/channels", user=m)  # a user exists once seen
        status, body = server.http("POST", f"/api/v1/channels/{cid}/members", {"user": m},
                                   user=owner)
        assert status in (200, 201), body
    return cid


def post(server, user, cid, text, parent=None):
    body = {"text": text} | ({"parent_seq": parent} if parent else {})
    status, out = server.http("POST", f"/api/v1/channels/{cid}/messages", body, user=user)
    assert status == 201, out
    return out["seq"]


def test_found_stemmed_and_ranked(server):
    alice, bob = unique("a"), unique("b")
    w = word()
    cid = channel(server, alice, members=[bob])
    post(server, alice, cid, f"{w} deploying the release tonight")
    post(server, bob, cid, f"{w} {w} {w} deploy deploy notes")
    post(server, bob, cid, "nothing to see")
    status, body = indexed(server, alice, f"{w} deploy", 2)
    assert status == 200, body
    hits = body["results"]
    assert [h["author"] for h in hits] == [bob, alice]  # more of the words: first
    assert hits[0]["rank"] >= hits[1]["rank"] > 0
    assert {h["channel"] for h in hits} == {cid} and hits[1]["text"].startswith(w)
    assert hits[0]["channel_kind"] == "public" and hits[0]["parent_seq"] is None
    assert body["has_more"] is False and body["next_offset"] is None
    # websearch syntax: a quoted phrase, and a word left out
    status, body = search(server, alice, f'"{w} deploying" -notes')
    assert status == 200 and [h["author"] for h in body["results"]] == [alice], body


def test_a_private_channel_and_a_dm_reach_nobody_else(server):
    carol, dave, eve = unique("c"), unique("d"), unique("e")
    secret = word()
    priv = channel(server, carol, "private", members=[dave])
    server.http("GET", "/api/v1/channels", user=eve)
    post(server, carol, priv, f"the {secret} plan")
    status, body = server.http("POST", "/api/v1/dms", {"user": dave}, user=carol)
    assert status in (200, 201), body
    post(server, dave, body["channel"]["id"], f"re {secret}")
    for who, want in ((carol, 2), (dave, 2), (eve, 0)):
        status, body = indexed(server, who, secret, want)
        assert status == 200 and len(body["results"]) == want, (who, body)
    # naming the channel does not open it either
    status, body = search(server, eve, f"{secret} in:#{priv}")
    assert status == 200 and body["results"] == []
    # nor does leaving it keep it
    assert server.http("POST", f"/api/v1/channels/{priv}/leave", user=dave)[0] == 200
    status, body = search(server, dave, secret)
    assert [h["channel_kind"] for h in body["results"]] == ["dm"], body


def test_filters(server):
    fay, gus = unique("f"), unique("g")
    w = word()
    one, two = channel(server, fay, members=[gus]), channel(server, fay, members=[gus])
    status, body = server.http("GET", "/api/v1/channels", user=fay)
    names = {c["id"]: c["name"] for c in body["channels"]}
    post(server, fay, one, f"{w} first")
    post(server, gus, one, f"{w} second")
    post(server, gus, two, f"{w} third")
    assert indexed(server, fay, w, 3)[0] == 200
    status, body = search(server, fay, f"{w} in:#{names[one]}")
    assert status == 200 and {h["channel"] for h in body["results"]} == {one}, body
    assert len(body["results"]) == 2 and body["query"]["in"] == names[one]
    status, body = search(server, fay, f"{w} from:@{gus.upper()}")  # names without case
    assert {h["author"] for h in body["results"]} == {gus} and len(body["results"]) == 2
    # filters alone: the newest first
    status, body = search(server, fay, f"from:@{gus} in:{names[two]}")
    assert status == 200 and [h["text"] for h in body["results"]] == [f"{w} third"], body
    today = datetime.datetime.now(datetime.timezone.utc).date()
    tomorrow = today + datetime.timedelta(days=1)
    status, body = search(server, fay, f"{w} after:{today}")
    assert len(body["results"]) == 3, body
    status, body = search(server, fay, f"{w} before:{today}")
    assert body["results"] == [], body
    status, body = search(server, fay, f"{w} before:{tomorrow} after:{today}")
    assert len(body["results"]) == 3 and body["query"]["before"] == str(tomorrow), body


def test_pages(server):
    hal = unique("h")
    w = word()
    cid = channel(server, hal)
    for i in range(25):
        post(server, hal, cid, f"{w} number {i}")
    seen = []
    assert len(indexed(server, hal, w, 25, limit=50)[1]["results"]) == 25
    status, body = search(server, hal, w, limit=10)
    assert status == 200 and len(body["results"]) == 10 and body["has_more"], body
    seen += body["results"]
    status, body = search(server, hal, w, limit=10, offset=body["next_offset"])
    seen += body["results"]
    status, body = search(server, hal, w, limit=10, offset=body["next_offset"])
    assert len(body["results"]) == 5 and not body["has_more"] and body["next_offset"] is None
    seen += body["results"]
    assert sorted(h["seq"] for h in seen) == list(range(1, 26))  # each once


def test_edits_deletes_and_replies_are_followed(server):
    ivy = unique("i")
    old, new, reply = word(), word(), word()
    cid = channel(server, ivy)
    seq = post(server, ivy, cid, f"{old} draft")
    status, body = server.http("POST", f"/api/v1/channels/{cid}/messages/{seq}/edit",
                               {"text": f"{new} final"}, user=ivy)
    assert status in (200, 201), body
    assert search(server, ivy, old)[1]["results"] == []
    assert [h["seq"] for h in search(server, ivy, new)[1]["results"]] == [seq]
    # the edit event itself is not a hit: one result, the message
    r = post(server, ivy, cid, f"{reply} in the thread", parent=seq)
    status, body = indexed(server, ivy, reply, 1)
    assert [(h["seq"], h["parent_seq"]) for h in body["results"]] == [(r, seq)]
    status, body = server.http("DELETE", f"/api/v1/channels/{cid}/messages/{seq}", user=ivy)
    assert status in (200, 201, 204), body
    assert search(server, ivy, new)[1]["results"] == []


@pytest.mark.parametrize("query,page", [
    ("", {}),
    ("   ", {}),
    ("x before:2026-02-30", {}),
    ("x after:yesterday", {}),
    ("x from:", {}),
    ("x in:#", {}),
    ("x", {"limit": 0}),
    ("x", {"limit": 51}),
    ("x", {"offset": 1001}),
    ("x", {"limit": "ten"}),
    ("y" * 300, {}),
])
def test_bad_queries_are_refused(server, query, page):
    status, body = search(server, unique("j"), query, **page)
    assert status == 400 and body["error"]["code"] == "bad_request", (query, body)


def test_no_token_no_search(server):
    status, _ = server.http("GET", "/api/v1/search?q=x")
    assert status == 401
    # words PostgreSQL drops (stop words) find nothing, without an error
    status, body = search(server, unique("k"), "the and of")
    assert status == 200 and body["results"] == []
