"""What the analog port drivers report, and the plumbing both drivers share.

Events are plain frozen dataclasses: ``port`` names the port (``fxs1``), ``at`` is the
driver's clock time the condition began (a hang-up is dated when the handset went
down, even though it is only known ``flash_max_ms`` later).

The shared plumbing keeps the drivers sans-I/O: a driver's init sequence is a
generator that yields how long it wants to wait, so the same sequence runs with
``time.sleep``, a fake clock in tests, or ``asyncio.sleep`` in ``PortRunner``, the
thin adapter that services the chip's IRQ through the GPIO line's edge fd.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Protocol

# --- events ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OffHook:
    port: str
    at: float


@dataclass(frozen=True)
class OnHook:
    port: str
    at: float


@dataclass(frozen=True)
class HookFlash:
    port: str
    at: float
    duration_ms: float


@dataclass(frozen=True)
class RingStart:
    port: str
    at: float


@dataclass(frozen=True)
class RingStop:
    port: str
    at: float
    duration_ms: float


@dataclass(frozen=True)
class RingingEnded:
    """No ring burst followed within the ring-cycle timeout: the caller gave up."""

    port: str
    at: float


@dataclass(frozen=True)
class PolarityReversal:
    port: str
    at: float
    reversed: bool  # the new polarity: True = reversed relative to the idle line


@dataclass(frozen=True)
class LoopCurrentDrop:
    port: str
    at: float


@dataclass(frozen=True)
class LoopCurrentRestored:
    port: str
    at: float
    duration_ms: float  # how long the current was gone (shorter than a disconnect)


@dataclass(frozen=True)
class Disconnect:
    """Loop current gone for longer than the disconnect time while seized."""

    port: str
    at: float


AnalogEvent = (
    OffHook
    | OnHook
    | HookFlash
    | RingStart
    | RingStop
    | RingingEnded
    | PolarityReversal
    | LoopCurrentDrop
    | LoopCurrentRestored
    | Disconnect
)


# --- errors ------------------------------------------------------------------------------


class ChipError(Exception):
    """A chip did not answer or behave as its register map says; names the register."""

    def __init__(self, port: str, register: int | str, value: int | None, code: int, why: str):
        self.port = port
        self.register = register
        self.value = value
        self.errno = code
        shown = "" if value is None else f" = 0x{value:02x}"
        super().__init__(
            f"{port}: {why} (register {register}{shown}; {errno.errorcode.get(code, code)}: "
            f"{os.strerror(code)})"
        )


# --- bus shapes (python-periphery's SPI and GPIO, or the sim's) -----------------------


class SpiDevice(Protocol):
    def transfer(self, data: bytes) -> bytes: ...


class GpioLine(Protocol):
    def read(self) -> bool: ...

    def write(self, value: bool) -> None: ...

    @property
    def fd(self) -> int: ...

    def poll(self, timeout: float | None = None) -> bool: ...


Clock = Callable[[], float]
Steps = Generator[float, None, None]  # yields seconds to wait before continuing


def run_steps(steps: Steps, sleep: Callable[[float], None]) -> None:
    """Run an init sequence synchronously, sleeping with ``sleep`` between steps."""
    for delay in steps:
        sleep(delay)


async def run_steps_async(steps: Steps) -> None:
    for delay in steps:
        await asyncio.sleep(delay)


class PortDriver(Protocol):
    """What ``PortRunner`` needs from a driver core."""

    port: str

    def init_steps(self) -> Steps: ...

    def handle_interrupt(self, now: float) -> None: ...

    def poll(self, now: float) -> None: ...

    def next_deadline(self) -> float | None: ...

    def take_events(self) -> list[AnalogEvent]: ...


class PortRunner:
    """Asyncio adapter: init, then IRQs from the edge fd and timers from ``call_at``.

    ``irq`` is the chip's INT line opened as a plain (not inverted) input with
    ``edge="falling"``: INT is active low and open drain on both chips.

    The driver's clock must be the loop's clock (``loop.time``), since deadlines are
    handed to ``call_at``. Also usable as a supervisor service (``name``, ``run``).
    """

    def __init__(
        self,
        driver: PortDriver,
        irq: GpioLine,
        on_event: Callable[[AnalogEvent], None],
        read_edge: Callable[[], object] | None = None,
    ) -> None:
        self.driver = driver
        self.irq = irq
        self.on_event = on_event
        self.name = f"port-{driver.port}"
        self._read_edge = read_edge or getattr(irq, "read_event", None)
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.interrupts = 0

    async def run(self, ready: Callable[[], None]) -> None:
        await run_steps_async(self.driver.init_steps())
        loop = self._loop = asyncio.get_running_loop()
        loop.add_reader(self.irq.fd, self._on_edge)
        try:
            ready()
            self._service()  # a level already low at start is not an edge
            await asyncio.Event().wait()
        finally:
            loop.remove_reader(self.irq.fd)
            if self._timer is not None:
                self._timer.cancel()

    def _on_edge(self) -> None:
        while self.irq.poll(0):
            if self._read_edge is None:
                break
            self._read_edge()
        self.interrupts += 1
        self._service()

    def _service(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        for _ in range(4):  # INT is active low: serve while the chip holds it low
            if self.irq.read():
                break
            self.driver.handle_interrupt(now)
        self.driver.poll(now)
        for event in self.driver.take_events():
            self.on_event(event)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.driver.next_deadline()
        if deadline is not None:
            self._timer = loop.call_at(max(deadline, now + 0.001), self._service)
