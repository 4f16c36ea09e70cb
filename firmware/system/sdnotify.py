"""systemd's notify protocol (READY=1, STATUS=, WATCHDOG=1, STOPPING=1), spoken directly.

The protocol is one datagram on the AF_UNIX socket named by NOTIFY_SOCKET (a leading
'@' means the abstract namespace). Speaking it ourselves avoids a compiled dependency
and behaves the same on the box and on a laptop, where NOTIFY_SOCKET is unset and
every call is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address: str | None = env.get("NOTIFY_SOCKET") or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        self.watchdog_usec = (
            int(usec) if usec.isdigit() and (not pid or pid == str(os.getpid())) else 0
        )
        self._sock: socket.socket | None = None
        self._dropping = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines (e.g. ``notify(READY=1, STATUS="serving")``); False if off."""
        if self.address is None:
            return False
        payload = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        if self._sock is None:
            # non-blocking: a listener that stopped reading must never stall the event loop
            self._sock = socket.socket(
                socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
            )
        try:
            self._sock.sendto(payload, target)
        except BlockingIOError:
            if self._dropping:
                return False
            self._dropping = True  # say it once, not at every watchdog ping
            log.warning(
                "sd_notify dropped: the listener is not reading",
                extra={"payload": payload[:40].decode()},
            )
            return False
        except OSError as exc:  # systemd went away or the path is wrong: go on without it
            log.warning("sd_notify failed", extra={"error": str(exc)})
            return False
        self._dropping = False
        return True

    async def watchdog(self) -> None:
        """Ping WATCHDOG=1 at half the interval systemd asked for, until cancelled."""
        if not self.watchdog_usec:
            await asyncio.Event().wait()
        interval = self.watchdog_usec / 2_000_000
        while True:
            self.notify(WATCHDOG=1)
            await asyncio.sleep(interval)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
