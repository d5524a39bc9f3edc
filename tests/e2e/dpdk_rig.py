# SPDX-License-Identifier: BSD-3-Clause
"""What the DPDK edge tests share: shell commands in and out of network
namespaces, interface offloads off, the namespaced websocket client
(dpdk_client.py) and a channel for a set of users."""
import json
import os
import subprocess

from conftest import unique

HERE = os.path.dirname(os.path.abspath(__file__))


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def in_ns(ns, *cmd, check=True):
    return sh("ip", "netns", "exec", ns, *cmd, check=check)


def quiet(dev, ns=None):
    """Offloads off: the kernel would hand raw sockets unchecksummed or
    merged segments, which no NIC puts on a wire."""
    cmd = ("ethtool", "-K", dev, "rx", "off", "tx", "off", "tso", "off", "gso", "off", "gro", "off")
    if ns:
        in_ns(ns, *cmd)
    else:
        sh(*cmd)


def client(ns, *args, check=True, timeout=120):
    """dpdk_client.py in namespace ns; its result, checked for exit 0."""
    r = subprocess.run(["ip", "netns", "exec", ns, "/usr/bin/python3",
                        os.path.join(HERE, "dpdk_client.py"), *args],
                       capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def result(ns, *args, **kw):
    return json.loads(client(ns, *args, **kw).stdout)


def channel_for(server, *users):
    status, body = server.http("POST", "/api/v1/channels", {"name": unique("dp")}, user=users[0])
    assert status == 201, body
    chan = body["channel"]["id"]
    for u in users[1:]:
        assert server.http("POST", f"/api/v1/channels/{chan}/join", user=u)[0] == 200
    return chan
