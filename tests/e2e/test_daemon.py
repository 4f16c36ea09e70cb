"""The whole daemon: start, health, sd_notify, console pty, fault -> degraded, SIGTERM."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import Daemon, free_port, get_json

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_start_ready_healthy_and_clean_stop(daemon: Daemon) -> None:
    health = daemon.wait_healthy()
    assert {"config", "console", "web"} <= set(health["services"])
    assert all(s["state"] == "running" for s in health["services"].values())
    messages = daemon.notifications(timeout=2)
    assert any(m.startswith(b"READY=1") for m in messages), messages
    time.sleep(0.5)
    assert b"WATCHDOG=1" in daemon.notifications(timeout=0.5)

    peer = daemon.console_path
    assert stat.S_ISCHR(os.stat(peer).st_mode)
    with urllib.request.urlopen(daemon.web + "/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert 'skillepunkt_service_up{service="web"} 1' in metrics

    assert daemon.stop() == 0
    assert any(m.startswith(b"STOPPING=1") for m in daemon.notifications(timeout=1))
    assert not (daemon.data / "console.pty").exists()
    log = daemon.log.read_text()
    assert f"serial console: {peer}" in log
    assert "msg=stopped" in log and "Traceback" not in log


def test_crashing_service_is_restarted_and_shown_degraded(daemon: Daemon) -> None:
    daemon.wait_healthy()
    result = daemon.cli("sim", "fault", "config")
    assert result.returncode == 0, result.stderr
    status, health = daemon.healthz()
    assert status == 503 and health["status"] == "degraded"
    config = health["services"]["config"]
    assert config["state"] == "degraded"
    assert config["restarts"] == 1
    assert config["last_error"] == "InjectedFault: fault injected"
    # ... and it really runs again: a config import is noticed and published (logged)
    doc = daemon.data.parent / "doc.yaml"
    doc.write_text("system: {hostname: after-crash}\n")
    assert daemon.cli("config", "import", str(doc)).returncode == 0
    deadline = time.monotonic() + 10
    while "msg=\"configuration changed\"" not in daemon.log.read_text():
        assert time.monotonic() < deadline, "restarted config service did not see the import"
        time.sleep(0.1)
    unknown = daemon.cli("sim", "fault", "nope")
    assert unknown.returncode == 1 and "404" in unknown.stderr
    assert daemon.stop() == 0


def test_make_run_serves_healthz_within_60_s(tmp_path: Path) -> None:
    port = free_port()
    args = f"--web-port {port} --sip-port {free_port()} --sip-tls-port {free_port()} --tftp-port {free_port()}"
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"DATA={tmp_path / 'var'}", f"RUN_ARGS={args}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                status, health = get_json(f"http://127.0.0.1:{port}/healthz", timeout=2)
                if status == 200 and health["status"] == "ok":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "make run: /healthz not ok within 60 s"
            time.sleep(0.2)
        assert (tmp_path / "var" / "console.pty").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
