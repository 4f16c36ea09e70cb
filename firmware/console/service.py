"""The serial console service: a serial port, the event loop, and a ``ConsoleSession``.

pyserial opens the port and sets the line up (speed, raw mode); the bytes then move
with plain non-blocking ``os.read``/``os.write`` on its descriptor under the event
loop's reader/writer callbacks, because pyserial's own ``write`` either blocks the loop
or, with ``write_timeout=0``, spins when the port's buffer is full.

A port that fails after it was open (a pty whose far end hung up reads EOF or EIO) is
closed and reopened, and the session is told to hang up (log out, keep any lockout).
Failing to open it at all is a crash, so the supervisor shows the error and retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import serial

from .backend import AppBackend
from .lineedit import CTRL_C
from .session import IDLE_TIMEOUT_S, LOCKOUT_S, ConsoleSession, Output

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger(__name__)

BAUDRATE = 115200
REOPEN_DELAY_S = 1.0
MAX_SILENT_FAILURES = 5  # port failures in a row with no byte received: give up, crash
_MAX_PENDING = 8 * 1024 * 1024  # bounds output queued while nobody reads (a pty left open)
_READ_SIZE = 4096


class ConsoleService:
    """Supervisor service "console": the technician's login on the serial port."""

    name = "console"

    def __init__(
        self,
        app: App,
        device: str,
        *,
        lockout_s: float = LOCKOUT_S,
        idle_timeout_s: float | None = IDLE_TIMEOUT_S,
        reopen_delay_s: float = REOPEN_DELAY_S,
        baudrate: int = BAUDRATE,
    ) -> None:
        self.app = app
        self.device = device
        self.lockout_s = lockout_s
        self.idle_timeout_s = idle_timeout_s
        self.reopen_delay_s = reopen_delay_s
        self.baudrate = baudrate
        self._session: ConsoleSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    def _open(self) -> serial.Serial:
        return serial.Serial(self.device, self.baudrate, timeout=0)

    def _greeting(self, loop: asyncio.AbstractEventLoop) -> tuple[ConsoleSession, Output]:
        """The session (kept across restarts, so a crash does not lift a lockout) and its
        first output: a banner when new, a fresh login prompt when carried over."""
        if self._session is not None and self._session_loop is loop:
            return self._session, self._session.hangup()
        self._session = ConsoleSession(
            AppBackend(self.app),
            loop.time,
            lockout_s=self.lockout_s,
            idle_timeout_s=self.idle_timeout_s,
        )
        self._session_loop = loop
        return self._session, self._session.start()

    async def run(self, ready: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        port = self._open()  # failing here is a fault for the supervisor to show
        is_open: serial.Serial | None = port
        log.info("serial console open", extra={"device": self.device})
        try:
            ready()
            session, output = self._greeting(loop)
            silent_failures = 0
            while True:
                link = Link(loop, port.fileno(), session)
                error = await link.serve(output)
                _close(port)
                is_open = None
                silent_failures = 0 if link.received else silent_failures + 1
                if silent_failures >= MAX_SILENT_FAILURES:
                    raise error
                log.warning(
                    "serial console port failed; reopening",
                    extra={"device": self.device, "error": str(error)},
                )
                await asyncio.sleep(self.reopen_delay_s)
                port = is_open = self._open()
                output = session.hangup()
        finally:
            if is_open is not None:
                _close(is_open)


def _close(port: serial.Serial) -> None:
    with contextlib.suppress(OSError):
        port.close()


class Link:
    """Moves bytes between one open port (a non-blocking descriptor) and the session until
    the port fails. Ctrl-C also throws away output not yet sent, as a tty does: at 115200
    baud a long "show config" would otherwise keep scrolling for many seconds."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, session: ConsoleSession) -> None:
        self._loop = loop
        self._fd = fd
        self._session = session
        self._pending = bytearray()
        self._writing = False
        self._timer: asyncio.TimerHandle | None = None
        self._done: asyncio.Future[OSError] = loop.create_future()
        self.received = 0

    @property
    def queued(self) -> int:
        """Bytes of output waiting for the port to take them."""
        return len(self._pending)

    async def serve(self, first: Output) -> OSError:
        """Run until the port fails; return that error. A bug in the session raises."""
        self._loop.add_reader(self._fd, self._on_readable)
        try:
            self._apply(first)
            return await self._done
        finally:
            self._loop.remove_reader(self._fd)
            self._stop_writing()
            if self._timer is not None:
                self._timer.cancel()
            with contextlib.suppress(OSError):  # last words, e.g. a prompt; never wait
                if self._pending:
                    os.write(self._fd, self._pending)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, _READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        if not data:
            self._fail(OSError(errno.EIO, "end of file: the other end hung up"))
            return
        self.received += len(data)
        if CTRL_C in data:
            self._pending.clear()
        self._call(self._session.receive, data)

    def _on_timer(self) -> None:
        self._timer = None
        self._call(self._session.tick)

    def _call(self, method: Callable[..., Output], *args: bytes) -> None:
        """Run a session method; a bug in it ends ``serve`` with that exception."""
        try:
            output = method(*args)
        except Exception as exc:
            if not self._done.done():
                self._done.set_exception(exc)
            return
        self._apply(output)

    def _apply(self, output: Output) -> None:
        if output.data:
            self._send(output.data)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if output.wake_at is not None and not self._done.done():
            self._timer = self._loop.call_at(output.wake_at, self._on_timer)

    def _send(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) > _MAX_PENDING:  # nobody is reading: keep the newest
            del self._pending[: len(self._pending) - _MAX_PENDING]
        self._flush()

    def _flush(self) -> None:
        while self._pending:
            try:
                n = os.write(self._fd, self._pending)
            except (BlockingIOError, InterruptedError):
                if not self._writing:
                    self._loop.add_writer(self._fd, self._flush)
                    self._writing = True
                return
            except OSError as exc:
                self._fail(exc)
                return
            del self._pending[:n]
        self._stop_writing()

    def _stop_writing(self) -> None:
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False

    def _fail(self, exc: OSError) -> None:
        self._stop_writing()
        if not self._done.done():
            self._done.set_result(exc)
