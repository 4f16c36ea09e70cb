"""RTP packets (RFC 3550 §5.1): parse and serialize the fixed header, CSRCs, extension.

API::

    pkt = parse_rtp(data)           # RtpPacket, or RtpError for anything malformed
    data = pkt.to_bytes()           # exact inverse for packets without padding
    data = build_rtp(pt, seq, ts, ssrc, payload, marker=True)  # the common case, no object

`RtpPacket` is an immutable value; derive variants with ``pkt.replace(sequence=...)``.
Padding is stripped on parse (``padding`` keeps its length) and regenerated on
serialize, so SRTP/relay code never sees pad bytes as payload.

This runs once per packet per direction, so parsing is one ``struct.unpack_from`` for the
fixed header and slicing for the rest; no per-field objects are built.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass

__all__ = [
    "RTP_HEADER_SIZE",
    "RTP_VERSION",
    "RtpError",
    "RtpExtension",
    "RtpPacket",
    "build_rtp",
    "parse_rtp",
]

RTP_VERSION = 2
RTP_HEADER_SIZE = 12

_FIXED = struct.Struct("!BBHII")
_EXT = struct.Struct("!HH")


class RtpError(ValueError):
    """A datagram that is not a well-formed RTP packet; the message says why."""


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """The header extension (RFC 3550 §5.3.1): a 16-bit profile id and 32-bit words."""

    profile: int
    data: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.profile <= 0xFFFF:
            raise RtpError(f"extension profile {self.profile} out of range")
        if len(self.data) % 4 or len(self.data) > 0xFFFF * 4:
            raise RtpError("extension data must be whole 32-bit words (at most 65535)")


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet. Field ranges are checked on construction."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding: int = 0  # pad bytes after the payload (0: no P bit)

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise RtpError(f"payload type {self.payload_type} out of range 0-127")
        if not 0 <= self.sequence <= 0xFFFF:
            raise RtpError(f"sequence number {self.sequence} out of range")
        if not 0 <= self.timestamp <= 0xFFFFFFFF:
            raise RtpError(f"timestamp {self.timestamp} out of range")
        if not 0 <= self.ssrc <= 0xFFFFFFFF:
            raise RtpError(f"SSRC {self.ssrc} out of range")
        if len(self.csrc) > 15 or any(not 0 <= c <= 0xFFFFFFFF for c in self.csrc):
            raise RtpError("at most 15 CSRCs, each 32-bit")
        if not 0 <= self.padding <= 255:
            raise RtpError(f"padding {self.padding} out of range 0-255")

    def replace(self, **changes: object) -> RtpPacket:
        """A copy with some fields changed (validated like a new packet)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def to_bytes(self) -> bytes:
        """The packet on the wire."""
        first = 0x80 | len(self.csrc)
        parts = []
        if self.padding:
            first |= 0x20
        if self.extension is not None:
            first |= 0x10
        parts.append(
            _FIXED.pack(
                first,
                (0x80 if self.marker else 0) | self.payload_type,
                self.sequence,
                self.timestamp,
                self.ssrc,
            )
        )
        if self.csrc:
            parts.append(struct.pack(f"!{len(self.csrc)}I", *self.csrc))
        if self.extension is not None:
            ext = self.extension
            parts.append(_EXT.pack(ext.profile, len(ext.data) // 4))
            parts.append(ext.data)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)


def build_rtp(
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    marker: bool = False,
) -> bytes:
    """A plain RTP packet (no CSRC, extension or padding) without building an object.

    Values are masked to their field widths, so callers may pass running counters.
    """
    return (
        _FIXED.pack(
            0x80,
            (0x80 if marker else 0) | (payload_type & 0x7F),
            sequence & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc & 0xFFFFFFFF,
        )
        + payload
    )


def parse_rtp(data: bytes | bytearray | memoryview) -> RtpPacket:
    """Parse one RTP packet; `RtpError` says what is wrong with a malformed one."""
    data = bytes(data)
    size = len(data)
    if size < RTP_HEADER_SIZE:
        raise RtpError(f"{size} bytes is shorter than the 12-byte RTP header")
    first, second, sequence, timestamp, ssrc = _FIXED.unpack_from(data)
    if first >> 6 != RTP_VERSION:
        raise RtpError(f"RTP version {first >> 6}, expected 2")
    payload_type = second & 0x7F
    if 72 <= payload_type <= 76:
        # RFC 5761 §4: these would be RTCP SR/RR/SDES/BYE/APP with the marker set.
        raise RtpError(f"payload type {payload_type} collides with RTCP (an RTCP packet?)")
    offset = RTP_HEADER_SIZE
    count = first & 0x0F
    csrc: tuple[int, ...] = ()
    if count:
        end = offset + 4 * count
        if end > size:
            raise RtpError(f"{count} CSRCs do not fit in {size} bytes")
        csrc = struct.unpack_from(f"!{count}I", data, offset)
        offset = end
    extension = None
    if first & 0x10:
        if offset + 4 > size:
            raise RtpError("header extension flagged but truncated")
        profile, words = _EXT.unpack_from(data, offset)
        end = offset + 4 + 4 * words
        if end > size:
            raise RtpError(f"header extension of {words} words does not fit")
        extension = RtpExtension(profile, data[offset + 4 : end])
        offset = end
    padding = 0
    if first & 0x20:
        padding = data[-1]
        if padding == 0 or offset + padding > size:
            raise RtpError(f"bad padding length {padding}")
    return RtpPacket(
        payload_type,
        sequence,
        timestamp,
        ssrc,
        data[offset : size - padding],
        bool(second & 0x80),
        csrc,
        extension,
        padding,
    )
