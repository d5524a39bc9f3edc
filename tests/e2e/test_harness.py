# SPDX-License-Identifier: BSD-3-Clause
"""The e2e harness itself: a run stopped by SIGTERM (meson's timeout, or
`timeout`) still tears its fixtures down, so the servers, etcd and Patroni
pairs the tests started are stopped rather than left running (conftest.py's
pytest_configure)."""
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

PROBE = '''
import os, pathlib, time
import pytest

@pytest.fixture
def held():
    yield
    pathlib.Path(os.environ["PROBE_DOWN"]).write_text("torn down")

def test_waits(held):
    pathlib.Path(os.environ["PROBE_UP"]).write_text("running")
    time.sleep(60)
'''


def wait_for(path, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    return False


def test_sigterm_tears_the_fixtures_down(tmp_path):
    probe = tmp_path / "probe_run.py"
    probe.write_text(PROBE)
    up, down = tmp_path / "up", tmp_path / "down"
    env = dict(os.environ, PROBE_UP=str(up), PROBE_DOWN=str(down),
               PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # the e2e conftest loaded as a plugin, as it is for every e2e file
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "-p", "conftest", str(probe)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert wait_for(up, 30), "the probe test never started"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert down.exists(), "fixture not torn down on SIGTERM:\n" + out.decode(errors="replace")
    assert proc.returncode != 0  # interrupted, not passed
