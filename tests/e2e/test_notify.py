# SPDX-License-Identifier: BSD-3-Clause
"""fanoutd under systemd's Type=notify (sd_notify(3)): a test socket stands in
for the service manager. READY=1 once it serves, WATCHDOG=1 at least twice
per WATCHDOG_USEC while it runs, STOPPING=1 when SIGTERM starts the
shutdown; without NOTIFY_SOCKET it runs as before (every other test)."""
import os
import socket
import time

from conftest import Server


def datagrams(sock, seconds):
    got, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            break
    return got


def test_ready_watchdog_and_stopping(tmp_path):
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    os.environ.update(NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
    try:
        srv = Server()  # returns once /readyz answers
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
    try:
        first = datagrams(sock, 0.05)
        assert first and first[0].startswith("READY=1"), first
        beats = [m for m in datagrams(sock, 1.0) if m == "WATCHDOG=1"]
        assert len(beats) >= 4, beats  # every 200 ms: 5 in a second, give or take
    finally:
        assert srv.stop() == 0
    after = datagrams(sock, 1.0)
    assert any(m.startswith("STOPPING=1") for m in after), after
    sock.close()


def test_an_abstract_socket_name_works_too(tmp_path):
    name = f"@fanout-notify-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name[1:])
    os.environ["NOTIFY_SOCKET"] = name
    try:
        srv = Server()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    try:
        assert datagrams(sock, 0.5)[0].startswith("READY=1")
    finally:
        assert srv.stop() == 0
    sock.close()
