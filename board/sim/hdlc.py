"""Emulated HDLC D-channel: a SOCK_SEQPACKET socketpair, one frame per read.

That is the shape DAHDI's D-channel fds and libpri expect: the HDLC controller does
flags, bit stuffing and the FCS, and software reads or writes one whole frame per
system call. The firmware's Q.921 driver uses ``fd`` with ``os.read``/``os.write``
(or ``loop.add_reader``) as it would the real device; the virtual exchange (libpri,
later) takes ``peer``.
"""

from __future__ import annotations

import socket

MAX_FRAME = 1024  # Q.921 frames are at most 260 octets of information plus the header


class HdlcChannel:
    """One D-channel (``hdlc0``): ``fd`` is the firmware's end, ``peer`` the exchange's end."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.firmware, self.peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

    @property
    def fd(self) -> int:
        """The firmware's end as a plain file descriptor (blocking; the driver may change that)."""
        return self.firmware.fileno()

    @property
    def closed(self) -> bool:
        return self.firmware.fileno() < 0

    def close(self) -> None:
        self.firmware.close()
        self.peer.close()

    def __repr__(self) -> str:
        return f"<HdlcChannel {self.name}{' closed' if self.closed else ''}>"
