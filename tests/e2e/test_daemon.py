"""The whole daemon: start, health, sd_notify, console pty, fault -> degraded, SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from peers.box import Daemon, free_port, get_json

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
    while 'msg="configuration changed"' not in daemon.log.read_text():
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


def test_console_on_the_sim_pty_shows_a_crashed_service(daemon: Daemon) -> None:
    """A technician on the sim board's serial console sets the password, logs in, sees the crash."""
    import tty

    from pexpect import fdpexpect

    daemon.wait_healthy()
    assert daemon.cli("sim", "fault", "config").returncode == 0
    fd = os.open(daemon.console_path, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd)
        term = fdpexpect.fdspawn(fd, timeout=10)
        term.send(b"\r")
        term.expect_exact(b"New admin password: ")
        term.send(b"console first password\r")
        term.expect_exact(b"Retype new password: ")
        term.send(b"console first password\r")
        term.expect_exact(b"login: ")
        term.send(b"admin\r")
        term.expect_exact(b"Password: ")
        term.send(b"console first password\r")
        term.expect_exact(b"skillepunkt> ")
        term.send(b"show services\r")
        term.expect_exact(b"skillepunkt> ")
        table = term.before.decode()
        assert re.search(r"config\s+degraded\s+1\s+InjectedFault", table), table
        assert re.search(r"web\s+running\s+0", table), table
        assert "Overall: degraded" in table
        term.send(b"logout\r")
        term.expect_exact(b"login: ")
    finally:
        os.close(fd)
    # the password set on the console is the web's password too (one admin account)
    assert daemon.stop() == 0


def test_skillepunkt_console_attaches_this_terminal(daemon: Daemon) -> None:
    import sys

    import pexpect

    daemon.wait_healthy()
    child = pexpect.spawn(
        sys.executable,
        ["-m", "firmware.cli", "console", "--data", str(daemon.data)],
        timeout=10,
    )
    try:
        child.expect_exact("Ctrl-] leaves.")
        child.expect_exact("New admin password: ")  # the box's first-boot prompt, through the cable
        child.send("\x1d")
        child.expect_exact("disconnected")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert daemon.stop() == 0
