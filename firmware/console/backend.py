"""What the console session needs from the rest of the firmware, and the App that provides it.

The session is sans-I/O; everything it reads or changes goes through this narrow
interface so tests can drive it with a real App on a temporary data directory, and so
the session never holds the App's moving parts itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..config import SECTIONS, Problem
from ..config.admin import password_problems
from ..system.supervisor import ServiceStatus

if TYPE_CHECKING:
    from ..app import App


@dataclass(frozen=True)
class VersionInfo:
    firmware: str
    board: str
    hostname: str
    uptime_s: float  # since the firmware process started


class ConsoleBackend(Protocol):
    def admin_is_set(self) -> bool: ...

    def verify_admin(self, password: str) -> bool: ...

    def set_admin_password(self, password: str, *, first_time: bool) -> None:
        """Raises ``ConfigError`` (with every problem) when the password is refused."""
        ...

    def password_problems(self, password: str) -> list[Problem]: ...

    def hostname(self) -> str: ...

    def version(self) -> VersionInfo: ...

    def services(self) -> list[ServiceStatus]: ...

    def overall(self) -> str: ...

    def config_document(self) -> dict[str, Any]:
        """The whole configuration, secrets included (the session masks them)."""
        ...

    def sections(self) -> tuple[str, ...]: ...


class AppBackend:
    """``ConsoleBackend`` over the running ``App``."""

    def __init__(self, app: App, wall_clock: Callable[[], float] = time.time) -> None:
        self._app = app
        self._wall_clock = wall_clock  # App.started_at is wall-clock time

    def admin_is_set(self) -> bool:
        return self._app.admin.is_set()

    def verify_admin(self, password: str) -> bool:
        return self._app.admin.verify(password)

    def set_admin_password(self, password: str, *, first_time: bool) -> None:
        self._app.admin.set_password(password, first_time=first_time)

    def password_problems(self, password: str) -> list[Problem]:
        return password_problems(password)

    def hostname(self) -> str:
        return str(self._app.store.section("system")["hostname"])

    def version(self) -> VersionInfo:
        return VersionInfo(
            firmware=self._app.version,
            board=self._app.board.name,
            hostname=self.hostname(),
            uptime_s=max(0.0, self._wall_clock() - self._app.started_at),
        )

    def services(self) -> list[ServiceStatus]:
        return self._app.supervisor.status()

    def overall(self) -> str:
        return self._app.supervisor.overall()

    def config_document(self) -> dict[str, Any]:
        return self._app.store.document()

    def sections(self) -> tuple[str, ...]:
        return SECTIONS
