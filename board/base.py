"""What the firmware needs from a board, real or simulated."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from firmware.system.supervisor import Service

    from .definition import BoardDefinition


class BoardError(Exception):
    """A board could not be opened or a bus/device on it misbehaved."""


class Board(Protocol):
    name: str
    definition: BoardDefinition

    @property
    def console_device(self) -> str:
        """Device path of the serial console port that the firmware opens with pyserial."""
        ...

    @property
    def console_peer(self) -> str | None:
        """Sim only: the technician's end of the console cable (a pty path); None on hardware."""
        ...

    def services(self) -> list[Service]:
        """Services the board needs running (sim: the console cable, the PCM highway clock)."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-ready description: devices, buses, and (sim) attached virtual devices."""
        ...

    def close(self) -> None: ...
