# SPDX-License-Identifier: BSD-3-Clause
"""The fault harness end to end: a short run with fanoutd killed and paused
and PostgreSQL restarted and killed must check clean, and so must a short
run of a three-node cluster with nodes and etcd killed, and so must a run on
a Patroni pair whose leader's host dies; the negative controls (PostgreSQL
acknowledging commits it has not written, then killed; a Patroni pair
replicating asynchronously to a standby that lags, then failed over) must
be caught with lost acks. Each run starts its own PostgreSQL and fanoutd."""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(tmp_path, *args):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, os.path.join(HERE, "run.py"), "--out", str(out), *args],
                          capture_output=True, text=True, timeout=600)
    print(proc.stdout[-3000:], proc.stderr[-3000:])
    report = json.load(open(out / "report.json")) if (out / "report.json").exists() else None
    return proc.returncode, report


def test_a_run_with_faults_loses_nothing(tmp_path):
    rc, report = run(tmp_path, "--duration", "40", "--faults", "kill,pause,pg-restart,pg-kill",
                     "--interval", "1.5", "--seed", "20261205")
    assert report is not None
    assert rc == 0, report["violations"][:10]
    assert sum(report["faults"].values()) >= 8, report["faults"]
    assert report["acknowledged"] > 500


def test_a_cluster_run_with_faults_loses_nothing(tmp_path):
    """Three nodes on a private etcd: a random node killed or paused past
    its lease, its peer link cut, etcd killed, the clients' path lossy for a
    while (netem: frames dropped, delayed, reordered, duplicated); clients
    move to another node."""
    rc, report = run(tmp_path, "--nodes", "3", "--duration", "30",
                     "--faults", "kill,pause,etcd-kill,partition,netem", "--interval", "2",
                     "--seed", "8")
    assert report is not None
    assert rc == 0, report["violations"][:10]
    assert sum(report["faults"].values()) >= 5, report["faults"]
    for kind in ("partition", "netem"):  # the seed's schedule has both
        assert report["faults"].get(kind, 0) >= 1, report["faults"]
    # the clients' frames really crossed the forwarder, and some were hit
    netem = report["netem"]
    assert netem["bursts"] >= 1 and netem["forwarded"] > 1000, netem
    assert netem["dropped"] > 0 and netem["reordered"] > 0 and netem["duplicated"] > 0, netem
    assert report["acknowledged"] > 300
    # channels changed owner, so rule 5 (no commit under an old epoch) judged
    # something
    assert report["owner_changes"] >= 1, report


def test_the_negative_control_is_caught(tmp_path):
    rc, report = run(tmp_path, "--duration", "12", "--faults", "pg-kill", "--interval", "2.5",
                     "--seed", "7", "--unsafe-async-commit")
    assert report is not None
    assert rc == 1
    assert report["violations_by_kind"]["lost ack"] > 0, report["violations_by_kind"]


def test_a_patroni_failover_loses_nothing(tmp_path):
    """fanoutd on a multi-host DSN over a Patroni pair (synchronous standby):
    the leader's whole member crashes under traffic, the standby is promoted,
    fanoutd follows it."""
    rc, report = run(tmp_path, "--patroni", "--duration", "45", "--faults", "pg-failover",
                     "--interval", "12", "--seed", "16")
    assert report is not None
    assert rc == 0, report["violations"][:10]
    assert report["faults"].get("pg-failover", 0) >= 1, report["faults"]
    assert report["acknowledged"] > 300


def test_a_patroni_switchover_is_only_a_retry(tmp_path):
    """`patronictl switchover` under traffic: nothing lost, and no client
    sees more than a retry: no publish refused, none left without an
    answer."""
    rc, report = run(tmp_path, "--patroni", "--duration", "40", "--faults", "pg-switchover",
                     "--interval", "10", "--seed", "18")
    assert report is not None
    assert rc == 0, report["violations"][:10]
    assert report["faults"].get("pg-switchover", 0) >= 2, report["faults"]
    assert report["operations"].get("fail", 0) == 0, report["operations"]
    assert report["unknown_outcome"] == {"stored": 0, "not_stored": 0}, report["unknown_outcome"]
    assert report["acknowledged"] > 300


def test_the_patroni_negative_control_is_caught(tmp_path):
    rc, report = run(tmp_path, "--patroni", "--unsafe-async-commit", "--duration", "30",
                     "--faults", "pg-failover", "--interval", "12", "--seed", "17")
    assert report is not None
    assert rc == 1
    assert report["violations_by_kind"]["lost ack"] > 0, report["violations_by_kind"]


def test_bad_arguments_are_refused(tmp_path):
    for args in (["--faults", "meteor"], ["--faults", "etcd-kill"], ["--faults", "partition"],
                 ["--nodes", "9"],
                 ["--faults", "pg-failover"], ["--faults", "pg-switchover"],
                 ["--patroni", "--faults", "pg-kill"], ["--netem", "loss=2"],
                 ["--netem", "jam=1"]):
        rc, report = run(tmp_path, *args)
        assert rc == 2 and report is None, args
