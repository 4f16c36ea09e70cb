"""Console unit-test fixtures: a real App on a temporary data directory, a fake clock,
and a terminal that types.

pytest runs in importlib mode, so tests cannot import helpers from here at run time;
they get everything through fixtures and import these classes for type checking only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from firmware.app import App
from firmware.config import AdminAccount, ConfigStore
from firmware.console import AppBackend, ConsoleSession, Output
from firmware.events import EventBus
from firmware.system.supervisor import Backoff, Supervisor

PASSWORD = "correct horse battery"


class FakeClock:
    """Monotonic seconds that only move when a test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class StubBoard:
    """Only the board's name is read by the console; no board package is needed here."""

    name: str = "test-board"
    console_device: str = "/dev/null"
    console_peer: str | None = None

    def services(self) -> list[Any]:
        return []

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}

    def close(self) -> None:
        pass


@dataclass
class Idle:
    """A service that serves until cancelled."""

    name: str

    async def run(self, ready: Callable[[], None]) -> None:
        ready()
        await asyncio.Event().wait()


@dataclass
class CrashOnce:
    """A service whose first run crashes, so the table has a restart and a last error."""

    name: str
    crashed: bool = field(default=False)

    async def run(self, ready: Callable[[], None]) -> None:
        if not self.crashed:
            self.crashed = True
            raise RuntimeError("codec\x1b[2J table missing\nsecond line")
        ready()
        await asyncio.Event().wait()


def make_app(data_dir: Path) -> App:
    store = ConfigStore.open(data_dir)
    app = App(
        data_dir=data_dir,
        store=store,
        admin=AdminAccount(store),
        bus=EventBus(),
        supervisor=Supervisor(Backoff(initial=0.01)),
        board=StubBoard(),  # type: ignore[arg-type]
    )
    app.supervisor.add(Idle("sip"))
    app.supervisor.add(CrashOnce("media"))
    return app


class Terminal:
    """The technician's side: types strings, collects what the box sends back."""

    def __init__(self, session: ConsoleSession) -> None:
        self.session = session
        self.last: Output | None = None
        self.transcript = b""

    def _record(self, output: Output) -> str:
        self.last = output
        self.transcript += output.data
        return output.data.decode("utf-8", "replace")

    def start(self) -> str:
        return self._record(self.session.start())

    def send(self, data: bytes | str) -> str:
        raw = data.encode() if isinstance(data, str) else data
        return self._record(self.session.receive(raw))

    def line(self, text: str) -> str:
        return self.send(text + "\r")

    def tick(self) -> str:
        return self._record(self.session.tick())


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    app = make_app(tmp_path)
    yield app
    app.store.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_terminal(app: App, clock: FakeClock) -> Callable[..., Terminal]:
    def make(**options: Any) -> Terminal:
        return Terminal(ConsoleSession(AppBackend(app), clock, **options))

    return make


@pytest.fixture
def first_boot(make_terminal: Callable[..., Terminal]) -> Terminal:
    """A console on a box that has no admin password yet."""
    term = make_terminal()
    term.start()
    return term


@pytest.fixture
def at_login(app: App, make_terminal: Callable[..., Terminal]) -> Terminal:
    app.admin.set_password(PASSWORD, first_time=True)
    term = make_terminal()
    assert term.start().endswith("login: ")
    return term


@pytest.fixture
def logged_in(at_login: Terminal) -> Terminal:
    at_login.line("admin")
    assert at_login.line(PASSWORD).endswith("skillepunkt> ")
    return at_login


@pytest.fixture
def password() -> str:
    """The admin password the ``at_login`` and ``logged_in`` fixtures set."""
    return PASSWORD
