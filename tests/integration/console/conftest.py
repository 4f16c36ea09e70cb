"""A real pty driven like a terminal, with ConsoleService on its far end.

The service runs under a real Supervisor in an event loop of its own thread, because
pexpect's ``expect`` blocks; the test thread plays the technician on the pty master.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import threading
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pexpect import fdpexpect

from firmware.app import App
from firmware.config import AdminAccount, ConfigStore
from firmware.console import ConsoleService
from firmware.events import EventBus
from firmware.system.supervisor import Backoff, Supervisor

PASSWORD = "correct horse battery"


@dataclass
class StubBoard:
    """Only the board's name is read by the console."""

    name: str = "test-board"

    def close(self) -> None:
        pass


@dataclass
class Idle:
    """A second service, so "show services" has more than the console to show."""

    name: str

    async def run(self, ready: Callable[[], None]) -> None:
        ready()
        await asyncio.Event().wait()


class Pty:
    """Both ends of a pseudo-terminal in raw mode, like a serial line with no driver magic.

    The test keeps the slave end open too, so the line outlives a reopen by the service.
    """

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self._open = {self.master, self.slave}

    def hang_up(self) -> None:
        """Close the technician's end: the service's side then reads EOF or EIO."""
        self._close(self.master)

    def close(self) -> None:
        self._close(self.master)
        self._close(self.slave)

    def _close(self, fd: int) -> None:
        if fd in self._open:  # never twice: the number may belong to another file by now
            self._open.discard(fd)
            os.close(fd)


class LoopThread:
    """Runs a coroutine in a new event loop on a thread until ``stop``."""

    def __init__(self, main: Callable[[], Any]) -> None:
        self._main = main
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._started.wait(5)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            self._started.set()
            await self._main()

        with contextlib.suppress(asyncio.CancelledError):
            asyncio.run(main())

    def stop(self) -> None:
        assert self._loop is not None and self._task is not None
        self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(5)
        assert not self._thread.is_alive()


@dataclass
class Box:
    app: App
    service: ConsoleService
    pty: Pty
    term: fdpexpect.fdspawn
    received: io.BytesIO = field(default_factory=io.BytesIO)

    def attach(self, pty: Pty) -> None:
        """Plug the technician into ``pty`` (its master end)."""
        self.pty = pty
        self.received = io.BytesIO()
        self.term = fdpexpect.fdspawn(pty.master, timeout=5)
        self.term.logfile_read = self.received

    def login(self, password: str = PASSWORD) -> None:
        self.term.expect_exact(b"login: ")
        self.term.send(b"admin\r")
        self.term.expect_exact(b"Password: ")
        self.term.send(password.encode() + b"\r")
        self.term.expect_exact(b"skillepunkt> ")

    def command(self, line: str) -> bytes:
        """Type ``line``; return what came back before the next prompt (echo included)."""
        self.term.send(line.encode() + b"\r")
        self.term.expect_exact(b"skillepunkt> ")
        return bytes(self.term.before)


@pytest.fixture
def open_pty() -> Iterator[Callable[[], Pty]]:
    ptys: list[Pty] = []

    def open_one() -> Pty:
        ptys.append(Pty())
        return ptys[-1]

    yield open_one
    for pty in ptys:
        pty.close()


@pytest.fixture
def start_console(tmp_path: Path, open_pty: Callable[[], Pty]) -> Iterator[Callable[..., Box]]:
    """Start a console box; ``password`` pre-sets the admin password (else: first boot)."""
    started: list[tuple[Box, LoopThread]] = []

    def start(*, password: str | None = None, **options: Any) -> Box:
        store = ConfigStore.open(tmp_path)
        app = App(
            data_dir=tmp_path,
            store=store,
            admin=AdminAccount(store),
            bus=EventBus(),
            supervisor=Supervisor(Backoff(initial=0.05)),
            board=StubBoard(),  # type: ignore[arg-type]
        )
        if password is not None:
            app.admin.set_password(password, first_time=True)
        pty = open_pty()
        service = ConsoleService(app, pty.path, **options)
        app.supervisor.add(service)
        app.supervisor.add(Idle("sip"))
        box = Box(app, service, pty, fdpexpect.fdspawn(pty.master, timeout=5))
        box.attach(pty)
        started.append((box, LoopThread(app.supervisor.run)))
        return box

    yield start  # the ptys close after this fixture: the service lets go of them first
    for box, loop in started:
        loop.stop()
        box.app.store.close()
