# SPDX-License-Identifier: BSD-3-Clause
"""A smoke run of every fanout-bench network scenario against a real server:
seconds, few connections. It checks that the tool works and that its JSON
result parses with the expected figures; it asserts nothing about speed."""
import json
import os
import re
import subprocess

import pytest

from conftest import SECRET, Server, sql


@pytest.fixture(scope="module")
def bench_server():
    s = Server(publish_rate=100000, publish_burst=100000)
    yield s
    assert s.stop() == 0


def bench(server, tmp_path, *args):
    out = tmp_path / "result.json"
    proc = subprocess.run([os.environ["FANOUT_BENCH"], *args, "--port", str(server.port),
                           "--json", str(out)],
                          env=dict(os.environ, FANOUT_JWT_SECRET=SECRET),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text()), proc.stdout


@pytest.mark.parametrize("kind", [[], ["--ephemeral"]])
def test_w1_hot_channel(bench_server, tmp_path, kind):
    r, out = bench(bench_server, tmp_path, "fanout", "--subscribers", "20", "--rate", "50",
                   "--seconds", "2", "--sources", "4", *kind)
    assert r["scenario"] == "W1" and r["subscribers"] == 20
    assert r["published"] >= 90 and r["deliveries"] > 0
    assert r["order"]["gaps"] == 0 and r["order"]["duplicates"] == 0
    assert set(r["latency_ms"]) == {"p50", "p90", "p99", "p999", "max"}
    assert "deliveries/s" in out


def test_w1_over_several_processes(bench_server, tmp_path):
    """--procs: the subscribers in three child processes; their counts and
    histograms merged into one result, every message to every subscriber."""
    r, out = bench(bench_server, tmp_path, "fanout", "--subscribers", "30", "--rate", "40",
                   "--seconds", "2", "--sources", "4", "--procs", "3")
    assert r["subscribers"] == 30 and r["published"] >= 70
    assert r["deliveries"] == r["published"] * 30, r
    assert r["order"]["gaps"] == 0 and r["order"]["undelivered"] == 0
    assert r["latency_ms"]["max"] > 0


