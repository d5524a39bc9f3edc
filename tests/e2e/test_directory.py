# SPDX-License-Identifier: BSD-3-Clause
"""The directory (docs/api.md): public channels found by name with their
member counts, a user directory, and DMs only with users who exist."""
import pytest

from conftest import Server, sql, unique


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    assert s.stop() == 0


def test_a_public_channel_is_found_and_joined_by_someone_never_added(server):
    owner, other = unique("own"), unique("oth")
    tag = unique("browse")
    status, body = server.http("POST", "/api/v1/channels", {"name": f"{tag}-pub"}, user=owner)
    assert status == 201, body
    pub = body["channel"]["id"]
    status, body = server.http("POST", "/api/v1/channels", {"name": f"{tag}-priv",
                                                             "kind": "private"}, user=owner)
    assert status == 201, body
    status, body = server.http("GET", f"/api/v1/channels?scope=public&q={tag.upper()}",
                               user=other)
    assert status == 200, body
    # the private one is not listed; the public one is, with its count
    assert [(c["name"], c["members"], c["joined"]) for c in body["channels"]] == \
        [(f"{tag}-pub", 1, False)]
    status, _ = server.http("POST", f"/api/v1/channels/{pub}/join", user=other)
    assert status == 200
    status, body = server.http("GET", f"/api/v1/channels?scope=public&q={tag}", user=other)
    assert [(c["members"], c["joined"]) for c in body["channels"]] == [(2, True)]
    # a name with LIKE's wildcards in it is matched literally
    status, body = server.http("GET", "/api/v1/channels?scope=public&q=%25_", user=other)
    assert status == 200 and all("%_" in c["name"] for c in body["channels"])


def test_the_user_directory(server):
    tag = unique("dir")
    for u in (f"{tag}_b", f"{tag}_a", f"{tag}xa"):
        server.http("GET", "/api/v1/channels", user=u)  # a user exists once seen
    status, body = server.http("GET", f"/api/v1/users?q={tag}_", user=unique())
    assert status == 200
    assert [u["name"] for u in body["users"]] == [f"{tag}_a", f"{tag}_b"]  # '_' literal
    status, body = server.http("GET", f"/api/v1/users?q={tag.upper()}", user=unique())
    assert len(body["users"]) == 3  # case ignored
    status, _ = server.http("GET", "/api/v1/users")
    assert status == 401


def test_a_dm_with_nobody_is_404_and_creates_nobody(server):
    ghost = unique("ghost")
    status, body = server.http("POST", "/api/v1/dms", {"user": ghost}, user=unique())
    assert status == 404 and body["error"]["code"] == "not_found", body
    assert sql(f"SELECT count(*) FROM users WHERE name = '{ghost}'") == [["0"]]
    # one who has been seen can be messaged
    real = unique("real")
    server.http("GET", "/api/v1/channels", user=real)
    status, body = server.http("POST", "/api/v1/dms", {"user": real}, user=unique())
    assert status == 201 and body["channel"]["peer"] == real
