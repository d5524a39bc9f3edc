# SPDX-License-Identifier: BSD-3-Clause
"""The DPDK edge end to end: fanoutd drives one end of a veth pair through
DPDK's af_packet driver with our userspace TCP; Linux kernel clients
(python3-websockets in dpdk_client.py) connect from a network namespace at
the far end. Between them, in a namespace of its own, a forwarder
(impair.py) bridges the two veth pairs; for the impairment test it drops,
delays, reorders and duplicates frames both ways (this kernel has no
sch_netem, so tc netem cannot: see docs/dataplane.md), and every acknowledged
message must still arrive, once after dedup by seq, in order. Needs root
(namespaces, veths, raw sockets); deploy/test runs as root. Everything made
here is torn down, also on failure.

    clients [NS: veth b] -- [MID: veth n, impair.py, veth m] -- [veth a: DPDK]"""
import json
import os
import signal
import subprocess
import time

import pytest

import dpdk_rig
import rfc6455
from conftest import Server, token, unique
from dpdk_rig import channel_for, quiet, sh

HERE = os.path.dirname(os.path.abspath(__file__))
SUFFIX = os.getpid() % 100000
NS, MID = f"fo-dp{SUFFIX}", f"fo-mid{SUFFIX}"
VETH_EDGE, VETH_MID_EDGE = f"fod{SUFFIX}a", f"fod{SUFFIX}m"
VETH_CLIENT, VETH_MID_CLIENT = f"fod{SUFFIX}b", f"fod{SUFFIX}n"
EDGE_IP, CLIENT_IP, WS_PORT = "10.231.0.1", "10.231.0.2", 8081


def in_ns(*cmd, check=True, ns=NS):
    return dpdk_rig.in_ns(ns, *cmd, check=check)


