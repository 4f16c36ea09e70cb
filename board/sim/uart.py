"""A null-modem cable made of two ptys, so both ends of a sim UART are real serial devices.

The firmware opens ``device`` with pyserial exactly as it opens ``/dev/ttyS0`` on the
box; a technician's terminal (or a virtual device such as the DECT module) opens
``peer``. The relay copies bytes between the two pty masters on the event loop.

We keep both slave ends open ourselves: otherwise a master reads EIO, and polls
readable forever, whenever nobody has the slave open -- a technician closing picocom
would make the relay spin or die. The price is that bytes sent while the far end is
closed wait in the pty (bounded: beyond ``buffer_limit`` they are dropped and counted,
as an unread UART overruns) until someone opens that end; pyserial flushes its input
on open, so a pyserial client starts with fresh bytes only.
"""

from __future__ import annotations

import asyncio
import errno
import os
import tty
from collections.abc import Callable

CHUNK = 4096


class _Pty:
    """One pty pair: we hold both ends; others open ``path`` (the slave)."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        try:
            tty.setraw(self.slave)  # no echo, no line editing, no CR/LF mangling: a bare wire
            os.set_blocking(self.master, False)
            self.path = os.ttyname(self.slave)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1


class _Lane:
    """One direction of the cable: read from ``src`` master, write to ``dst`` master."""

    def __init__(self, src: _Pty, dst: _Pty, limit: int) -> None:
        self.src = src
        self.dst = dst
        self.limit = limit
        self.pending = bytearray()
        self.writing = False
        self.carried = 0
        self.dropped = 0


class NullModem:
    """Two ptys cross-wired; run it as a supervised service to carry bytes between them."""

    def __init__(self, label: str = "console", buffer_limit: int = 16384) -> None:
        self.name = f"sim-{label}-cable"
        self._a = _Pty()
        try:
            self._b = _Pty()
        except BaseException:
            self._a.close()
            raise
        self._lanes = (
            _Lane(self._a, self._b, buffer_limit),
            _Lane(self._b, self._a, buffer_limit),
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    @property
    def device(self) -> str:
        """The firmware's end (what pyserial opens, like /dev/ttyS0)."""
        return self._a.path

    @property
    def peer(self) -> str:
        """The far end: a technician's terminal or a virtual device."""
        return self._b.path

    @property
    def dropped(self) -> int:
        return sum(lane.dropped for lane in self._lanes)

    def stats(self) -> dict[str, int]:
        to_peer, to_device = self._lanes
        return {
            "to_peer": to_peer.carried,
            "to_device": to_device.carried,
            "dropped": self.dropped,
        }

    async def run(self, ready: Callable[[], None]) -> None:
        if self.closed:
            raise RuntimeError(f"{self.name}: cable is closed")
        loop = asyncio.get_running_loop()
        self._loop = loop
        try:
            for lane in self._lanes:
                loop.add_reader(lane.src.master, self._on_readable, lane)
            for lane in self._lanes:
                self._flush(lane)  # bytes left over from a previous run
            ready()
            await asyncio.Future()  # serve until cancelled
        finally:
            self._unregister()

    def _unregister(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None or loop.is_closed():
            return
        for lane in self._lanes:
            if lane.src.master >= 0:
                loop.remove_reader(lane.src.master)
            if lane.writing and lane.dst.master >= 0:
                loop.remove_writer(lane.dst.master)
            lane.writing = False

    def _on_readable(self, lane: _Lane) -> None:
        try:
            data = os.read(lane.src.master, CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:  # cannot happen while we hold the slave; harmless if so
                return
            raise
        room = max(lane.limit - len(lane.pending), 0)
        if len(data) > room:
            lane.dropped += len(data) - room
            data = data[:room]
        lane.carried += len(data)
        lane.pending += data
        self._flush(lane)

    def _flush(self, lane: _Lane) -> None:
        if lane.pending:
            try:
                written = os.write(lane.dst.master, lane.pending)
            except BlockingIOError:  # the far end's input queue is full: wait until it drains
                written = 0
            del lane.pending[:written]
        loop = self._loop
        if loop is None:
            return
        if lane.pending and not lane.writing:
            loop.add_writer(lane.dst.master, self._flush, lane)
            lane.writing = True
        elif not lane.pending and lane.writing:
            loop.remove_writer(lane.dst.master)
            lane.writing = False

    def close(self) -> None:
        """Unplug the cable: stop relaying and close all four pty fds."""
        if self.closed:
            return
        self.closed = True
        self._unregister()
        self._a.close()
        self._b.close()
