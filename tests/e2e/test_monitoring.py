# SPDX-License-Identifier: BSD-3-Clause
"""The shipped alert rules and Grafana dashboard (deploy/monitoring/) in a
real Prometheus scraping a real node: the node is up as a target, every
rule evaluates without error, every dashboard query is valid PromQL that
Prometheus answers, and every metric they name is one a node exports (the
DPDK edge's and the cluster's, absent from a socket node alone, are checked
against docs/operations.md's table). promtool's unit tests of each rule's
firing are tests/monitoring/alerts_test.yml."""
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from conftest import Server, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(ROOT, "deploy", "monitoring", "fanout-alerts.yml")
DASHBOARD = os.path.join(ROOT, "deploy", "monitoring", "fanout-dashboard.json")
MODE_ONLY = ("fanout_dpdk_", "fanout_cluster_", "fanout_peer_")


def get(url):
    return json.loads(urllib.request.urlopen(url, timeout=5).read())


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    node = Server()
    d = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    (d / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {RULES}\n"
        "scrape_configs:\n  - job_name: fanout\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{node.port}']\n")
    log = open(d / "prometheus.log", "w")
    proc = subprocess.Popen([shutil.which("prometheus"), f"--config.file={d / 'prometheus.yml'}",
                             f"--storage.tsdb.path={d / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            assert proc.poll() is None, open(d / "prometheus.log").read()[-2000:]
            try:
                targets = get(url + "/api/v1/targets")["data"]["activeTargets"]
                if targets and targets[0]["health"] == "up":
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("the node never came up as a target: " +
                                 open(d / "prometheus.log").read()[-2000:])
        yield url, node
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        assert node.stop() == 0


def names_in(expr):
    """The fanout metric names an expression reads (a histogram's series
    name the histogram)."""
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in re.findall(r"fanout_[a-z0-9_]+", expr)}


def exported(url):
    text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def documented():
    text = open(os.path.join(ROOT, "docs", "operations.md")).read()
    return {"fanout_" + n for n in re.findall(r"^\| ([a-z0-9_]+)", text, re.M)} | \
        {"fanout_" + n for n in re.findall(r", ([a-z0-9_]+)(?:\{[^}]*\})? \|", text)}


def unknown(names, live, docs):
    return sorted(n for n in names
                  if n not in live and not (n.startswith(MODE_ONLY) and n in docs))


def rule_exprs():
    text = open(RULES).read()
    return re.findall(r"^\s+expr: (.+)$", text, re.M)


def dashboard_exprs():
    d = json.load(open(DASHBOARD))
    return [t["expr"] for p in d["panels"] for t in p["targets"]]


def test_every_rule_evaluates(prom):
    url, _ = prom
    deadline = time.time() + 30
    while time.time() < deadline:
        groups = get(url + "/api/v1/rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        if rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules):
            break
        time.sleep(0.5)
    assert len(rules) == len(rule_exprs()) == 15
    bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not bad, bad
    # a healthy node with its PostgreSQL raises nothing
    firing = [r["name"] for r in rules if r["state"] == "firing"]
    assert not firing, firing


def test_every_dashboard_query_is_answered(prom):
    url, _ = prom
    exprs = dashboard_exprs()
    assert len(exprs) >= 20
    for expr in exprs:
        q = urllib.parse.quote(expr.replace("$instance", ".*"))
        r = get(f"{url}/api/v1/query?query={q}")
        assert r["status"] == "success", (expr, r)
    q = urllib.parse.quote('fanout_connections{instance=~".*"}')
    assert get(f"{url}/api/v1/query?query={q}")["data"]["result"], "no node data in Prometheus"


def test_every_metric_named_exists(prom):
    _, node = prom
    live, docs = exported(node.url), documented()
    assert "fanout_persist_commit_seconds" in live and "fanout_dpdk_worker_load" in docs
    named = set().union(*(names_in(e) for e in rule_exprs() + dashboard_exprs()))
    assert len(named) > 20
    assert unknown(named, live, docs) == []
    # the check catches a name nobody exports (a typo in a rule)
    assert unknown({"fanout_persist_comit_seconds", "fanout_dpdk_nothing"}, live, docs) == \
        ["fanout_dpdk_nothing", "fanout_persist_comit_seconds"]
