# SPDX-License-Identifier: BSD-3-Clause
"""The fault harness end to end: a short run with fanoutd killed and paused
and PostgreSQL restarted and killed must check clean, and so must a short
run of a three-node cluster with nodes and etcd killed; the negative control
(PostgreSQL acknowledging commits it has not written, then killed) must be
caught with lost acks. Each run starts its own PostgreSQL and fanoutd."""
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
    its lease, etcd killed; clients move to another node."""
    rc, report = run(tmp_path, "--nodes", "3", "--duration", "30",
                     "--faults", "kill,pause,etcd-kill", "--interval", "2", "--seed", "11")
    assert report is not None
    assert rc == 0, report["violations"][:10]
    assert sum(report["faults"].values()) >= 5, report["faults"]
    assert report["acknowledged"] > 300


def test_the_negative_control_is_caught(tmp_path):
    rc, report = run(tmp_path, "--duration", "12", "--faults", "pg-kill", "--interval", "2.5",
                     "--seed", "7", "--unsafe-async-commit")
    assert report is not None
    assert rc == 1
    assert report["violations_by_kind"]["lost ack"] > 0, report["violations_by_kind"]


def test_bad_arguments_are_refused(tmp_path):
    for args in (["--faults", "meteor"], ["--faults", "etcd-kill"], ["--nodes", "9"]):
        rc, report = run(tmp_path, *args)
        assert rc == 2 and report is None, args
