"""Line editing for a dumb serial terminal: the box echoes, erases and ends lines itself.

The terminal is in raw mode and sends bytes as typed, so what a kernel line discipline
would do (echo, erase, kill, interrupt) happens here. Bytes are taken one at a time so
that a line typed ahead of its prompt is edited under that prompt's mode: a password
typed ahead is never echoed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

MAX_LINE = 256

BEL = 0x07
BS = 0x08
LF = 0x0A
CR = 0x0D
CTRL_C = 0x03
CTRL_U = 0x15
CTRL_W = 0x17
ESC = 0x1B
DEL = 0x7F
_MAX_ESCAPE = 32  # a longer "escape sequence" is noise, not a key

_ERASE = b"\b \b"  # the only erase a dumb terminal understands


@dataclass(frozen=True)
class Line:
    """Enter was pressed; ``data`` is the line without its terminator."""

    data: bytes


@dataclass(frozen=True)
class Interrupt:
    """Ctrl-C: the line typed so far was thrown away."""


Event = Line | Interrupt


class _Escape(enum.Enum):
    NONE = enum.auto()
    ESC = enum.auto()  # saw ESC
    CSI = enum.auto()  # saw ESC [ : parameters until a final byte
    SS3 = enum.auto()  # saw ESC O : one more byte (keypad, F1-F4)


class LineEditor:
    """Turns typed bytes into echo bytes and ``Line``/``Interrupt`` events.

    ``echo`` off (passwords) still edits the line but shows nothing of it. Lines are
    bytes: the caller decides how to decode them (a password is not a command).
    """

    def __init__(self, max_length: int = MAX_LINE) -> None:
        self.max_length = max_length
        self.echo = True
        self._buf = bytearray()
        self._escape = _Escape.NONE
        self._escape_len = 0
        self._after_cr = False

    @property
    def pending(self) -> bytes:
        """What has been typed on the current line so far."""
        return bytes(self._buf)

    def reset(self) -> None:
        """Drop the current line (a timeout or a new prompt made it meaningless)."""
        self._buf.clear()
        self._escape = _Escape.NONE
        self._escape_len = 0

    def key(self, byte: int) -> tuple[bytes, Event | None]:
        """Process one received byte; return what to echo and the event it completed."""
        after_cr, self._after_cr = self._after_cr, False
        if self._escape is not _Escape.NONE and self._in_escape(byte):
            return b"", None
        if byte == CR:
            self._after_cr = True  # a CRLF terminal: its LF is the same Enter
            return self._enter()
        if byte == LF:
            return (b"", None) if after_cr else self._enter()
        if byte in (BS, DEL):
            return self._erase(1 if self._buf else 0), None
        if byte == CTRL_U:
            return self._erase(self._chars()), None
        if byte == CTRL_W:
            return self._erase(self._word_chars()), None
        if byte == CTRL_C:
            self._buf.clear()
            return b"^C\r\n", Interrupt()
        if byte == ESC:
            self._escape = _Escape.ESC
            return b"", None
        if byte < 0x20:
            return b"", None  # Tab, Ctrl-D, NUL...: nothing a dumb terminal should see
        if len(self._buf) >= self.max_length:
            return bytes([BEL]), None
        self._buf.append(byte)
        return (bytes([byte]) if self.echo else b""), None

    def _enter(self) -> tuple[bytes, Event]:
        line = bytes(self._buf)
        self._buf.clear()
        return b"\r\n", Line(line)

    def _in_escape(self, byte: int) -> bool:
        """Advance the escape-sequence parser; False hands ``byte`` back as a normal key."""
        state = self._escape
        if byte < 0x20 and byte != ESC:  # a control key cuts a sequence short
            self._escape = _Escape.NONE
            return False
        if state is _Escape.ESC:
            if byte == ord("["):
                self._escape, self._escape_len = _Escape.CSI, 0
            elif byte == ord("O"):
                self._escape = _Escape.SS3
            elif byte != ESC:
                self._escape = _Escape.NONE  # Alt+key: swallow the key as well
            return True
        if state is _Escape.SS3:
            self._escape = _Escape.NONE
            return True
        # CSI: parameter/intermediate bytes 0x20-0x3F, then one final byte 0x40-0x7E
        self._escape_len += 1
        if 0x40 <= byte <= 0x7E or not 0x20 <= byte <= 0x3F or self._escape_len > _MAX_ESCAPE:
            self._escape = _Escape.NONE
        return True

    def _chars(self, buf: bytes | bytearray | None = None) -> int:
        """Characters (not bytes) in ``buf``: UTF-8 continuation bytes do not count."""
        data = self._buf if buf is None else buf
        return sum(1 for b in data if b & 0xC0 != 0x80)

    def _word_chars(self) -> int:
        text = bytes(self._buf)
        stripped = text.rstrip(b" ")
        cut = stripped.rfind(b" ") + 1
        return self._chars(text[cut:])

    def _erase(self, chars: int) -> bytes:
        """Remove ``chars`` characters from the end; a multi-byte character goes whole."""
        for _ in range(chars):
            end = len(self._buf) - 1
            while end > 0 and self._buf[end] & 0xC0 == 0x80:
                end -= 1
            del self._buf[max(end, 0) :]
        return _ERASE * chars if self.echo else b""
