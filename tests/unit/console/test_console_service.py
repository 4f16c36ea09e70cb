"""ConsoleService where no pty is needed: a port that cannot be opened, a slow line."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest
import serial

from firmware.app import App
from firmware.console import AppBackend, ConsoleService, ConsoleSession, State
from firmware.console.service import Link
from firmware.system.supervisor import ServiceState


async def test_a_missing_device_is_a_crash_not_a_silent_wait(app: App) -> None:
    readied: list[bool] = []
    service = ConsoleService(app, "/nonexistent/ttyS9")
    with pytest.raises(serial.SerialException, match="could not open port"):
        await service.run(lambda: readied.append(True))
    assert not readied


async def test_the_supervisor_shows_why_the_console_is_down(app: App) -> None:
    app.supervisor.add(ConsoleService(app, "/nonexistent/ttyS9"))
    task = asyncio.create_task(app.supervisor.run())
    try:
        for _ in range(200):
            status = {s.name: s for s in app.supervisor.status()}["console"]
            if status.restarts:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert status.state in (ServiceState.DEGRADED, ServiceState.STOPPED)
    assert status.restarts >= 1
    assert status.last_error is not None and "/nonexistent/ttyS9" in status.last_error


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in 5 s")


async def test_ctrl_c_throws_away_output_not_yet_sent(app: App, password: str) -> None:
    """A slow line (a small socket buffer stands in for 115200 baud) and a long listing."""
    app.admin.set_password(password, first_time=True)
    users = [{"extension": f"{100 + i}", "name": f"User {i}"} for i in range(400)]
    app.store.import_raw({"version": 1, "users": users}, "test")
    near, far = socket.socketpair()
    for end in (near, far):
        end.setblocking(False)
        end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    loop = asyncio.get_running_loop()
    session = ConsoleSession(AppBackend(app), loop.time)
    link = Link(loop, near.fileno(), session)
    serving = asyncio.create_task(link.serve(session.start()))
    try:
        far.sendall(f"admin\r{password}\r".encode())
        await until(lambda: session.state is State.COMMAND)
        far.sendall(b"show config\r")
        await until(lambda: link.queued > 0)
        before = link.received
        far.sendall(b"\x03")
        await until(lambda: link.received > before)  # Ctrl-C arrived before we read a byte
        received = b""
        while not received.endswith(b"^C\r\nskillepunkt> "):
            received += await asyncio.wait_for(loop.sock_recv(far, 65536), 5)
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        near.close()
        far.close()
    assert b"User 10" in received  # the listing started...
    assert b"User 399" not in received  # ...and was cut short
