# SPDX-License-Identifier: BSD-3-Clause
"""netem: the fault harness's impaired client path (docs/reliability.md).
This kernel has no sch_netem, so the harness's clients sit in a network
namespace of their own and reach the nodes through tests/e2e/impair.py, a
seeded forwarder in a second namespace that drops, delays, reorders and
duplicates frames while a burst is on (SIGUSR1) and forwards them as they
come otherwise (SIGUSR2):

    clients [ns fo-nc: veth b] -- [ns fo-nm: veth n, impair.py, veth m] --
        [veth a: the host, where the nodes listen]

The harness's process stays in the host's namespace (it starts and kills
nodes, PostgreSQL and etcd); only the clients' sockets are made in the
clients' namespace (setns around socket()), so every client byte crosses
the forwarder and nothing else does. Loopback() is the same interface
without a namespace, for runs without the netem fault."""
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
from dpdk_rig import quiet, sh  # noqa: E402

CLONE_NEWNET = 0x40000000
DEFAULT = "loss=0.1,delay=30,jitter=20,reorder=0.05,duplicate=0.03"
KNOBS = ("loss", "delay", "jitter", "reorder", "duplicate")


def parse(spec):
    """loss=P,delay=MS,jitter=MS,reorder=P,duplicate=P: impair.py's options;
    ValueError on anything else."""
    out = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        if key not in KNOBS:
            raise ValueError(f"netem: unknown knob {key!r} (known: {', '.join(KNOBS)})")
        out[key] = float(value)
        if out[key] < 0 or (key in ("loss", "reorder", "duplicate") and out[key] > 1):
            raise ValueError(f"netem: {key}={value} out of range")
    return out


class Loopback:
    """Clients on the host's loopback, unimpaired."""
    host = "127.0.0.1"
    listen = "127.0.0.1"

    def socket(self):
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)

    def burst(self, seconds):
        raise RuntimeError("netem: no impaired client path in this run")

    def stop(self):
        return None


class ClientPath:
    def __init__(self, directory, seed, knobs):
        tag = os.getpid() % 100000
        self.ns, self.mid = f"fo-nc{tag}", f"fo-nm{tag}"
        self.veth = {k: f"fn{tag}{k}" for k in "abmn"}
        net = 1 + os.getpid() % 250
        self.host, client = f"10.233.{net}.1", f"10.233.{net}.2"
        self.listen = "0.0.0.0"  # the nodes: loopback for the harness, veth a for clients
        self.stats = os.path.join(directory, "netem.json")
        self.proc = None
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.teardown()
        try:
            self.build(client)
            self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            self.away = os.open(f"/run/netns/{self.ns}", os.O_RDONLY)
            args = [a for k, v in knobs.items() for a in (f"--{k}", str(v))]
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.mid, sys.executable,
                 os.path.join(os.path.dirname(HERE), "e2e", "impair.py"), self.veth["m"],
                 self.veth["n"], "--off", "--seed", str(seed), "--stats", self.stats, *args],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self.wait_for_path()
        except BaseException:
            self.stop()
            raise

    def build(self, client):
        v = self.veth
        sh("ip", "netns", "add", self.ns)
        sh("ip", "netns", "add", self.mid)
        sh("ip", "link", "add", v["a"], "type", "veth", "peer", "name", v["m"])
        sh("ip", "link", "add", v["b"], "type", "veth", "peer", "name", v["n"])
        sh("ip", "link", "set", v["m"], "netns", self.mid)
        sh("ip", "link", "set", v["n"], "netns", self.mid)
        sh("ip", "link", "set", v["b"], "netns", self.ns)
        sh("ip", "addr", "add", f"{self.host}/24", "dev", v["a"])
        sh("ip", "link", "set", v["a"], "up")
        quiet(v["a"])
        for dev in (v["m"], v["n"]):
            sh("ip", "netns", "exec", self.mid, "ip", "link", "set", dev, "up", "promisc", "on")
            quiet(dev, ns=self.mid)
        sh("ip", "netns", "exec", self.ns, "ip", "addr", "add", f"{client}/24", "dev", v["b"])
        sh("ip", "netns", "exec", self.ns, "ip", "link", "set", v["b"], "up")
        sh("ip", "netns", "exec", self.ns, "ip", "link", "set", "lo", "up")
        quiet(v["b"], ns=self.ns)

    def wait_for_path(self):
        """Until a client's connection crosses the forwarder to the host."""
        deadline = time.monotonic() + 15
        with socket.create_server((self.host, 0)) as server:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError("netem: impair.py exited: " +
                                       self.proc.stderr.read().decode())
                with self.socket() as s:
                    s.settimeout(1)
                    try:
                        s.connect(server.getsockname())
                        return
                    except OSError:
                        time.sleep(0.1)
        raise RuntimeError("netem: the clients' namespace cannot reach the host")

    def enter(self, fd):
        if self.libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")

    def socket(self):
        """A TCP socket in the clients' namespace (the calling thread goes
        there for socket() alone and comes back)."""
        self.enter(self.away)
        try:
            return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        finally:
            self.enter(self.home)

    def burst(self, seconds):
        """Impairment on for seconds, then off."""
        self.proc.send_signal(signal.SIGUSR1)
        try:
            time.sleep(seconds)
        finally:
            self.proc.send_signal(signal.SIGUSR2)

    def teardown(self):
        sh("ip", "link", "del", self.veth["a"], check=False)
        sh("ip", "netns", "del", self.ns, check=False)
        sh("ip", "netns", "del", self.mid, check=False)

    def stop(self):
        """Tears the path down; the forwarder's counts, or None."""
        counts = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
                with open(self.stats) as f:
                    counts = json.load(f)
            except (subprocess.TimeoutExpired, OSError, ValueError):
                self.proc.kill()
        for fd in ("home", "away"):
            if hasattr(self, fd):
                os.close(getattr(self, fd))
                delattr(self, fd)
        self.teardown()
        return counts
