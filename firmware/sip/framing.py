"""Message boundaries: where one SIP message ends in a byte buffer (RFC 3261 §18.3).

On a stream (TCP, TLS) Content-Length is the only framing there is, so it is
mandatory, and a bad or conflicting one means the connection must be closed: the
caller cannot find the next message. On a datagram the datagram is the frame.
`StreamFramer` does the incremental work for a connection, including RFC 5626
CRLF keep-alives, without rescanning what it has already seen.
"""

from __future__ import annotations

import re

from firmware.sip.errors import (
    MAX_BODY_SIZE,
    MAX_DATAGRAM_SIZE,
    MAX_HEADER_SECTION,
    SipParseError,
)

# Content-Length (or its compact form l) in a lower-cased header section, with any
# folded continuation lines of its value.
_CONTENT_LENGTH_RE = re.compile(rb"\r\n(?:content-length|l)[ \t]*+:((?:[^\r\n]++|\r\n[ \t])*)")
_FOLD_RE = re.compile(rb"\r\n[ \t]++")
_DIGITS_RE = re.compile(rb"[0-9]{1,12}")
_NO_LENGTH = "no Content-Length on a stream transport"


def _content_length(head: bytes) -> int | None:
    """Content-Length found in a header section (None when absent)."""
    values = [
        _FOLD_RE.sub(b" ", m.group(1)).strip(b" \t")
        for m in _CONTENT_LENGTH_RE.finditer(head.lower())
    ]
    if not values:
        return None
    if len(values) > 1:
        raise SipParseError("more than one Content-Length")
    if _DIGITS_RE.fullmatch(values[0]) is None:
        raise SipParseError("malformed Content-Length")
    length = int(values[0])
    if length > MAX_BODY_SIZE:
        raise SipParseError("body too large", 413)
    return length


def message_length(buf: bytes | bytearray, *, stream: bool = True) -> int | None:
    """Length of the complete message at the start of ``buf``, or None if more is needed.

    ``buf`` must begin with the start line (see `StreamFramer` for leading CRLFs).
    Stream: Content-Length is required; a message not yet complete gives None.
    Datagram: no Content-Length means the whole datagram; one larger than what is
    there is an error; octets after the body are not part of the message.
    Raises `SipParseError` when no length can be determined.
    """
    end = buf.find(b"\r\n\r\n", 0, MAX_HEADER_SECTION)
    if end < 0:
        if len(buf) >= MAX_HEADER_SECTION or not stream:
            raise SipParseError(
                "header section too large"
                if len(buf) >= MAX_HEADER_SECTION
                else "no empty line after the header section"
            )
        return None
    length = _content_length(bytes(buf[:end]))
    if length is None:
        if stream:
            raise SipParseError(_NO_LENGTH)
        if len(buf) > MAX_DATAGRAM_SIZE:
            raise SipParseError("message too large", 513)
        return len(buf)
    total = end + 4 + length
    if total > len(buf):
        if stream:
            return None
        raise SipParseError("body shorter than Content-Length")
    return total


class KeepAlive:
    """A CRLFCRLF keep-alive ping on a stream (RFC 5626 §3.5.1): answer with CRLF."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "KEEPALIVE"


KEEPALIVE = KeepAlive()


class StreamFramer:
    """Cuts one connection's byte stream into whole SIP messages.

    `feed` returns the complete messages (bytes, each ready for
    ``parse_message(..., stream=True)``) and `KEEPALIVE` for each ping. A
    `SipParseError` from `feed` means the stream cannot be framed any more: close
    the connection. The buffer never grows beyond the message size limits.
    """

    __slots__ = ("_buf", "_expect", "_scanned")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._expect: int | None = None  # total length of the message being received
        self._scanned = 0  # header-end search already done up to here

    @property
    def buffered(self) -> int:
        """Bytes held that are not yet a complete message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes | KeepAlive]:
        buf = self._buf
        buf += data
        out: list[bytes | KeepAlive] = []
        while buf:
            if self._expect is None:
                if not self._skip_crlf(out):
                    break
                if not buf:
                    break
                end = buf.find(b"\r\n\r\n", self._scanned, MAX_HEADER_SECTION)
                if end < 0:
                    if len(buf) >= MAX_HEADER_SECTION:
                        raise SipParseError("header section too large")
                    self._scanned = max(0, len(buf) - 3)
                    break
                length = _content_length(bytes(buf[:end]))
                if length is None:
                    raise SipParseError(_NO_LENGTH)
                self._expect = end + 4 + length
            if len(buf) < self._expect:
                break
            out.append(bytes(buf[: self._expect]))
            del buf[: self._expect]
            self._expect = None
            self._scanned = 0
        return out

    def _skip_crlf(self, out: list[bytes | KeepAlive]) -> bool:
        """Consume keep-alives before a message; False while one may be half here."""
        buf = self._buf
        while buf[:1] == b"\r":
            if buf.startswith(b"\r\n\r\n"):
                out.append(KEEPALIVE)
                del buf[:4]
            elif len(buf) < 4 and b"\r\n\r\n".startswith(buf):
                return False
            elif buf.startswith(b"\r\n"):
                del buf[:2]  # a pong, or a stray CRLF between messages (§7.5)
            else:
                raise SipParseError("stray CR between messages")
        return True
