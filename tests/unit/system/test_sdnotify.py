"""sd_notify against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from firmware.system.sdnotify import Notifier


@pytest.fixture
def systemd(tmp_path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(2)
    yield sock
    sock.close()


def test_disabled_without_notify_socket() -> None:
    n = Notifier({})
    assert not n.enabled
    assert n.notify(READY=1) is False


def test_ready_and_status_reach_the_socket(systemd: socket.socket, tmp_path: Path) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify")})
    assert n.notify(READY=1, STATUS="ready: 4 services running")
    assert systemd.recv(4096) == b"READY=1\nSTATUS=ready: 4 services running"
    n.close()


def test_abstract_namespace_socket() -> None:
    name = f"skillepunkt-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert n.notify(STOPPING=1)
        assert sock.recv(100) == b"STOPPING=1"
    finally:
        sock.close()


def test_vanished_socket_is_not_fatal(tmp_path: Path) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert n.notify(READY=1) is False


async def test_watchdog_pings_at_half_the_interval(systemd: socket.socket, tmp_path: Path) -> None:
    env = {
        "NOTIFY_SOCKET": str(tmp_path / "notify"),
        "WATCHDOG_USEC": "100000",
        "WATCHDOG_PID": str(os.getpid()),
    }
    n = Notifier(env)
    assert n.watchdog_usec == 100000
    task = asyncio.create_task(n.watchdog())
    await asyncio.sleep(0.23)
    task.cancel()
    systemd.setblocking(False)
    pings = []
    while True:
        try:
            pings.append(systemd.recv(100))
        except BlockingIOError:
            break
    assert set(pings) == {b"WATCHDOG=1"}
    assert 4 <= len(pings) <= 6  # every 50 ms for 230 ms


def test_watchdog_for_another_pid_is_ignored() -> None:
    n = Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"})
    assert n.watchdog_usec == 0


def test_a_listener_that_stops_reading_never_blocks_us(
    systemd: socket.socket, tmp_path: Path
) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify")})
    results = [n.notify(WATCHDOG=1) for _ in range(2000)]  # far more than the queue holds
    assert results[0] is True and results[-1] is False
    n.close()
