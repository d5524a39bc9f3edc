# SPDX-License-Identifier: BSD-3-Clause
"""How the DPDK edge hands frames to its port, end to end: fanoutd on one end
of a veth pair (DPDK's af_packet driver), Linux kernel clients in a network
namespace at the other. The af_packet driver copies from virtual addresses,
so `auto` chains every frame by reference from wherever it is; these tests
run the other ways by configuration: `pooled`, what a PCI NIC gets (frames in
DPDK memory chained by reference, frames on the heap copied, in the same
segments), and `off` (everything copied). Messages of every size, from a few
bytes to more than the largest pool class, fanned out to three subscribers:
every subscriber gets every text exactly, once, in order. Needs root.

    clients [NS: veth b] -- [veth a: DPDK]"""
import os
import time

import pytest

from conftest import Server, token, unique
from dpdk_rig import channel_for, client, in_ns, quiet, result, sh

SUFFIX = os.getpid() % 100000
NS = f"fo-sd{SUFFIX}"
VETH_EDGE, VETH_CLIENT = f"fos{SUFFIX}a", f"fos{SUFFIX}b"
EDGE_IP, CLIENT_IP, WS_PORT = "10.232.0.1", "10.232.0.2", 8082
# a few bytes, under and over copy_below, about one MSS, several segments,
# and 70,000 characters: larger than the largest frame class (64 KiB)
SIZES = "5,200,700,1400,1500,3000,9000,40000,70000,100"


@pytest.fixture(scope="module")
def link():
    assert os.geteuid() == 0, "the DPDK edge tests make namespaces and veths: run as root"

    def teardown():
        sh("ip", "link", "del", VETH_EDGE, check=False)
        sh("ip", "netns", "del", NS, check=False)

    teardown()
    try:
        sh("ip", "netns", "add", NS)
        sh("ip", "link", "add", VETH_EDGE, "type", "veth", "peer", "name", VETH_CLIENT)
        sh("ip", "link", "set", VETH_CLIENT, "netns", NS)
        sh("ip", "link", "set", VETH_EDGE, "up")
        quiet(VETH_EDGE)
        in_ns(NS, "ip", "addr", "add", f"{CLIENT_IP}/24", "dev", VETH_CLIENT)
        in_ns(NS, "ip", "link", "set", VETH_CLIENT, "up")
        in_ns(NS, "ip", "link", "set", "lo", "up")
        quiet(VETH_CLIENT, ns=NS)
        yield
    finally:
        teardown()


def dataplane_ini(**keys):
    keys = {"mode": "dpdk", "workers": 1, "idle_sleep_us": 100,
            "eal_args": "--no-huge --no-pci --no-shconf -m 512 "
                        f"--vdev=net_af_packet{SUFFIX},iface={VETH_EDGE},qdisc_bypass=0,framecnt=4096",
            "port": f"net_af_packet{SUFFIX}", "address": f"{EDGE_IP}/24",
            "listen_port": WS_PORT, "max_connections": 256, "upgrade_slots": 64, **keys}
    return "[dataplane]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())


def start(**keys):
    """fanoutd with the DPDK edge; ready (/readyz) only once the edge is up,
    so the edge answers the first request."""
    srv = Server(extra_ini=dataplane_ini(**keys), service_threads=1, publish_rate=100000,
                 publish_burst=100000, max_text_bytes=100000, max_message_bytes=262144)
    r = client(NS, "http", "--host", EDGE_IP, "--port", str(WS_PORT), "--path", "/", check=False)
    if r.returncode != 0:
        srv.stop()
        raise AssertionError("ready, but the DPDK edge does not answer: " + r.stderr[-500:] +
                             open(srv.log.name).read()[-3000:])
    return srv


@pytest.mark.parametrize("zero_copy,copy_below", [("pooled", 0), ("pooled", 512), ("off", 512)])
def test_every_byte_of_every_size_arrives(link, zero_copy, copy_below):
    srv = start(zero_copy=zero_copy, copy_below=copy_below)
    try:
        alice, bob = unique("a"), unique("b")
        chan = channel_for(srv, alice, bob)
        count = 40
        r = result(NS, "texts", "--url-pub", ws(alice), "--url-sub", ws(bob), "--subscribers", "3",
                   "--channel", str(chan), "--count", str(count), "--sizes", SIZES,
                   "--tag", zero_copy, "--timeout", "20", timeout=90)
        assert len(r["acks"]) == count and -1 not in r["acks"], r["acks"]
        for got in r["received"]:
            assert got == sorted(r["acks"]), got  # all, once, in order
        assert r["wrong_texts"] == 0
        by_ref = srv.metric("fanout_dpdk_tx_bytes_by_reference_total")
        copied = srv.metric("fanout_dpdk_tx_bytes_copied_total")
        log = open(srv.log.name).read()
        if zero_copy == "off":
            assert "send by copy" in log
            assert by_ref == 0 and copied > 3 * 40000
        else:
            assert "zero-copy send from DPDK memory" in log
            assert srv.metric("fanout_dpdk_frame_pool_capacity") > 0
            # the 70,000-character messages fit no class: made on the heap
            # and copied, between frames sent by reference
            assert srv.metric("fanout_dpdk_frame_pool_misses_total") >= count // 10
            assert by_ref > 3 * 40000 and copied > 3 * 70000
    finally:
        assert srv.stop() == 0, open(srv.log.name).read()[-3000:]


