# SPDX-License-Identifier: BSD-3-Clause
"""A Patroni pair (deploy/patroni: a primary and a synchronous standby on
the etcd deploy/test started): `fanoutctl db status` shows the pair."""
import json
import os
import subprocess
import urllib.parse

import pytest

from conftest import free_port_pair

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATRONI = os.path.join(ROOT, "deploy", "patroni")
CTL = os.environ.get("FANOUT_CTL", "")
ETCD = os.environ.get("FANOUT_TEST_ETCD", "")


class Pair:
    def __init__(self, directory):
        assert ETCD and CTL, "FANOUT_TEST_ETCD and FANOUT_CTL must be set (deploy/test and meson do)"
        self.dir = str(directory)
        self.port = free_port_pair()
        self.patroni("start", urllib.parse.urlparse(ETCD).port, self.port, 2)
        self.dsn = self.patroni("dsn").strip()
        self.read_dsn = self.patroni("read-dsn").strip()
        self.scope = self.patroni("scope").strip()

    def patroni(self, *args):
        return subprocess.run([PATRONI, args[0], self.dir, *map(str, args[1:])], check=True,
                              capture_output=True, text=True, timeout=300).stdout

    def status(self, *extra):
        """fanoutctl db status -o json: (exit code, the parsed view or None, stderr)."""
        out = subprocess.run([CTL, "db", "status", "--endpoints", ETCD, "--scope", self.scope,
                              "-o", "json", *extra], capture_output=True, text=True, timeout=20)
        return out.returncode, json.loads(out.stdout) if out.stdout else None, out.stderr


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    p = Pair(tmp_path_factory.mktemp("patroni"))
    yield p
    p.patroni("destroy")


def test_patroni_db_status_shows_the_pair(pair):
    rc, view, err = pair.status()
    assert rc == 0, err
    leader = pair.patroni("leader").strip()
    assert view["leader"] == leader and view["scope"] == pair.scope
    roles = sorted(m["role"] for m in view["members"])
    assert roles == ["primary", "sync-standby"]
    assert all(m["state"] == "running" and m["timeline"] >= 1 for m in view["members"])
    assert all(m["lag_bytes"] is not None for m in view["members"])
    table = subprocess.run([CTL, "db", "status", "--endpoints", ETCD, "--scope", pair.scope],
                           capture_output=True, text=True, timeout=20).stdout
    assert f"leader: {leader}, synchronous standby: {view['sync_standby']}" in table


def test_patroni_db_status_bad_paths(pair):
    rc, _, err = pair.status("--scope", "no-such-scope")
    assert rc == 4 and "no Patroni cluster 'no-such-scope'" in err
    out = subprocess.run([CTL, "db", "status", "--endpoints", "http://127.0.0.1:1"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 3 and "cannot read" in out.stderr
    out = subprocess.run([CTL, "db", "stat"], capture_output=True, text=True, timeout=20)
    assert out.returncode == 2 and "usage: fanoutctl db status" in out.stderr
