# SPDX-License-Identifier: BSD-3-Clause
"""fanoutd under systemd's Type=notify (sd_notify(3)): a test socket stands in
for the service manager. READY=1 once it serves, WATCHDOG=1 at least twice
per WATCHDOG_USEC while it runs, STOPPING=1 when SIGTERM starts the
shutdown, RELOADING=1 then READY=1 around a SIGHUP reload; without
NOTIFY_SOCKET it runs as before (every other test)."""
import asyncio
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import SECRET, Client, Server, channel_id, free_port, run, unique


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


def start_with_stderr(tmp_path, stderr_path, env):
    """fanoutd with its stderr on a file of ours (Server keeps its own)."""
    port = free_port()
    config = tmp_path / "fanout.ini"
    config.write_text(f"[server]\nport = {port}\n[log]\nformat = json\nlevel = info\n")
    err = open(stderr_path, "w")
    proc = subprocess.Popen([os.environ["FANOUT_BIN"], "-c", str(config)], stdout=err,
                            stderr=err, env=dict(os.environ, FANOUT_JWT_SECRET=SECRET,
                                                 FANOUT_PG_DSN=os.environ["FANOUT_TEST_PG_DSN"],
                                                 **env(err)))
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
            return proc
        except OSError:
            assert proc.poll() is None, open(stderr_path).read()
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("fanoutd did not become ready")


def fields(datagram):
    """A native journal record's fields (every value here is one line)."""
    return dict(line.split("=", 1) for line in datagram.decode().splitlines())


def test_logs_go_to_the_journal_as_fields(tmp_path):
    """Under systemd, stderr is the journal's stream (JOURNAL_STREAM names
    it): each record goes to the journal's socket as PRIORITY,
    SYSLOG_IDENTIFIER, FANOUT_COMPONENT and MESSAGE fields instead of a
    line. With JOURNAL_STREAM naming another file, lines stay on stderr."""
    path = str(tmp_path / "journal")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)

    def stream(err):
        st = os.fstat(err.fileno())
        return {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}", "FANOUT_JOURNAL_SOCKET": path}

    proc = start_with_stderr(tmp_path, tmp_path / "stderr", stream)
    try:
        records = []
        while not any("listening" in r.get("MESSAGE", "") for r in records):
            records.append(fields(sock.recv(65536)))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    sock.settimeout(0.3)
    try:
        while True:  # the rest of the first run's records, to its exit
            records.append(fields(sock.recv(65536)))
    except socket.timeout:
        pass
    assert any("shutting down" in r["MESSAGE"] or "stopped" in r["MESSAGE"] for r in records), \
        [r["MESSAGE"] for r in records]
    first = records[0]
    assert first["SYSLOG_IDENTIFIER"] == "fanoutd" and first["PRIORITY"] in "34567", first
    assert {r["FANOUT_COMPONENT"] for r in records} >= {"fanoutd"}, records
    assert not [line for line in open(tmp_path / "stderr") if line.startswith("{")]

    def elsewhere(err):
        return {"JOURNAL_STREAM": "1:2", "FANOUT_JOURNAL_SOCKET": path}

    proc = start_with_stderr(tmp_path, tmp_path / "stderr2", elsewhere)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    with pytest.raises(socket.timeout):
        sock.recv(65536)
    lines = [json.loads(line) for line in open(tmp_path / "stderr2") if line.startswith("{")]
    assert lines and all(line["component"] for line in lines)
    sock.close()


def test_sighup_applies_the_limits_to_open_connections(tmp_path):
    """A reload's limits reach connections already open: a publish rate of
    1/s with a burst of 2 refuses the third publish at once; after a
    reload to 1000/s the same connection publishes 20 in a row, and a text
    over a lowered max_text_bytes is refused as too_large."""
    srv = Server(publish_rate=1, publish_burst=2)
    original = open(srv.config).read()

    def reload(text):
        with open(srv.config, "w") as f:
            f.write(text)
        srv.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 5
        while time.time() < deadline and not logged(srv, "reload: done"):
            time.sleep(0.05)

    async def go():
        c = await Client.connect(srv, unique())
        general = channel_id(c, "general")
        first = [await c.publish(general, f"slow {i}") for i in range(3)]
        reload(original.replace("publish_rate = 1\n", "publish_rate = 1000\n")
               .replace("publish_burst = 2\n", "publish_burst = 1000\nmax_text_bytes = 10\n"))
        # the bucket refills at the new rate: 0.2 s is 200 publishes' worth,
        # where the old rate would have given 0.2 of one
        await asyncio.sleep(0.2)
        fast = [await c.publish(general, f"fast {i}") for i in range(20)]
        long = await c.publish(general, "x" * 11)
        await c.close()
        return first, fast, long

    try:
        first, fast, long = run(go())
    finally:
        assert srv.stop() == 0
    assert [a["type"] for a in first[:2]] == ["ack", "ack"]
    assert first[2]["type"] == "error" and first[2]["code"] == "rate_limited", first
    assert all(a["type"] == "ack" for a in fast), fast
    assert long["type"] == "error" and long["code"] == "too_large", long
    assert logged(srv, "reload: [server] publish_rate 1 -> 1000")
    assert logged(srv, "reload: [server] max_text_bytes 40000 -> 10")
    assert not logged(srv, "applied only by a restart")
