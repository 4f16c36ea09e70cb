"""Emulated GPIO chip: lines with levels, directions and edge events delivered through an fd.

Drivers written against python-periphery's character-device ``GPIO`` (``read``,
``write``, ``direction``, ``edge``, ``poll``, ``read_event``, ``fd``) run unchanged
on a ``SimGpioLine``. The edge events really go through a file descriptor (a pipe
carrying one fixed-size record per event, as the kernel's line fd does), so a driver
that waits with ``select`` or ``loop.add_reader(line.fd, ...)`` is exercised for real.

The hardware side of the chip (chip models, virtual devices) drives input lines with
``drive()`` -- that is how a SLIC raises its IRQ -- and observes outputs (reset lines,
LEDs) with ``level()``. Edges are reported on the line's logical value (after
``inverted``), as the kernel reports them for active-low lines.
"""

from __future__ import annotations

import errno
import os
import select
import struct
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import NamedTuple

from periphery import GPIOError

DIRECTIONS = ("in", "out", "high", "low")
EDGES = ("none", "rising", "falling", "both")
BIASES = ("default", "pull_up", "pull_down", "disable")
DRIVES = ("default", "open_drain", "open_source")

_EVENT = struct.Struct("=QI4x")  # timestamp_ns, edge id; small enough to be written atomically
_RISING, _FALLING = 1, 2


class EdgeEvent(NamedTuple):
    """Same fields as ``periphery.EdgeEvent``: ``"rising"``/``"falling"`` and a timestamp in ns."""

    edge: str
    timestamp: int


class SimGpioError(GPIOError):
    """A GPIO error; carries an errno where the kernel would have returned one."""

    def __init__(self, code: int | None, message: str) -> None:
        if code is None:
            super().__init__(None, message)
        else:
            super().__init__(code, f"{message}: {os.strerror(code)}")


class _LineState:
    """Hardware state of one line, whether or not software has it open."""

    __slots__ = ("driven", "name", "owner")

    def __init__(self, name: str) -> None:
        self.name = name
        self.driven: bool | None = None  # what the hardware side drives; None = nobody
        self.owner: SimGpioLine | None = None


class SimGpioChip:
    """A GPIO controller (``gpio0``) with ``lines`` lines, optionally named like the board's."""

    def __init__(
        self,
        lines: int = 64,
        name: str = "gpio0",
        label: str = "skillepunkt-sim",
        line_names: Mapping[int, str] | None = None,
    ) -> None:
        if lines < 1:
            raise ValueError("a GPIO chip needs at least one line")
        names = dict(line_names or {})
        self.name = name
        self.label = label
        self._lines = [_LineState(names.get(i, "")) for i in range(lines)]
        self.closed = False

    @property
    def lines(self) -> int:
        return len(self._lines)

    def _state(self, line: int) -> _LineState:
        if not isinstance(line, int) or isinstance(line, bool) or not 0 <= line < len(self._lines):
            raise SimGpioError(errno.EINVAL, f"{self.name}: no line {line!r}")
        return self._lines[line]

    def find(self, name: str) -> int:
        for i, st in enumerate(self._lines):
            if st.name == name:
                return i
        raise LookupError(f'Opening GPIO line: GPIO line "{name}" not found by name.')

    def line_name(self, line: int) -> str:
        return self._state(line).name

    # --- software side (what a driver does through periphery) ------------------------

    def open(
        self,
        line: int | str,
        direction: str,
        edge: str = "none",
        bias: str = "default",
        drive: str = "default",
        inverted: bool = False,
        label: str | None = None,
    ) -> SimGpioLine:
        """Request a line, as ``periphery.GPIO(path, line, direction, ...)`` does."""
        if not isinstance(line, int | str):
            raise TypeError("Invalid line type, should be integer or string.")
        _check_choice("direction", direction, DIRECTIONS)
        _check_choice("edge", edge, EDGES)
        _check_choice("bias", bias, BIASES)
        _check_choice("drive", drive, DRIVES)
        if not isinstance(inverted, bool):
            raise TypeError("Invalid inverted type, should be bool.")
        if not isinstance(label, str | None):
            raise TypeError("Invalid label type, should be None or str.")
        if self.closed:
            raise SimGpioError(errno.EBADF, f"Opening GPIO chip {self.name}")
        number = self.find(line) if isinstance(line, str) else line
        st = self._state(number)
        if st.owner is not None:
            raise SimGpioError(
                errno.EBUSY, f"Opening line {self.name}.{number}: held by {st.owner.label!r}"
            )
        gpio = SimGpioLine(self, number, direction, edge, bias, drive, inverted, label)
        st.owner = gpio  # no event for the level found at request time, as with the kernel
        return gpio

    # --- hardware side (chip models, virtual devices) --------------------------------

    def drive(self, line: int, value: bool, timestamp_ns: int | None = None) -> None:
        """Drive an input line from the hardware side (a chip's IRQ output, a button)."""
        st = self._state(line)
        owner = st.owner
        if owner is not None and owner.direction == "out":
            raise SimGpioError(
                errno.EBUSY, f"{self.name}.{line}: contention, software drives it as an output"
            )
        before = self._physical(st)
        st.driven = bool(value)
        self._settle(st, before, timestamp_ns)

    def release(self, line: int, timestamp_ns: int | None = None) -> None:
        """Stop driving a line: it floats to its bias (high with pull_up, else low)."""
        st = self._state(line)
        before = self._physical(st)
        st.driven = None
        self._settle(st, before, timestamp_ns)

    def level(self, line: int) -> bool:
        """Physical level of a line, e.g. to see whether the firmware holds a chip in reset."""
        return self._physical(self._state(line))

    def level_probe(self, line: int) -> Callable[[], bool]:
        """``level(line)`` as a function, the line checked once (for a model asking often)."""
        st = self._state(line)
        physical = self._physical
        return lambda: physical(st)

    def owner(self, line: int) -> SimGpioLine | None:
        return self._state(line).owner

    def close(self) -> None:
        for st in self._lines:
            if st.owner is not None:
                st.owner.close()
        self.closed = True

    # --- internals ------------------------------------------------------------------

    @staticmethod
    def _physical(st: _LineState) -> bool:
        owner = st.owner
        if owner is not None and owner._output is not None:
            return owner._output
        if st.driven is not None:
            return st.driven
        return owner is not None and owner.bias == "pull_up"

    def _settle(self, st: _LineState, before: bool, timestamp_ns: int | None) -> None:
        """Report an edge to the line's owner if a change of state moved the level."""
        after = self._physical(st)
        if after != before and st.owner is not None:
            st.owner._level_changed(after, timestamp_ns)

    def _release(self, line: int, gpio: SimGpioLine) -> None:
        st = self._lines[line]
        if st.owner is gpio:
            st.owner = None

    def _reconfigure(self, gpio: SimGpioLine, change: Callable[[], None]) -> None:
        """Apply a software-side change to a line, reporting the edge it may cause."""
        st = self._lines[gpio.line]
        before = self._physical(st)
        change()
        self._settle(st, before, None)


