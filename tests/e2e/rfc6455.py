# SPDX-License-Identifier: BSD-3-Clause
"""An RFC 6455 conformance suite of our own, organised by the sections of
the Autobahn|Testsuite (1 framing, 2 ping/pong, 3 reserved bits, 4 opcodes,
5 fragmentation, 6 UTF-8, 7 close, 9 limits, 10 misc). Its own framing over
a plain socket (it must send what libraries refuse to), against one edge:

    python3 rfc6455.py HOST PORT TOKEN [--max-message N]

prints one JSON object: per section, cases passed and failed, and the
failures. fanout is not an echo server, so the oracle for "the message was
taken" is the protocol's own: a text message holding {"type":"ping",...}
is answered with a pong carrying the same req."""
import argparse
import base64
import json
import os
import socket
import struct
import sys
import time

TIMEOUT = 5.0
# How long a server may take to end TCP once the close handshake is done:
# both edges end it at once; the margin is for a loaded machine.
EOF_WAIT = 7.0


class Conn:
    def __init__(self, host, port, token):
        self.s = socket.create_connection((host, port), timeout=TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET /ws?token={token} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.s.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.s.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise ConnectionError(status.decode(errors="replace"))
        self.buf = head.split(b"\r\n\r\n", 1)[1]
        self.req = 0
        first = self.frame()
        assert first and first[0] == 1 and json.loads(first[1])["type"] == "hello", first

    def send_frame(self, opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload) if length is None else length
        if n < 126:
            head = bytes([b0, (0x80 if mask else 0) | n])
        elif n < 65536:
            head = bytes([b0, (0x80 if mask else 0) | 126]) + struct.pack(">H", n)
        else:
            head = bytes([b0, (0x80 if mask else 0) | 127]) + struct.pack(">Q", n)
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
            head += key
        self.s.sendall(head + payload)

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self, timeout=TIMEOUT):
        """(opcode, payload) of the next frame, or None at EOF."""
        self.s.settimeout(timeout)
        try:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            if b1 & 0x80:
                raise AssertionError("the server masked a frame")
            return b0 & 0x0F, self._read(n)
        except EOFError:
            return None

    def ping_request(self, pad=""):
        """A text message the server must answer: returns (req, bytes)."""
        self.req += 1
        req = f"r{self.req}"
        return req, json.dumps({"type": "ping", "req": req, "pad": pad}, ensure_ascii=False).encode()

    def expect_pong(self, req, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            f = self.frame(max(0.1, deadline - time.monotonic()))
            if f is None:
                raise AssertionError("closed instead of answering")
            if f[0] == 8:
                raise AssertionError(f"closed {close_code(f[1])} instead of answering")
            if f[0] == 1:
                m = json.loads(f[1])
                if m.get("type") == "pong" and m.get("req") == req:
                    return
        raise AssertionError("no pong")

    def expect_close(self, codes, timeout=TIMEOUT, fail=True):
        """The server's close frame with one of codes, then EOF. With fail
        (the server must _Fail the WebSocket Connection_, RFC 6455 7.1.7),
        an EOF without the close frame it SHOULD send is a lenient pass."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                f = self.frame(max(0.1, deadline - time.monotonic()))
            except ConnectionResetError:
                f = None
            if f is None:
                if fail:
                    raise Lenient("the connection was dropped without a close frame")
                raise AssertionError("EOF without a close frame")
            if f[0] == 8:
                code = close_code(f[1])
                if code not in codes:
                    raise AssertionError(f"close {code}, wanted {codes}")
                try:  # answer it, as a client must (5.5.1); then the server ends TCP
                    self.send_frame(8, f[1][:2])
                except OSError:
                    pass
                self.expect_eof(deadline - time.monotonic())
                return code
        raise AssertionError("no close frame")

    def expect_eof(self, timeout=TIMEOUT):
        deadline = time.monotonic() + max(timeout, EOF_WAIT)
        while time.monotonic() < deadline:
            try:
                f = self.frame(max(0.1, deadline - time.monotonic()))
            except socket.timeout:
                continue
            except ConnectionResetError:
                return
            if f is None:
                return
        raise AssertionError("the server kept the TCP connection open")

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class Lenient(Exception):
    """Conforms, but without what the RFC says an endpoint SHOULD do."""


def close_code(payload):
    return struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005


CASES = []


def case(section, name):
    def wrap(fn):
        CASES.append((section, name, fn))
        return fn
    return wrap


# 1 Framing

@case(1, "an empty text message is refused with an error frame, and the connection stays")
def _(c, a):
    c.send_frame(1, b"")
    f = c.frame()
    assert f and f[0] == 1 and json.loads(f[1])["type"] == "error", f
    req, body = c.ping_request()
    c.send_frame(1, body)
    c.expect_pong(req)


for n in (1, 125, 126, 127, 128, 65535, 65536):
    def make(n):
        def run(c, a):
            req, body = c.ping_request()
            pad = max(0, min(n, a.max_message) - len(body))
            req, body = c.ping_request("x" * pad)
            c.send_frame(1, body)
            c.expect_pong(req)
        return run
    case(1, f"text message of about {n} bytes answered")(make(n))


@case(1, "binary message closes with 1003")
def _(c, a):
    c.send_frame(2, b"\x00\x01\x02")
    c.expect_close({1003})


# 2 Ping/pong

for n in (0, 1, 64, 125):
    def make(n):
        def run(c, a):
            payload = os.urandom(n)
            c.send_frame(9, payload)
            f = c.frame()
            assert f == (10, payload), f
        return run
    case(2, f"ping with {n} bytes gets a pong with the same bytes")(make(n))


@case(2, "ping of 126 bytes closes with 1002")
def _(c, a):
    c.send_frame(9, b"x" * 126)
    c.expect_close({1002})


@case(2, "an unsolicited pong is ignored")
def _(c, a):
    c.send_frame(10, b"unsolicited")
    req, body = c.ping_request()
    c.send_frame(1, body)
    c.expect_pong(req)


@case(2, "ten pings get ten pongs in order (5.5.3 allows answering only the last)")
def _(c, a):
    for i in range(10):
        c.send_frame(9, f"p{i}".encode())
    got = []
    while len(got) < 10:
        try:
            f = c.frame(2.0)
        except socket.timeout:
            break
        assert f and f[0] == 10, f
        got.append(f[1])
    assert got and got == sorted(got, key=lambda p: int(p[1:])), got
    if len(got) < 10:
        raise Lenient(f"{len(got)} pongs for 10 pings: {got}")


# 3 Reserved bits

for rsv in (1, 2, 4, 7):
    def make(rsv):
        def run(c, a):
            req, body = c.ping_request()
            c.send_frame(1, body, rsv=rsv)
            c.expect_close({1002})
        return run
    case(3, f"RSV bits {rsv:03b} on a text frame close with 1002")(make(rsv))


@case(3, "RSV1 on a ping closes with 1002")
def _(c, a):
    c.send_frame(9, b"x", rsv=4)
    c.expect_close({1002})


# 4 Opcodes

for op in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15):
    def make(op):
        def run(c, a):
            c.send_frame(op, b"reserved")
            c.expect_close({1002})
        return run
    case(4, f"reserved opcode {op} closes with 1002")(make(op))


# 5 Fragmentation

@case(5, "a text message in two fragments is answered")
def _(c, a):
    req, body = c.ping_request()
    c.send_frame(1, body[:5], fin=False)
    c.send_frame(0, body[5:])
    c.expect_pong(req)


@case(5, "a text message in one-byte fragments is answered")
def _(c, a):
    req, body = c.ping_request()
    c.send_frame(1, body[:1], fin=False)
    for i in range(1, len(body) - 1):
        c.send_frame(0, body[i:i + 1], fin=False)
    c.send_frame(0, body[-1:])
    c.expect_pong(req)


@case(5, "pings between fragments are answered first")
def _(c, a):
    req, body = c.ping_request()
    c.send_frame(1, body[:4], fin=False)
    c.send_frame(9, b"mid")
    c.send_frame(0, body[4:])
    assert c.frame() == (10, b"mid")
    c.expect_pong(req)


@case(5, "a continuation with nothing to continue closes with 1002")
def _(c, a):
    c.send_frame(0, b"orphan")
    c.expect_close({1002})


@case(5, "a fragmented ping closes with 1002")
def _(c, a):
    c.send_frame(9, b"frag", fin=False)
    c.expect_close({1002})


@case(5, "a new text message inside a fragmented one closes with 1002")
def _(c, a):
    c.send_frame(1, b"{", fin=False)
    c.send_frame(1, b"{}")
    c.expect_close({1002})


# 6 UTF-8

@case(6, "valid multi-byte UTF-8 is answered")
def _(c, a):
    req, body = c.ping_request("κόσμε € 𝄞 日本語")
    c.send_frame(1, body)
    c.expect_pong(req)


@case(6, "valid UTF-8 split inside a code point across fragments is answered")
def _(c, a):
    req, body = c.ping_request("𝄞𝄞")
    cut = body.index("𝄞".encode()) + 2
    c.send_frame(1, body[:cut], fin=False)
    c.send_frame(0, body[cut:])
    c.expect_pong(req)


for name, bad in (("0xff", b"\xff"), ("an overlong slash", b"\xc0\xaf"),
                  ("a surrogate", b"\xed\xa0\x80"), ("above U+10FFFF", b"\xf4\x90\x80\x80"),
                  ("a truncated sequence", b"\xe2\x82")):
    def make(bad):
        def run(c, a):
            c.send_frame(1, b'{"type":"ping","pad":"' + bad + b'"}')
            c.expect_close({1007})
        return run
    case(6, f"invalid UTF-8 ({name}) closes with 1007")(make(bad))


@case(6, "invalid UTF-8 in a first fragment closes with 1007 before the last one")
def _(c, a):
    c.send_frame(1, b'{"pad":"\xff', fin=False)
    c.expect_close({1007})


# 7 Close

@case(7, "close 1000 is answered with close 1000 and the TCP connection ends")
def _(c, a):
    c.send_frame(8, struct.pack(">H", 1000) + b"bye")
    c.expect_close({1000}, fail=False)


@case(7, "an empty close is answered with a close")
def _(c, a):
    c.send_frame(8, b"")
    c.expect_close({1000, 1005}, fail=False)


@case(7, "a close of one byte closes with 1002")
def _(c, a):
    c.send_frame(8, b"\x03")
    c.expect_close({1002})


for code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999):
    def make(code):
        def run(c, a):
            c.send_frame(8, struct.pack(">H", code))
            c.expect_close({code, 1000}, fail=False)
        return run
    case(7, f"valid close code {code} is answered")(make(code))

for code in (0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 5000, 65535):
    def make(code):
        def run(c, a):
            c.send_frame(8, struct.pack(">H", code))
            c.expect_close({1002})
        return run
    case(7, f"invalid close code {code} closes with 1002")(make(code))


@case(7, "a close reason that is not UTF-8 closes with 1007")
def _(c, a):
    c.send_frame(8, struct.pack(">H", 1000) + b"\xff\xfe")
    c.expect_close({1007})


@case(7, "data after a close is not answered")
def _(c, a):
    c.send_frame(8, struct.pack(">H", 1000))
    req, body = c.ping_request()
    try:
        c.send_frame(1, body)
    except OSError:
        pass
    c.expect_close({1000}, fail=False)


# 9 Limits

@case(9, "a message of exactly the limit is answered")
def _(c, a):
    req, body = c.ping_request()
    req, body = c.ping_request("x" * (a.max_message - len(body)))
    assert len(body) == a.max_message
    c.send_frame(1, body)
    c.expect_pong(req)


@case(9, "one byte over the limit in one frame closes with 1009")
def _(c, a):
    c.send_frame(1, b"x" * (a.max_message + 1))
    c.expect_close({1009})


@case(9, "fragments adding up to over the limit close with 1009")
def _(c, a):
    half = a.max_message // 2 + 1
    c.send_frame(1, b"x" * half, fin=False)
    c.send_frame(0, b"x" * half)
    c.expect_close({1009})


# 10 Misc

@case(10, "an unmasked client frame closes with 1002")
def _(c, a):
    req, body = c.ping_request()
    c.send_frame(1, body, mask=False)
    c.expect_close({1002})


@case(10, "a 64-bit length with its top bit set closes with 1002")
def _(c, a):
    c.s.sendall(bytes([0x81, 0x80 | 127]) + b"\x80" + b"\x00" * 7 + os.urandom(4))
    c.expect_close({1002, 1009})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("token")
    p.add_argument("--max-message", type=int, default=65536)
    a = p.parse_args()
    sections = {}
    for section, name, fn in CASES:
        s = sections.setdefault(str(section), {"passed": 0, "lenient": 0, "failed": 0,
                                               "failures": [], "lenient_cases": []})
        c = None
        try:
            c = Conn(a.host, a.port, a.token)
            fn(c, a)
            s["passed"] += 1
        except Lenient as e:
            s["lenient"] += 1
            s["lenient_cases"].append(f"{name}: {e}")
        except Exception as e:  # every failure is reported, none stops the suite
            s["failed"] += 1
            s["failures"].append(f"{name}: {type(e).__name__}: {e}")
        finally:
            if c:
                c.close()
    json.dump(sections, sys.stdout)
    print()


if __name__ == "__main__":
    main()
