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


def test_names_ignore_case(server):
    """Once alice exists, Alice is not a second user: her API calls are
    refused 403 name_taken and her websocket closed 1008; a DM or a member
    add written in other case reaches alice herself."""
    import asyncio
    import websockets
    from conftest import token
    alice = unique("cased")
    assert server.http("GET", "/api/v1/channels", user=alice)[0] == 200
    twin = alice.upper()
    status, body = server.http("GET", "/api/v1/channels", user=twin)
    assert status == 403 and body["error"]["code"] == "name_taken", body
    assert sql(f"SELECT count(*) FROM users WHERE lower(name) = '{alice}'") == [["1"]]

    async def ws():
        async with websockets.connect(f"{server.ws_url}?token={token(twin)}") as c:
            await asyncio.wait_for(c.recv(), 5)
    with pytest.raises(websockets.exceptions.ConnectionClosed) as e:
        asyncio.run(ws())
    assert e.value.rcvd.code == 1008, e.value
    # alice herself still signs in
    assert server.http("GET", "/api/v1/channels", user=alice)[0] == 200
    # written in other case, a DM reaches her, not a new user
    status, body = server.http("POST", "/api/v1/dms", {"user": twin}, user=unique())
    assert status == 201 and body["channel"]["peer"] == alice, body
    status, body = server.http("POST", "/api/v1/dms", {"user": twin}, user=alice)
    assert status == 400, body  # herself
    owner = unique("own")
    status, body = server.http("POST", "/api/v1/channels", {"name": unique("c")}, user=owner)
    cid = body["channel"]["id"]
    status, body = server.http("POST", f"/api/v1/channels/{cid}/members", {"user": twin},
                               user=owner)
    assert status in (200, 201), body
    status, body = server.http("GET", f"/api/v1/channels/{cid}/members", user=owner)
    assert alice in [m["name"] for m in body["members"]], body


def test_an_upgrade_keeps_names_equal_but_for_case_working(tmp_path):
    """Migration 0009 on a database that already holds names equal but for
    case: the first of each set stays held to the rule, the later ones are
    exempt, all keep working (fanoutd --migrate on a scratch database taken
    back to version 8)."""
    import os
    import subprocess
    db = unique("upgrade")
    port = os.environ["FANOUT_TEST_PG_PORT"]

    def psql(query, dbname="postgres", user="postgres"):
        return subprocess.run(["psql", "-h", "127.0.0.1", "-p", port, "-U", user, "-d", dbname,
                               "-qtAX", "-v", "ON_ERROR_STOP=1", "-c", query],
                              check=True, capture_output=True, text=True).stdout.split()

    def migrate():
        dsn = f"host=127.0.0.1 port={port} dbname={db} user=fanout"
        p = subprocess.run([os.environ["FANOUT_BIN"], "--migrate"], capture_output=True,
                           text=True, env=dict(os.environ, FANOUT_PG_DSN=dsn, FANOUT_JWT_SECRET="x"),
                           timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr

    psql(f"CREATE DATABASE {db} OWNER fanout")
    try:
        migrate()
        psql("DELETE FROM schema_migrations WHERE version = 9; DROP INDEX users_name_folded; "
             "ALTER TABLE users DROP COLUMN name_fold_exempt; "
             "INSERT INTO users (name) VALUES ('Dup'), ('dup'), ('DUP'), ('solo')", db, "fanout")
        migrate()
        rows = psql("SELECT name || ':' || name_fold_exempt FROM users ORDER BY id", db, "fanout")
        assert rows == ["Dup:false", "dup:true", "DUP:true", "solo:false"], rows
        with pytest.raises(subprocess.CalledProcessError):  # new names are held to it
            psql("INSERT INTO users (name) VALUES ('dUp')", db, "fanout")
        with pytest.raises(subprocess.CalledProcessError):
            psql("INSERT INTO users (name) VALUES ('SOLO')", db, "fanout")
    finally:
        psql(f"DROP DATABASE {db} WITH (FORCE)")


def test_a_display_name_is_set_normalised_found_and_looked_up(server):
    me, other = unique("dn"), unique("dn")
    server.http("GET", "/api/v1/channels", user=other)  # other exists
    tag = unique("Zq")
    status, body = server.http("POST", "/api/v1/users/me",
                               {"display_name": f"  Ａｌｉｃｅ {tag}  "}, user=me)
    assert status == 200, body
    # NFKC: the full-width letters are the plain ones; the ends trimmed
    assert body["user"] == {"name": me, "display_name": f"Alice {tag}"}
    status, body = server.http("GET", f"/api/v1/users?q={tag.lower()}", user=other)
    assert status == 200 and body["users"] == [{"name": me, "display_name": f"Alice {tag}"}]
    status, body = server.http("GET", f"/api/v1/users?names={me.upper()},{other},nobody-{tag}",
                               user=other)
    assert status == 200
    assert sorted((u["name"], u["display_name"]) for u in body["users"]) == \
        sorted([(me, f"Alice {tag}"), (other, "")])


@pytest.mark.parametrize("value", ["x" * 65, "tab\tinside", "\u0000nul", "\u202eevil", "a\u2066b",
                                   42, None])
def test_a_bad_display_name_is_refused_and_changes_nothing(server, value):
    me = unique("dnb")
    status, _ = server.http("POST", "/api/v1/users/me", {"display_name": "Kept"}, user=me)
    assert status == 200
    status, body = server.http("POST", "/api/v1/users/me", {"display_name": value}, user=me)
    assert status == 400 and body["error"]["code"] == "bad_request", body
    assert sql(f"SELECT display_name FROM users WHERE name = '{me}'") == [["Kept"]]
    status, body = server.http("POST", "/api/v1/users/me", {"display_name": ""}, user=me)
    assert status == 200 and body["user"]["display_name"] == ""