class Forwarder:
    def __init__(self, tmp, **impair):
        self.stats = os.path.join(tmp, f"impair-{time.monotonic_ns()}.json")
        args = [a for k, v in impair.items() for a in (f"--{k}", str(v))]
        self.proc = subprocess.Popen(["ip", "netns", "exec", MID, "/usr/bin/python3",
                                      os.path.join(HERE, "impair.py"), VETH_MID_EDGE,
                                      VETH_MID_CLIENT, "--stats", self.stats, *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.3)
        assert self.proc.poll() is None, self.proc.stderr.read().decode()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        with open(self.stats) as f:
            return json.load(f)


@pytest.fixture(scope="module")
def netns(tmp_path_factory):
    assert os.geteuid() == 0, "the DPDK edge tests make namespaces and veths: run as root"

    def teardown():
        sh("ip", "link", "del", VETH_EDGE, check=False)
        sh("ip", "netns", "del", NS, check=False)
        sh("ip", "netns", "del", MID, check=False)

    teardown()
    try:
        sh("ip", "netns", "add", NS)
        sh("ip", "netns", "add", MID)
        sh("ip", "link", "add", VETH_EDGE, "type", "veth", "peer", "name", VETH_MID_EDGE)
        sh("ip", "link", "set", VETH_MID_EDGE, "netns", MID)
        sh("ip", "link", "add", VETH_CLIENT, "type", "veth", "peer", "name", VETH_MID_CLIENT)
        sh("ip", "link", "set", VETH_CLIENT, "netns", NS)
        sh("ip", "link", "set", VETH_MID_CLIENT, "netns", MID)
        sh("ip", "link", "set", VETH_EDGE, "up")
        quiet(VETH_EDGE)
        for dev in (VETH_MID_EDGE, VETH_MID_CLIENT):
            in_ns("ip", "link", "set", dev, "up", "promisc", "on", ns=MID)
            quiet(dev, ns=MID)
        in_ns("ip", "addr", "add", f"{CLIENT_IP}/24", "dev", VETH_CLIENT)
        in_ns("ip", "link", "set", VETH_CLIENT, "up")
        in_ns("ip", "link", "set", "lo", "up")
        quiet(VETH_CLIENT, ns=NS)
        tmp = str(tmp_path_factory.mktemp("dpdk"))
        state = {"tmp": tmp, "forwarder": Forwarder(tmp)}
        try:
            yield state
        finally:
            state["forwarder"].stop()
    finally:
        teardown()


@pytest.fixture(scope="module")
def edge(netns):
    extra = ("[dataplane]\nmode = dpdk\nworkers = 1\nidle_sleep_us = 100\n"
             f"eal_args = --no-huge --no-pci --no-shconf -m 512 "
             f"--vdev=net_af_packet{SUFFIX},iface={VETH_EDGE},qdisc_bypass=0,framecnt=4096\n"
             f"port = net_af_packet{SUFFIX}\naddress = {EDGE_IP}/24\nlisten_port = {WS_PORT}\n"
             "max_connections = 1024\nupgrade_slots = 256\n")
    # publishes as fast as the test sends them (the default allows 50/s); a
    # heartbeat longer than the slowest run under impairment
    extra += "[auth]\nadmins = ops\n"
    srv = Server(extra_ini=extra, service_threads=1, publish_rate=100000, publish_burst=100000,
                 heartbeat_ms=120000)
    try:
        deadline = time.time() + 20
        while time.time() < deadline:  # the socket edge is ready; the DPDK edge?
            r = client("http", "--host", EDGE_IP, "--port", str(WS_PORT), "--path", "/", check=False)
            if r.returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the DPDK edge does not answer: " + open(srv.log.name).read()[-3000:])
        yield srv
    finally:
        assert srv.stop() == 0, open(srv.log.name).read()[-3000:]


def client(*args, **kw):
    return dpdk_rig.client(NS, *args, **kw)


def result(*args, **kw):
    return dpdk_rig.result(NS, *args, **kw)


def ws_url(user):
    return f"ws://{EDGE_IP}:{WS_PORT}/ws?token={token(user)}"


def test_refusals_before_the_upgrade(edge):
    """The same answers as the socket edge, over our TCP: 426 without an
    upgrade, 404 elsewhere than /ws, 401 without a token or with a bad one."""
    r = result("http", "--host", EDGE_IP, "--port", str(WS_PORT), "--path", "/ws")
    assert r["status"] == 426 and "upgrade_required" in r["body"]
    r = result("http", "--host", EDGE_IP, "--port", str(WS_PORT), "--path", "/nope", "--upgrade")
    assert r["status"] == 404 and "not_found" in r["body"]
    r = result("http", "--host", EDGE_IP, "--port", str(WS_PORT), "--path", "/ws", "--upgrade")
    assert r["status"] == 401 and "missing_token" in r["body"]
    r = result("http", "--host", EDGE_IP, "--port", str(WS_PORT), "--upgrade",
               "--path", "/ws?token=" + token("x", secret="wrong"))
    assert r["status"] == 401 and "bad_token" in r["body"]


def test_binary_frame_closes_1003(edge):
    r = result("frames", "--url-sub", ws_url(unique("bin")))
    assert r["close_code"] == 1003


def test_a_burst_of_upgrades_beyond_the_handshake_slots(edge):
    """600 connections at once, more than the lcore's 256 upgrade slots:
    the rest wait, holding their requests, and are served as slots free;
    none is refused, and no request had to be sent again."""
    drops = edge.metric("fanout_dpdk_tcp_window_drops_total")
    r = result("burst", "--url-sub", ws_url(unique("burst")), "--count", "600", timeout=300)
    assert r["connected"] == 600, r
    assert edge.metric("fanout_dpdk_upgrades_waited_total") > 0  # the slots did run out
    assert edge.metric("fanout_dpdk_tcp_window_drops_total") == drops


def test_waiters_that_leave_do_not_cut_the_queue(edge):
    """256 connections hold every upgrade slot with half a request; 40 more
    wait with whole ones; 20 of those reset their connections and 20 new
    ones take the connection state they gave back. When the holders leave,
    every waiter still there gets its 101. (A waiter that left used to stay
    on the queue until its turn, and cut the queue behind it when its state
    was taken again and queued anew.)"""
    path = "/ws?token=" + token(unique("wait"))
    r = result("waiters", "--host", EDGE_IP, "--port", str(WS_PORT), "--path", path,
               "--holders", "256", "--count", "40", "--timeout", "10", timeout=600)
    assert r["waiting"] == 40
    assert all(s.startswith("HTTP/1.1 101") for s in r["statuses"]), r["statuses"]


def test_publish_subscribe_and_resume(edge):
    """Two DPDK clients in a channel; then one resumes from a seq after
    messages published over the socket edge (the same sessions and
    channels, either edge)."""
    alice, bob = unique("a"), unique("b")
    chan = channel_for(edge, alice, bob)
    r = result("pubsub", "--url-pub", ws_url(alice), "--url-sub", ws_url(bob), "--channel", str(chan),
               "--count", "50", "--tag", "steady")
    assert len(r["acks"]) == 50 and -1 not in r["acks"]
    assert r["received"] == sorted(r["acks"]), r  # all, once, in order
    last = r["received"][-1]
    for i in range(20):  # over the socket edge, from outside the namespace
        status, body = edge.http("POST", f"/api/v1/channels/{chan}/messages",
                                 {"text": f"from the socket edge {i}"}, user=alice,
                                 headers={"Idempotency-Key": f"k{i}-{chan}"})
        assert status == 201, body
    r = result("resume", "--url-sub", ws_url(bob), "--channel", str(chan), "--since", str(last),
               "--count", "20")
    assert r["received"] == list(range(last + 1, last + 21))


def test_a_mention_over_the_dpdk_edge(edge):
    """@here over our TCP: the member gets the mention frame, and a second
    @here within the interval is refused as on the socket edge (the DPDK
    worker's publishes are checked on the hand-off's control thread)."""
    alice, bob = unique("a"), unique("b")
    chan = channel_for(edge, alice, bob)
    r = result("mention", "--url-pub", ws_url(alice), "--url-sub", ws_url(bob), "--channel",
               str(chan), "--tag", "men")
    assert r["answers"] == ["ack", "mention_limited"], r
    assert r["mentions"] == [["here", "@here men first"]], r


def test_the_operator_sees_and_closes_a_dpdk_connection(edge):
    """The operator's API lists a connection of the DPDK edge with the
    client's address as our TCP saw it, closes it with 4002, and reports
    each lcore's load."""
    user = unique("op")
    chan = channel_for(edge, user)
    holder = subprocess.Popen(["ip", "netns", "exec", NS, "/usr/bin/python3",
                               os.path.join(HERE, "dpdk_client.py"), "resume", "--url-sub",
                               ws_url(user), "--channel", str(chan), "--since", "0", "--count", "1",
                               "--timeout", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        mine, deadline = [], time.time() + 20
        while not mine and time.time() < deadline:
            status, body = edge.http("GET", f"/api/v1/admin/connections?user={user}", user="ops")
            assert status == 200, body
            mine = [c for c in body["connections"] if c["subscriptions"] == 1]
            time.sleep(0.1)
        assert mine and mine[0]["peer"].startswith(CLIENT_IP + ":"), body
        assert mine[0]["worker"] >= 1  # after the socket edge's one service thread
        status, body = edge.http("DELETE", f"/api/v1/admin/connections/{mine[0]['id']}",
                                 user="ops")
        assert status == 200 and body["code"] == 4002, body
        out, err = holder.communicate(timeout=30)
        assert "4002" in err, (out, err)  # the client saw the operator's close
    finally:
        if holder.poll() is None:
            holder.kill()
    deadline = time.time() + 5  # the lcore sums its busy time once a second
    while time.time() < deadline:
        status, body = edge.http("GET", "/api/v1/admin/status", user="ops")
        if body["metrics"]["fanout_dpdk_worker_busy_seconds_total"][0] > 0:
            break
        time.sleep(0.2)
    assert body["metrics"]["fanout_dpdk_worker_busy_seconds_total"][0] > 0, body["metrics"]
    load = body["metrics"]["fanout_dpdk_worker_load"]
    assert len(load) == 1 and 0 <= load[0] <= 1


def telemetry(edge, *commands):
    """fanoutd's answers on DPDK's telemetry socket, read with DPDK's own
    dpdk-telemetry.py: one JSON object per command."""
    r = subprocess.run(["/usr/bin/dpdk-telemetry.py", "-f", f"fanout-{edge.proc.pid}"],
                       input="".join(c + "\n" for c in commands), capture_output=True, text=True,
                       timeout=30)
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(commands), r.stdout + r.stderr
    return [line[c] for line, c in zip(lines, commands)]


def test_telemetry_commands_beside_dpdks_own(edge):
    """/fanout/lcores, /fanout/connections and /fanout/tcp answer valid JSON
    on the same socket as DPDK's /ethdev commands, with the figures
    /metrics shows."""
    alice, bob = unique("a"), unique("b")
    chan = channel_for(edge, alice, bob)
    r = result("pubsub", "--url-pub", ws_url(alice), "--url-sub", ws_url(bob), "--channel",
               str(chan), "--count", "20", "--tag", "tele")
    assert len(r["received"]) == 20
    names = {"retransmits": "fanout_dpdk_tcp_retransmits_total",
             "window_drops": "fanout_dpdk_tcp_window_drops_total"}
    before = {k: edge.metric(m) for k, m in names.items()}
    lcores, conns, tcp, ports = telemetry(edge, "/fanout/lcores", "/fanout/connections",
                                          "/fanout/tcp", "/ethdev/list")
    after = {k: edge.metric(m) for k, m in names.items()}
    assert ports == [0]
    assert set(lcores) == {"0"} and lcores["0"]["rx_packets"] > 0, lcores
    assert 0 <= lcores["0"]["load_permille"] <= 1000
    assert conns["accepted"] >= 2 and conns["max_per_lcore"] == 1024, conns
    assert tcp["segs_in"] > 0 and tcp["segs_out"] > 0, tcp
    # the counters /metrics reads: between a read before and one after
    for k in before:
        assert before[k] <= tcp[k] <= after[k], (k, before, tcp, after)


def test_every_message_once_in_order_under_impairment(edge, netns):
    """5% loss, 5% reordering, 2% duplication and 4 +- 1 ms of delay, both
    directions: TCP's retransmission, fast retransmit, SACK, segments held
    ahead of a hole and duplicate handling all run, and the application sees
    every acked message once (after dedup by seq) and in order."""
    alice, bob = unique("a"), unique("b")
    chan = channel_for(edge, alice, bob)
    netns["forwarder"].stop()
    impaired = Forwarder(netns["tmp"], loss=0.05, delay=4, jitter=1, reorder=0.05, duplicate=0.02,
                         seed=7)
    try:
        r = result("pubsub", "--url-pub", ws_url(alice), "--url-sub", ws_url(bob), "--channel",
                   str(chan), "--count", "200", "--size", "300", "--tag", "impaired",
                   "--timeout", "100", timeout=200)
    finally:
        stats = impaired.stop()
        netns["forwarder"] = Forwarder(netns["tmp"])
    assert stats["dropped"] > 10 and stats["duplicated"] > 2 and stats["reordered"] > 10, stats
    assert len(r["acks"]) == 200 and -1 not in r["acks"], r["acks"][-5:]
    received = r["received"]
    assert received == sorted(received), "out of order"
    assert sorted(set(received)) == sorted(r["acks"]), (len(set(received)), len(r["acks"]))
    # TCP had to recover from the losses: the port sent segments again
    assert edge.metric("fanout_dpdk_tcp_retransmits_total") > 0
    # and held the clients' segments that overtook others until the holes filled
    assert edge.metric("fanout_dpdk_tcp_out_of_order_held_total") > 0
    # and the network layer answered the clients' ARP
    assert edge.metric("fanout_dpdk_arp_answered_total") > 0


def conformance(host, port, namespace):
    cmd = ["/usr/bin/python3", os.path.join(HERE, "rfc6455.py"), host, str(port),
           token(unique("rfc"))]
    if namespace:
        cmd = ["ip", "netns", "exec", NS] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def summary(edge_name, sections):
    lines = [f"RFC 6455 conformance, {edge_name} (section: passed / lenient / failed):"]
    for name, s in sorted(sections.items(), key=lambda kv: int(kv[0])):
        lines.append(f"  {name:>2}: {s['passed']} / {s['lenient']} / {s['failed']}")
        lines += [f"      lenient: {c}" for c in s["lenient_cases"]]
        lines += [f"      FAILED: {c}" for c in s["failures"]]
    return "\n".join(lines)


def test_rfc6455_conformance_dpdk_edge(edge, capsys):
    """Every case of every section, strictly: the DPDK edge's own parser
    fails each violation with the close code RFC 6455 names."""
    sections = conformance(EDGE_IP, WS_PORT, namespace=True)
    with capsys.disabled():
        print("\n" + summary("DPDK edge", sections))
    assert set(sections) == {"1", "2", "3", "4", "5", "6", "7", "9", "10"}
    assert sum(s["passed"] for s in sections.values()) == len(rfc6455.CASES)
    assert all(s["failed"] == 0 and s["lenient"] == 0 for s in sections.values()), \
        summary("DPDK edge", sections)


def test_rfc6455_conformance_socket_edge(edge, capsys):
    """The same suite against the socket edge of the same fanoutd, as
    strictly: both edges run the same decoder (common/ws.c)."""
    sections = conformance("127.0.0.1", edge.port, namespace=False)
    with capsys.disabled():
        print("\n" + summary("socket edge", sections))
    assert sum(s["passed"] for s in sections.values()) == len(rfc6455.CASES)
    assert all(s["failed"] == 0 and s["lenient"] == 0 for s in sections.values()), \
        summary("socket edge", sections)
