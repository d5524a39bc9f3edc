# SPDX-License-Identifier: BSD-3-Clause
"""fanoutd under systemd's Type=notify (sd_notify(3)): a test socket stands in
for the service manager. READY=1 once it serves, WATCHDOG=1 at least twice
per WATCHDOG_USEC while it runs, STOPPING=1 when SIGTERM starts the
shutdown, RELOADING=1 then READY=1 around a SIGHUP reload; without
NOTIFY_SOCKET it runs as before (every other test)."""
import os
import signal
import socket
import time

from conftest import Client, Server, channel_id, run, unique


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


def logged(srv, text):
    return [line for line in open(srv.log.name) if text in line]


def test_sighup_reloads_the_log_level_and_names_what_needs_a_restart(tmp_path):
    """systemctl reload: the log level changes at once, with RELOADING=1 and
    READY=1 around it; a changed port is named as needing a restart (and
    the old one keeps serving); an open websocket is not dropped; a file
    that no longer loads changes nothing."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    os.environ["NOTIFY_SOCKET"] = path
    try:
        srv = Server()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    original = open(srv.config).read()
    quieter = original.replace("level = info", "level = warn").replace(
        f"port = {srv.port}", f"port = {srv.port + 1}")

    def reload(text):
        with open(srv.config, "w") as f:
            f.write(text)
        srv.proc.send_signal(signal.SIGHUP)
        return datagrams(sock, 1.0)

    async def go():
        c = await Client.connect(srv, unique())
        general = channel_id(c, "general")
        datagrams(sock, 0.2)  # READY=1 and what came before
        said = [reload(quieter)]
        acks = [await c.publish(general, "still connected")]
        said.append(reload(quieter + "[server]\nno_such_key = 1\n"))
        acks.append(await c.publish(general, "still connected after a bad reload"))
        said.append(reload(original))
        acks.append(await c.publish(general, "still connected, louder again"))
        await c.close()
        return said, acks

    try:
        said, acks = run(go())
    finally:
        assert srv.stop() == 0
    sock.close()
    for s in said:
        assert s and s[0].startswith("RELOADING=1") and s[-1].startswith("READY=1"), said
    assert all(a["type"] == "ack" for a in acks), acks
    assert logged(srv, "reload: [log] level info -> warn")
    needs = logged(srv, "applied only by a restart")
    # the third puts the port back as it runs: nothing to name
    assert len(needs) == 1 and "[server] port" in needs[0] and "[log] level" not in needs[0]
    refused = logged(srv, "the running configuration stays")
    assert len(refused) == 1 and "no_such_key" in refused[0], refused
    # "reload: done" is a notice: dropped while the level was warn (the first
    # two reloads), written once it was info again (the third)
    assert len(logged(srv, "reload: done")) == 1
