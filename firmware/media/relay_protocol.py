"""The messages between the SIP process and its media relay workers, as bytes (sans-I/O).

A relay worker (`firmware.media.relay_workers`) runs plain `RelaySession`s; the SIP
process drives them with a handful of commands over one Unix stream socket per worker.
Packets never cross it: only signalling-rate traffic does (a few commands per call,
one batch of counters a second). Each frame is a 4-byte big-endian length and a body
of a 1-byte kind, a 4-byte request id (0 for unsolicited messages) and the fields of
that kind, packed with `struct`. Every command gets exactly one response carrying its
request id (`Opened`, `Done`, `Closed` or `Failed`).

`FrameDecoder` turns a byte stream back into messages: feed it whatever the socket
gave, get the complete messages. A frame longer than `MAX_FRAME`, an unknown kind or a
body that does not parse is a `ProtocolError`; the link is then dropped (both ends are
ours, so that is a bug, not a peer to be lenient with).

Counters travel as fixed-size `SNAPSHOT` records (one per session) so that the SIP
process can keep each session's latest record as bytes and decode it only when
somebody asks (`decode_snapshot`).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from firmware.media.latch import Addr
from firmware.media.relay import FlowStats, RelayStats

#: Largest frame accepted: a counters batch of ~17,000 sessions.
MAX_FRAME: Final = 4 * 1024 * 1024
_LENGTH = struct.Struct("!I")
_HEAD = struct.Struct("!BI")  # kind, request id
_STR = struct.Struct("!H")
_OPEN = struct.Struct("!dh")  # relatch_after, dscp (-1: none)
_SET = struct.Struct("!IBHi")  # session, leg (0 A, 1 B), port, rtcp port (-1: port + 1)
_SESSION = struct.Struct("!I")
_OPENED = struct.Struct("!IHH")  # session, port A, port B
_READY = struct.Struct("!IHH")  # pid, first port, last port
_FLOWS = 4  # rtp a->b, rtp b->a, rtcp a->b, rtcp b->a
_FIELDS = 6  # FlowStats fields
_ADDR = "B16sH"  # family (0 none, 4, 6), packed address, port
#: One session's counters: session id, 4 flows x 6 counters, both latched sources.
SNAPSHOT: Final = struct.Struct("!I" + "Q" * (_FLOWS * _FIELDS) + _ADDR * 2)


class ProtocolError(ValueError):
    """A frame that is not one of the messages below (a bug on the other end)."""


class FailureKind(IntEnum):
    """Why a command failed; the SIP side raises the matching exception."""

    EXHAUSTED = 1  # PortsExhaustedError: the worker's port range is full
    OS = 2  # OSError (binding failed)
    VALUE = 3  # ValueError (bad address)
    UNKNOWN_SESSION = 4  # the session id is not (or no longer) in this worker
    INTERNAL = 5  # anything else: a bug in the worker


class Kind(IntEnum):
    OPEN = 1
    SET_REMOTE = 2
    CLOSE = 3
    READY = 10
    OPENED = 11
    DONE = 12
    CLOSED = 13
    FAILED = 14
    SNAPSHOTS = 15


@dataclass(frozen=True, slots=True)
class Open:
    """Open a `RelaySession` on ``address``."""

    request: int
    address: str
    relatch_after: float
    dscp: int | None


@dataclass(frozen=True, slots=True)
class SetRemote:
    """`RelaySession.set_remote` of session ``session``; ``leg`` 0 is A, 1 is B."""

    request: int
    session: int
    leg: int
    host: str | None
    port: int
    rtcp_port: int | None


@dataclass(frozen=True, slots=True)
class Close:
    request: int
    session: int


@dataclass(frozen=True, slots=True)
class Ready:
    """The worker is up (sent once, unsolicited)."""

    pid: int
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class Opened:
    request: int
    session: int
    port_a: int
    port_b: int


@dataclass(frozen=True, slots=True)
class Done:
    """A command with nothing to return succeeded."""

    request: int


@dataclass(frozen=True, slots=True)
class Closed:
    """The session is closed; ``snapshot`` holds its counters as they were at close."""

    request: int
    session: int
    snapshot: bytes


@dataclass(frozen=True, slots=True)
class Failed:
    request: int
    kind: FailureKind
    message: str
    errno: int = 0


@dataclass(frozen=True, slots=True)
class Snapshots:
    """Counters of the sessions that changed since the last batch (unsolicited):
    ``records`` is a run of `SNAPSHOT` records."""

    records: bytes


Message = Open | SetRemote | Close | Ready | Opened | Done | Closed | Failed | Snapshots
Command = Open | SetRemote | Close
Response = Opened | Done | Closed | Failed


def _str(text: str) -> bytes:
    raw = text.encode()
    if len(raw) > 0xFFFF:
        raise ProtocolError("string too long for a frame field")
    return _STR.pack(len(raw)) + raw


def encode(message: Message) -> bytes:
    """One frame (length prefix included)."""
    body: bytes
    match message:
        case Open(request, address, relatch_after, dscp):
            body = (
                _HEAD.pack(Kind.OPEN, request)
                + _OPEN.pack(relatch_after, -1 if dscp is None else dscp)
                + _str(address)
            )
        case SetRemote(request, session, leg, host, port, rtcp_port):
            body = (
                _HEAD.pack(Kind.SET_REMOTE, request)
                + _SET.pack(session, leg, port, -1 if rtcp_port is None else rtcp_port)
                + (b"" if host is None else _str(host))
            )
        case Close(request, session):
            body = _HEAD.pack(Kind.CLOSE, request) + _SESSION.pack(session)
        case Ready(pid, first, last):
            body = _HEAD.pack(Kind.READY, 0) + _READY.pack(pid, first, last)
        case Opened(request, session, port_a, port_b):
            body = _HEAD.pack(Kind.OPENED, request) + _OPENED.pack(session, port_a, port_b)
        case Done(request):
            body = _HEAD.pack(Kind.DONE, request)
        case Closed(request, session, snapshot):
            body = _HEAD.pack(Kind.CLOSED, request) + _SESSION.pack(session) + snapshot
        case Failed(request, kind, text, err):
            body = _HEAD.pack(Kind.FAILED, request) + struct.pack("!Bi", kind, err) + _str(text)
        case Snapshots(records):
            body = _HEAD.pack(Kind.SNAPSHOTS, 0) + records
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"frame of {len(body)} bytes is over {MAX_FRAME}")
    return _LENGTH.pack(len(body)) + body


def _read_str(body: bytes, offset: int) -> tuple[str, int]:
    (n,) = _STR.unpack_from(body, offset)
    offset += _STR.size
    if offset + n > len(body):
        raise ProtocolError("string field runs past the frame")
    return body[offset : offset + n].decode(), offset + n


def decode(body: bytes) -> Message:
    """One frame body (without its length prefix) -> its message."""
    try:
        kind, request = _HEAD.unpack_from(body)
        at = _HEAD.size
        message: Message
        if kind == Kind.OPEN:
            relatch_after, dscp = _OPEN.unpack_from(body, at)
            address, at = _read_str(body, at + _OPEN.size)
            message = Open(request, address, relatch_after, None if dscp < 0 else dscp)
        elif kind == Kind.SET_REMOTE:
            session, leg, port, rtcp = _SET.unpack_from(body, at)
            at += _SET.size
            host = None
            if at < len(body):
                host, at = _read_str(body, at)
            if leg not in (0, 1):
                raise ProtocolError(f"no leg {leg}")
            message = SetRemote(request, session, leg, host, port, None if rtcp < 0 else rtcp)
        elif kind == Kind.CLOSE:
            (session,) = _SESSION.unpack_from(body, at)
            at += _SESSION.size
            message = Close(request, session)
        elif kind == Kind.READY:
            message = Ready(*_READY.unpack_from(body, at))
            at += _READY.size
        elif kind == Kind.OPENED:
            message = Opened(request, *_OPENED.unpack_from(body, at))
            at += _OPENED.size
        elif kind == Kind.DONE:
            message = Done(request)
        elif kind == Kind.CLOSED:
            (session,) = _SESSION.unpack_from(body, at)
            at += _SESSION.size
            snapshot = body[at : at + SNAPSHOT.size]
            if len(snapshot) != SNAPSHOT.size:
                raise ProtocolError("truncated snapshot")
            at += SNAPSHOT.size
            message = Closed(request, session, snapshot)
        elif kind == Kind.FAILED:
            failure, err = struct.unpack_from("!Bi", body, at)
            text, at = _read_str(body, at + 5)
            message = Failed(request, FailureKind(failure), text, err)
        elif kind == Kind.SNAPSHOTS:
            records = body[at:]
            if len(records) % SNAPSHOT.size:
                raise ProtocolError("snapshot batch is not a whole number of records")
            at = len(body)
            message = Snapshots(records)
        else:
            raise ProtocolError(f"unknown message kind {kind}")
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, ProtocolError):
            raise
        raise ProtocolError(f"malformed frame: {exc}") from exc
    if at != len(body):
        raise ProtocolError(f"{len(body) - at} stray bytes after a {Kind(kind).name} message")
    return message


class FrameDecoder:
    """Bytes in (as they arrive), whole messages out."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        buffer = self._buffer
        buffer += data
        messages: list[Message] = []
        at = 0
        while len(buffer) - at >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(buffer, at)
            if length > MAX_FRAME:
                raise ProtocolError(f"frame of {length} bytes is over {MAX_FRAME}")
            end = at + _LENGTH.size + length
            if end > len(buffer):
                break
            messages.append(decode(bytes(buffer[at + _LENGTH.size : end])))
            at = end
        del buffer[:at]
        return messages