def _check_choice(what: str, value: object, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str):
        raise TypeError(f"Invalid {what} type, should be string.")
    if value not in choices:
        raise ValueError(f"Invalid {what}, can be: {', '.join(repr(c) for c in choices)}.")


class SimGpioLine:
    """A requested line with python-periphery's character-device ``GPIO`` shape."""

    def __init__(
        self,
        chip: SimGpioChip,
        line: int,
        direction: str,
        edge: str,
        bias: str,
        drive: str,
        inverted: bool,
        label: str | None,
    ) -> None:
        self._chip: SimGpioChip | None = chip
        self._line = line
        self._label = "periphery" if label is None else label
        self._bias = bias
        self._drive = drive
        self._inverted = inverted
        self._edge = "none"
        self._output: bool | None = None  # physical level driven, when an output
        self.dropped_events = 0
        self._rfd, self._wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._apply(direction=direction, edge=edge)

    def __enter__(self) -> SimGpioLine:
        return self

    def __exit__(
        self,
        t: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _live(self, what: str) -> SimGpioChip:
        if self._chip is None or self._chip.closed:
            raise SimGpioError(errno.EBADF, f"{what}: line {self._line} is closed")
        return self._chip

    def _apply(
        self,
        direction: str | None = None,
        edge: str | None = None,
        bias: str | None = None,
        drive: str | None = None,
        inverted: bool | None = None,
    ) -> None:
        """Reconfigure like periphery's reopen: pending events are lost, outputs get a value."""
        if direction is not None:
            self._output = None if direction == "in" else (direction == "high")
            self._edge = "none"
        if edge is not None and self._output is None:
            self._edge = edge
        if bias is not None:
            self._bias = bias
        if drive is not None:
            self._drive = drive
        if inverted is not None:
            self._inverted = inverted
        self._drain()

    def _set_output(self, physical: bool) -> None:
        self._output = physical

    def _drain(self) -> None:
        try:
            while os.read(self._rfd, 4096):
                pass
        except BlockingIOError:
            pass

    def _level_changed(self, physical: bool, timestamp_ns: int | None) -> None:
        if self._output is not None or self._edge == "none":
            return
        logical = physical ^ self._inverted
        if self._edge != "both" and self._edge != ("rising" if logical else "falling"):
            return
        ts = time.time_ns() if timestamp_ns is None else timestamp_ns
        record = _EVENT.pack(ts, _RISING if logical else _FALLING)
        try:
            os.write(self._wfd, record)
        except BlockingIOError:  # the event queue is full: the kernel drops it too
            self.dropped_events += 1

    # --- periphery.GPIO methods ------------------------------------------------------

    def read(self) -> bool:
        chip = self._live("Getting line value")
        return chip.level(self._line) ^ self._inverted

    def write(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError("Invalid value type, should be bool.")
        chip = self._live("Setting line value")
        if self._output is None:
            raise SimGpioError(errno.EPERM, "Invalid operation: cannot write to input GPIO")
        chip._reconfigure(self, lambda: self._set_output(value ^ self._inverted))

    def poll(self, timeout: float | None = None) -> bool:
        """Wait for an edge event; True if one is queued (consume it with ``read_event``)."""
        if not isinstance(timeout, int | float | None) or isinstance(timeout, bool):
            raise TypeError("Invalid timeout type, should be integer, float, or None.")
        self._live("Polling line")
        if self._output is not None:
            raise SimGpioError(None, "Invalid operation: cannot poll output GPIO")
        ms = None if timeout is None or timeout < 0 else timeout * 1000
        p = select.poll()
        p.register(self._rfd, select.POLLIN)
        return bool(p.poll(ms))

    def read_event(self) -> EdgeEvent:
        """Take the oldest queued edge event, blocking until there is one (as the kernel does)."""
        self._live("Reading GPIO event")
        if self._output is not None:
            raise SimGpioError(None, "Invalid operation: cannot read event of output GPIO")
        if self._edge == "none":
            raise SimGpioError(None, "Invalid operation: GPIO edge not set")
        while True:
            try:
                record = os.read(self._rfd, _EVENT.size)
                break
            except BlockingIOError:
                self.poll(None)
        timestamp, edge_id = _EVENT.unpack(record)
        return EdgeEvent("rising" if edge_id == _RISING else "falling", timestamp)

    def close(self) -> None:
        if self._chip is None:
            return
        self._chip._release(self._line, self)
        self._chip = None
        os.close(self._rfd)
        os.close(self._wfd)

    # --- properties ------------------------------------------------------------------

    @property
    def fd(self) -> int:
        """Readable whenever an edge event is queued: hand it to select or loop.add_reader."""
        return self._rfd

    @property
    def line(self) -> int:
        return self._line

    @property
    def devpath(self) -> str:
        return f"sim:{self._chip.name if self._chip else '?'}"

    @property
    def name(self) -> str:
        return self._live("Getting line name").line_name(self._line)

    @property
    def label(self) -> str:
        return self._label

    @property
    def chip_name(self) -> str:
        return self._live("Getting chip name").name

    @property
    def chip_label(self) -> str:
        return self._live("Getting chip label").label

    @property
    def direction(self) -> str:
        return "in" if self._output is None else "out"

    @direction.setter
    def direction(self, direction: str) -> None:
        _check_choice("direction", direction, DIRECTIONS)
        if direction == self.direction:
            return
        self._live("Setting direction")._reconfigure(self, lambda: self._apply(direction=direction))

    @property
    def edge(self) -> str:
        return self._edge

    @edge.setter
    def edge(self, edge: str) -> None:
        _check_choice("edge", edge, EDGES)
        chip = self._live("Setting edge")
        if self._output is not None:
            raise SimGpioError(None, "Invalid operation: cannot set edge on output GPIO")
        if edge != self._edge:
            chip._reconfigure(self, lambda: self._apply(edge=edge))

    @property
    def bias(self) -> str:
        return self._bias

    @bias.setter
    def bias(self, bias: str) -> None:
        _check_choice("bias", bias, BIASES)
        if bias != self._bias:
            self._live("Setting bias")._reconfigure(self, lambda: self._apply(bias=bias))

    @property
    def drive(self) -> str:
        return self._drive

    @drive.setter
    def drive(self, drive: str) -> None:
        _check_choice("drive", drive, DRIVES)
        chip = self._live("Setting drive")
        if self._output is None and drive != "default":
            raise SimGpioError(None, "Invalid operation: cannot set line drive on input GPIO")
        if drive != self._drive:
            chip._reconfigure(self, lambda: self._apply(drive=drive))

    @property
    def inverted(self) -> bool:
        return self._inverted

    @inverted.setter
    def inverted(self, inverted: bool) -> None:
        if not isinstance(inverted, bool):
            raise TypeError("Invalid inverted type, should be bool.")
        if inverted != self._inverted:
            self._live("Setting inverted")._reconfigure(
                self, lambda: self._apply(inverted=inverted)
            )

    def __repr__(self) -> str:
        state = "closed" if self._chip is None else f"{self.direction}, edge={self._edge}"
        return f"<SimGpioLine {self.devpath}.{self._line} {state}>"
