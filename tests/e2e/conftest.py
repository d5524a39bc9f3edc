# SPDX-License-Identifier: BSD-3-Clause
"""Fixtures for the end-to-end tests: a real fanoutd against the real
PostgreSQL that deploy/test started, driven by an independent websocket client
(python3-websockets). Tokens are minted here with Python's hmac, not by our
code, so the JWT check is tested against an independent implementation."""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
import websockets
import websockets.exceptions

SECRET = "e2e-secret"


def pytest_configure(config):
    """A SIGTERM (meson's test timeout, `timeout`) becomes an interrupt, so
    that pytest tears down every fixture still set up before it exits: the
    fanoutd, etcd and Patroni processes the tests started do not outlive the
    run (test_harness.py)."""
    def interrupted(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(user, ttl=3600, secret=SECRET, alg="HS256", now=None):
    now = int(time.time()) if now is None else now
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": user, "iat": now, "exp": now + ttl}).encode())
    sig = b64(hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def unique(prefix="u"):
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(*offsets):
    """A port p with p + each offset free too, below the ephemeral range (so
    no outgoing connection takes one meanwhile)."""
    for _ in range(100):
        p = random.randrange(20000, 30000)
        try:
            for q in offsets:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p + q))
            return p
        except OSError:
            continue
    raise RuntimeError(f"no free ports at offsets {offsets}")


def free_port_pair():
    """deploy/patroni's layout: p, p+1 for PostgreSQL, p+100, p+101 for REST."""
    return free_ports(0, 1, 100, 101)


def sql(query):
    """Runs a query on the test database; returns rows of strings."""
    out = subprocess.run(["psql", os.environ["FANOUT_TEST_PG_DSN"], "-tAX", "-F", "|", "-c", query],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("|") for line in out.splitlines() if line]


def http_request(url, method, path, body=None, user=None, tok=None, headers=None, timeout=10,
                 context=None):
    """One HTTP API call to the server at url: (status, JSON body, or the
    body's text when it is not JSON, or None when empty)."""
    req = urllib.request.Request(url + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    if tok or user:
        req.add_header("Authorization", "Bearer " + (tok or token(user)))
    if body is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode(errors="replace")


class Server:
    def __init__(self, tls=False, extra_ini="", dsn=None, **server_keys):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="fanout-e2e-")
        keys = {"port": self.port, "heartbeat_ms": 30000, "service_threads": 2, **server_keys}
        self.ssl = None
        if tls:
            cert, key = os.path.join(self.dir, "cert.pem"), os.path.join(self.dir, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", key, "-out", cert], check=True, capture_output=True)
            keys.update(tls_cert=cert, tls_key=key)
            self.ssl = ssl.create_default_context(cafile=cert)
        self.config = os.path.join(self.dir, "fanout.ini")
        with open(self.config, "w") as f:
            f.write("[server]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()))
            f.write("[log]\nformat = json\nlevel = info\n")
            f.write(extra_ini)
        env = dict(os.environ, FANOUT_PG_DSN=dsn or os.environ["FANOUT_TEST_PG_DSN"],
                   FANOUT_JWT_SECRET=SECRET)
        self.log = open(os.path.join(self.dir, "fanoutd.log"), "w")
        self.proc = subprocess.Popen([os.environ["FANOUT_BIN"], "-c", self.config],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.ws_url = f"{'wss' if tls else 'ws'}://127.0.0.1:{self.port}/ws"
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/readyz", timeout=1, context=self.ssl)
                return
            except (OSError, urllib.error.URLError):
                if self.proc.poll() is not None:
                    raise RuntimeError("fanoutd exited: " + open(self.log.name).read())
                time.sleep(0.05)
        raise RuntimeError("fanoutd did not become ready")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return -9
        return self.proc.returncode

    def http(self, method, path, body=None, user=None, tok=None, headers=None):
        """Returns (status, json body)."""
        return http_request(self.url, method, path, body, user, tok, headers, context=self.ssl)

    def metric(self, name):
        text = urllib.request.urlopen(self.url + "/metrics", timeout=5).read().decode()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)


class Client:
    """A websocket client that keeps every frame and lets tests wait for one."""

    def __init__(self, ws):
        self.ws = ws
        self.frames = []
        self.seen = 0
        self.req = 0

    @classmethod
    async def connect(cls, server, user, **kw):
        if server.ssl:
            kw.setdefault("ssl", server.ssl)
        ws = await websockets.connect(f"{server.ws_url}?token={token(user)}", ping_interval=None,
                                      max_size=2**24, **kw)
        c = cls(ws)
        c.hello = await c.expect("hello")
        c.user = user
        return c

    async def send(self, obj):
        await self.ws.send(json.dumps(obj))

    async def request(self, obj):
        self.req += 1
        obj["req"] = str(self.req)
        await self.send(obj)
        return str(self.req)

    async def next(self, pred, timeout=10):
        """The first frame not yet taken that satisfies pred."""
        deadline = time.monotonic() + timeout
        while True:
            for i, f in enumerate(self.frames):
                if pred(f):
                    return self.frames.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching frame within {timeout}s; have {self.frames[-5:]}")
            try:
                raw = await asyncio.wait_for(self.ws.recv(), left)
            except asyncio.TimeoutError:
                continue
            self.frames.append(json.loads(raw))

    async def expect(self, type_, timeout=10):
        return await self.next(lambda f: f.get("type") == type_, timeout)

    async def answer(self, obj, timeout=10):
        req = await self.request(obj)
        return await self.next(lambda f: f.get("req") == req, timeout)

    async def subscribe(self, channel, since=None):
        entry = {"channel": channel}
        if since is not None:
            entry["since"] = since
        return await self.answer({"type": "subscribe", "channels": [entry]})

    async def publish(self, channel, text, cmid=None, parent=None):
        msg = {"type": "publish", "channel": channel, "text": text,
               "client_msg_id": cmid or uuid.uuid4().hex}
        if parent:
            msg["parent_seq"] = parent
        return await self.answer(msg)

    async def messages(self, channel, count, timeout=15):
        got = []
        for _ in range(count):
            got.append(await self.next(lambda f: f.get("type") == "message" and
                                       f.get("channel") == channel, timeout))
        return got

    async def quiet(self, seconds=0.5):
        """Collects whatever arrives for a while."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                self.frames.append(json.loads(await asyncio.wait_for(self.ws.recv(), left)))
            except asyncio.TimeoutError:
                break

    async def close(self):
        await self.ws.close()


def channel_id(client, name):
    return next(c["id"] for c in client.hello["channels"] if c["name"] == name)


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    assert s.stop() == 0, "fanoutd did not exit 0 on SIGTERM"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


class Proxy:
    """A TCP forwarder the test controls: the other nodes reach one node's
    peer link through it, so cut() severs every link to that node (and
    refuses new ones) until heal(), while etcd still sees the node alive."""

    def __init__(self):
        self.target = free_port()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open, self.conns, self.stopped = True, [], False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=2)
            except OSError:
                client.close()
                continue
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        self.open = False
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        self.conns = []

    def heal(self):
        self.open = True

    def stop(self):
        self.stopped = True
        self.cut()
        self.listener.close()