# ---------------------------------------------------------------------- counters


def _pack_addr(addr: Addr | None) -> tuple[int, bytes, int]:
    if addr is None:
        return 0, b"", 0
    host, port = addr[0], addr[1]
    if ":" in host:
        return 6, socket.inet_pton(socket.AF_INET6, host), port
    return 4, socket.inet_pton(socket.AF_INET, host), port


def _unpack_addr(family: int, packed: bytes, port: int) -> Addr | None:
    if family == 4:
        return socket.inet_ntop(socket.AF_INET, packed[:4]), port
    if family == 6:
        return socket.inet_ntop(socket.AF_INET6, packed), port, 0, 0
    return None


def encode_snapshot(session: int, stats: RelayStats) -> bytes:
    """One `SNAPSHOT` record of ``stats``."""
    flows = (stats.rtp_a_to_b, stats.rtp_b_to_a, stats.rtcp_a_to_b, stats.rtcp_b_to_a)
    return SNAPSHOT.pack(
        session,
        *(
            value
            for f in flows
            for value in (f.packets, f.bytes, f.dropped, f.ignored, f.unroutable, f.send_errors)
        ),
        *_pack_addr(stats.source_a),
        *_pack_addr(stats.source_b),
    )


def snapshot_session(record: bytes, offset: int = 0) -> int:
    """The session id of the record at ``offset``."""
    return int(_SESSION.unpack_from(record, offset)[0])


def decode_snapshot(record: bytes) -> RelayStats:
    """A `SNAPSHOT` record back into `RelayStats`."""
    values = SNAPSHOT.unpack(record)
    counters = values[1 : 1 + _FLOWS * _FIELDS]
    flows = [FlowStats(*counters[i * _FIELDS : (i + 1) * _FIELDS]) for i in range(_FLOWS)]
    tail = values[1 + _FLOWS * _FIELDS :]
    return RelayStats(
        flows[0], flows[1], flows[2], flows[3], _unpack_addr(*tail[:3]), _unpack_addr(*tail[3:])
    )


#: The counters of a session nothing has been reported for yet.
_ZERO = FlowStats(0, 0, 0, 0, 0, 0)
EMPTY_STATS: Final = RelayStats(_ZERO, _ZERO, _ZERO, _ZERO, None, None)