@pytest.mark.parametrize("kind", ["durable", "ephemeral"])
def test_w2_many_small_channels(bench_server, tmp_path, kind):
    extra = ["--ephemeral"] if kind == "ephemeral" else []
    stored = int(sql("SELECT count(*) FROM messages")[0][0])
    r, out = bench(bench_server, tmp_path, "groups", "--users", "20", "--rate", "40",
                   "--seconds", "2", *extra)
    assert r["scenario"] == "W2" and r["channel_kind"] == kind and r["published"] >= 70
    # Rounds of 20 publishers alternate group (ten members, the sender too) and DM (two).
    assert r["expected"] == sum(2 if (k // 20) % 2 else 10 for k in range(r["published"]))
    assert r["deliveries"] == r["expected"] and r["order"]["gaps"] == 0
    # Durable: every message stored (and any other test's meanwhile); ephemeral: the
    # pairs are ephemeral channels, not DMs, and nothing of this run is stored.
    added = int(sql("SELECT count(*) FROM messages")[0][0]) - stored
    if kind == "durable":
        assert added >= r["published"] and "DMs" in out
    else:
        assert added == 0 and "ephemeral pairs" in out


def test_w7_idle_connections(bench_server, tmp_path):
    r, _ = bench(bench_server, tmp_path, "capacity", "--connections", "50", "--hold", "1",
                 "--sources", "3")
    assert r["scenario"] == "W7" and r["ready"] == 50 and r["closed"] == 0
    assert r["server_open"] >= 50


def test_w6_persistence_sweep(tmp_path):
    out = tmp_path / "w6.json"
    proc = subprocess.run([os.environ["FANOUT_BENCH"], "persist", "--dsn", os.environ["FANOUT_TEST_PG_DSN"],
                           "--messages", "300", "--channels", "4", "--producers", "2", "--sweep",
                           "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads(out.read_text())
    assert r["scenario"] == "W6" and len(r["runs"]) == 12
    assert {(x["batch_max"], x["batch_window_us"]) for x in r["runs"]} >= {(1, 0), (4096, 2000)}
    assert all(x["failed"] == 0 and x["durable_per_s"] > 0 for x in r["runs"])


def test_persist_prints_its_stages_and_its_copy_ceiling(tmp_path):
    """The writer benchmark splits its offered-load run into the writer's
    stages, measures the COPY ceiling in the same run, leaving no scratch
    table behind, and says what PostgreSQL's backends spent by role; with
    --json it writes the figures it printed."""
    out_json = tmp_path / "persist.json"
    proc = subprocess.run([os.environ["FANOUT_BENCH"], "persist", "--dsn",
                           os.environ["FANOUT_TEST_PG_DSN"], "--messages", "2000",
                           "--naive-messages", "50", "--channels", "4", "--producers", "2",
                           "--rate", "400", "--json", str(out_json)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for stage in ("queue (submit to batch)", "batch transaction", "submit to durable",
                  "settled to callback done"):
        line = next((x for x in out.splitlines() if x.strip().startswith(stage)), None)
        assert line, (stage, out)
        p50, p99 = (float(v) for v in line.split()[-2:])
        assert 0 < p50 <= p99, line
    m = re.search(r"batches (\d+); WAL: (\d+) records", out)
    assert m and int(m.group(1)) >= 1 and int(m.group(2)) >= 2000, out
    m = re.search(r"ceiling: one COPY of 2000 such rows .*: (\d+) rows/s durable; "
                  r"the writer \(batched, saturated\) at ([0-9.]+) of it", out)
    assert m and int(m.group(1)) > 0 and float(m.group(2)) > 0, out
    assert sql("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'bench_copy_ceiling_%'") \
        == [["0"]]
    # What PostgreSQL's backends spent, by the names fanout gives them (the
    # test's PostgreSQL runs on this host): each run's writer and indexer.
    lines = re.findall(r"PostgreSQL backends, cores busy over the run: (.*)", out)
    assert len(lines) == 2, out
    for line in lines:
        roles = dict(re.findall(r"(fanout [a-z ]+?) ([0-9.]+) \(\d+ backends?\)", line))
        assert set(roles) == {"fanout writer", "fanout search indexer"}, line
    # and how long they waited for a CPU (the kernel's run delay), by role
    lines = re.findall(r"PostgreSQL backends, cores waiting for a CPU over the run: (.*)", out)
    assert len(lines) == 2, out
    for line in lines:
        roles = dict(re.findall(r"(fanout [a-z ]+?) ([0-9.]+)(?:,|$)", line))
        assert set(roles) == {"fanout writer", "fanout search indexer"}, line
    assert re.search(r"the COPY's backend was busy [0-9.]+ of a core over it", out), out
    # The JSON holds the same figures as the lines above.
    r = json.loads(out_json.read_text())
    assert r["scenario"] == "persist"
    assert [x["run"] for x in r["runs"]] == ["batched, saturated", "batched, 400/s offered"]
    for run in r["runs"]:
        line = next(x for x in out.splitlines() if x.startswith(run["run"] + " "))
        messages, rate, p50, p99, p999, failed = line[len(run["run"]):].split()
        assert run["failed"] == int(failed) == 0, line
        assert f'{run["durable_per_s"]:.0f}' == rate and f'{run["p99_ms"]:.2f}' == p99, (run, line)
    ceiling, fraction = re.search(r"ceiling: .*: (\d+) rows/s durable; .* at ([0-9.]+) of it",
                                  out).groups()
    assert f'{r["ceiling_rows_per_s"]:.0f}' == ceiling, (r, ceiling)
    assert f'{r["writer_of_ceiling"]:.2f}' == fraction, (r, fraction)
    assert r["naive_per_s"] > 0 and r["copy_backend_cores"] >= 0


def test_w5_slow_consumers(bench_server, tmp_path):
    r, out = bench(bench_server, tmp_path, "fanout", "--subscribers", "20", "--rate", "50",
                   "--seconds", "2", "--slow", "25")
    assert r["scenario"] == "W5" and r["order"]["gaps"] == 0
    assert "slow subscribers (25%" in out


def test_nats_side_by_side_scenario(tmp_path):
    """The NATS adapter against a real nats-server (Debian's) on loopback."""
    import shutil, socket, time
    assert shutil.which("nats-server"), "nats-server is installed by deploy/bootstrap"
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        port, client_port = a.getsockname()[1], b.getsockname()[1]
    conf = tmp_path / "nats.conf"
    conf.write_text(f'listen: 127.0.0.1:{client_port}\nwebsocket {{\n  listen: "127.0.0.1:{port}"\n  no_tls: true\n}}\n')
    log = open(tmp_path / "nats.log", "w")
    nats = subprocess.Popen(["nats-server", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            if "Server is ready" in (tmp_path / "nats.log").read_text():
                break
            time.sleep(0.1)
        else:
            raise AssertionError("nats-server did not start: " + (tmp_path / "nats.log").read_text())
        out = tmp_path / "nats.json"
        proc = subprocess.run([os.environ["FANOUT_BENCH"], "nats", "--port", str(port), "--subscribers", "10",
                               "--rate", "50", "--seconds", "2", "--json", str(out)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        r = json.loads(out.read_text())
        assert r["system"] == "nats" and r["published"] >= 90
        assert r["deliveries"] == r["published"] * 10 and r["order"]["gaps"] == 0
        # W2 on NATS: rounds of 20 publishers alternate group (10 members) and DM (2).
        out = tmp_path / "nats-groups.json"
        proc = subprocess.run([os.environ["FANOUT_BENCH"], "nats-groups", "--port", str(port), "--users", "20",
                               "--rate", "40", "--seconds", "2", "--sources", "4", "--json", str(out)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        r = json.loads(out.read_text())
        assert r["scenario"] == "W2" and r["system"] == "nats" and r["published"] >= 70
        assert r["expected"] == sum(2 if (k // 20) % 2 else 10 for k in range(r["published"]))
        assert r["deliveries"] == r["expected"] and r["order"]["gaps"] == 0
        assert r["order"]["duplicates"] == 0 and r["order"]["reordered"] == 0
    finally:
        nats.terminate()
        nats.wait(timeout=10)


def test_dpdk_null_send_path(tmp_path):
    """The DPDK edge's send path into net_null, each payload each way (frames
    by reference from the heap, from DPDK memory, copied): the tool runs and
    its JSON holds every delivery it made, sent the way it says (no timing is
    checked), and a connection's TCP state and edge slot fit 304 bytes (with
    a 192-byte session and a user's set of one channel, the 512 bytes per
    idle connection of docs/benchmarks.md)."""
    out = tmp_path / "dpdk-null.json"
    proc = subprocess.run([os.environ["FANOUT_BENCH"], "dpdk-null", "--connections", "50",
                           "--messages", "40", "--payload", "64", "--payload", "1024",
                           "--copy-below", "0", "--json", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads(out.read_text())
    assert r["scenario"] == "dpdk-null" and r["copy_below"] == 0
    assert 0 < r["conn_slot_bytes"] <= 304, r["conn_slot_bytes"]
    assert [(x["payload"], x["zero_copy"]) for x in r["runs"]] == [
        (p, m) for p in (64, 1024) for m in ("all", "pooled", "off")]
    assert all(x["deliveries"] == 50 * 40 and x["tx_dropped"] == 0 for x in r["runs"])
    for x in r["runs"]:
        payload_bytes = x["deliveries"] * x["payload"]
        if x["zero_copy"] == "off":
            assert x["bytes_by_reference"] == 0 and x["bytes_copied"] >= payload_bytes
        else:
            assert x["bytes_by_reference"] >= payload_bytes, x
    assert "10GbE ceiling" in proc.stdout


def wake(tmp_path, *args):
    out = tmp_path / "wake.json"
    proc = subprocess.run([os.environ["FANOUT_BENCH"], "wake", *args, "--json", str(out)],
                          capture_output=True, text=True, timeout=60)
    return proc, (json.loads(out.read_text()) if proc.returncode == 0 else None)


def test_wake_measures_real_sleeps(tmp_path):
    """fanout-bench wake sleeps for real and reports how late it woke: one
    second of 1 ms sleeps is at most a thousand wake-ups (and, on any host
    that runs this suite, more than fifty), one of 300 ms sleeps at most
    three; the quantiles are ordered and what it prints is what it wrote."""
    proc, r = wake(tmp_path, "--seconds", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert r["scenario"] == "wake" and r["interval_us"] == 1000
    assert 50 < r["wakeups"] <= 1000, r
    late = r["late_ms"]
    assert 0 <= late["p50"] <= late["p99"] <= late["p999"] <= late["max"], late
    assert f"wake-ups {r['wakeups']} in 1.0 s" in proc.stdout
    assert f"worst {late['max']:.3f} ms" in proc.stdout
    proc, r = wake(tmp_path, "--seconds", "1", "--interval-us", "300000")
    assert proc.returncode == 0 and 1 <= r["wakeups"] <= 3, r


@pytest.mark.parametrize("args", [["--interval-us", "0"], ["--seconds", "0"],
                                  ["--seconds", "x"], ["--what"], ["extra"]])
def test_wake_refuses_bad_arguments(tmp_path, args):
    proc, _ = wake(tmp_path, *args)
    assert proc.returncode == 2, proc.stderr
    assert "usage" in proc.stderr or "must be" in proc.stderr, proc.stderr
    assert not (tmp_path / "wake.json").exists()


def test_search_scale_smoke(tmp_path):
    """bench/search-scale on a small table: it loads, builds the index,
    times every query through fanoutd and writes its JSON."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([os.path.join(root, "bench", "search-scale"), "--messages", "20000",
                           "--repeat", "3", "--out", str(tmp_path)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads((tmp_path / "search.json").read_text())
    assert r["messages"] == 20000 and 0 < r["readable"] < 20000
    assert len(r["queries"]) == 6
    assert all(q["p50_ms"] > 0 and q["p99_ms"] >= q["p50_ms"] for q in r["queries"].values())
    assert r["queries"]["a common word"]["hits"] == 20  # the words are really found