def test_frame_memory_beyond_the_eals_is_refused_at_start(link):
    """Asked for more frame memory than the EAL has, fanoutd says which key
    and exits instead of running without its pools; it never says it is
    ready (/readyz waits for the DPDK edge)."""
    with pytest.raises(RuntimeError) as e:
        Server(extra_ini=dataplane_ini(zero_copy="pooled", frame_memory_mb=4096),
               service_threads=1)
    assert "fanoutd exited" in str(e.value) and "frame_memory_mb = 4096 MiB" in str(e.value)


def ws(user, host=EDGE_IP):
    return f"ws://{host}:{WS_PORT}/ws?token={token(user)}"


TAP = f"fot{SUFFIX}"
TAP_EDGE_IP, TAP_CLIENT_IP = "10.233.0.1", "10.233.0.2"


@pytest.mark.parametrize("offload", [True, False])
def test_checksums_by_the_port(link, offload):
    """DPDK's tap driver offers IPv4 and TCP checksum offload (it computes
    them itself, as a NIC would). With checksum_offload = on the edge leaves
    them to the port (the mbuf's flags and header lengths, the IPv4 checksum
    left 0) and takes the port's word for what it receives; every byte
    still arrives, with checksums the client's kernel accepts. With auto, a
    software port is not given them. Frames are copied (zero_copy = off):
    DPDK 22.11's tap driver sums a chain with an odd-length mbuf wrong,
    which is why auto never offloads to it."""
    srv = start_tap(offload)
    try:
        log = open(srv.log.name).read()
        assert ("checksums by the port" if offload else "checksums here") in log, log[-2000:]
        alice, bob = unique("a"), unique("b")
        chan = channel_for(srv, alice, bob)
        count = 20
        r = result(NS, "texts", "--url-pub", ws(alice, TAP_EDGE_IP), "--url-sub",
                   ws(bob, TAP_EDGE_IP), "--subscribers", "2", "--channel", str(chan),
                   "--count", str(count), "--sizes", SIZES, "--tag", "tap", "--timeout", "20",
                   timeout=90)
        assert len(r["acks"]) == count and -1 not in r["acks"], r["acks"]
        for got in r["received"]:
            assert got == sorted(r["acks"]), got
        assert r["wrong_texts"] == 0
        # nothing dropped for a bad checksum on our side either
        assert srv.metric("fanout_dpdk_ip_bad_total") == 0
    finally:
        assert srv.stop() == 0, open(srv.log.name).read()[-3000:]


def start_tap(offload):
    """fanoutd on a tap device the driver makes; its kernel end is moved
    into the clients' namespace (it goes when fanoutd closes it)."""
    ini = dataplane_ini(eal_args="--no-huge --no-pci --no-shconf -m 512 "
                                 f"--vdev=net_tap{SUFFIX},iface={TAP}",
                        port=f"net_tap{SUFFIX}", address=f"{TAP_EDGE_IP}/24",
                        checksum_offload="on" if offload else "auto", zero_copy="off")
    srv = Server(extra_ini=ini, service_threads=1, publish_rate=100000, publish_burst=100000,
                 max_text_bytes=100000, max_message_bytes=262144)
    try:
        deadline = time.time() + 10  # the port started: the driver is done with its device
        while f"dpdk edge: net_tap{SUFFIX}" not in open(srv.log.name).read():
            assert time.time() < deadline, "no tap port: " + open(srv.log.name).read()[-2000:]
            time.sleep(0.1)
        sh("ip", "link", "set", TAP, "netns", NS)
        in_ns(NS, "ip", "addr", "add", f"{TAP_CLIENT_IP}/24", "dev", TAP)
        in_ns(NS, "ip", "link", "set", TAP, "up")
        quiet(TAP, ns=NS)
        deadline = time.time() + 20
        while client(NS, "http", "--host", TAP_EDGE_IP, "--port", str(WS_PORT), "--path", "/",
                     check=False).returncode != 0:
            assert time.time() < deadline, "the edge does not answer on the tap: " + \
                open(srv.log.name).read()[-3000:]
            time.sleep(0.2)
        return srv
    except BaseException:
        srv.stop()
        in_ns(NS, "ip", "link", "del", TAP, check=False)
        raise


def test_two_workers_share_the_connections(link):
    """Two worker lcores, one queue pair each (the af_packet driver spreads
    flows over its queues by hash, as RSS does on a NIC): connections land
    on both, each worker owns its own, and a message reaches subscribers on
    either worker from a publisher on one, once and in order."""
    srv = start(workers=2, eal_args="--no-huge --no-pci --no-shconf -m 512 --lcores 0@0,1@0,2@1 "
                f"--vdev=net_af_packet{SUFFIX},iface={VETH_EDGE},qdisc_bypass=0,framecnt=4096,qpairs=2")
    try:
        alice, bob = unique("a"), unique("b")
        chan = channel_for(srv, alice, bob)
        r = result(NS, "texts", "--url-pub", ws(alice), "--url-sub", ws(bob), "--subscribers", "20",
                   "--channel", str(chan), "--count", "30", "--sizes", "50,700,3000",
                   "--tag", "rss", "--timeout", "20", timeout=90)
        assert -1 not in r["acks"], r["acks"]
        for got in r["received"]:
            assert got == sorted(r["acks"]), got
        assert r["wrong_texts"] == 0
        accepted = [srv.metric(f'fanout_dpdk_worker_accepted_total{{worker="{i}"}}')
                    for i in range(2)]
        # 21 connections, flows hashed over two queues: both had some
        # (all on one would happen once in a million runs)
        assert sum(accepted) >= 21 and min(accepted) > 0, accepted
    finally:
        assert srv.stop() == 0, open(srv.log.name).read()[-3000:]
