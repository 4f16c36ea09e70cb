"""The one exception the SIP message layer raises for bad input, and its size limits.

Everything the parser rejects (syntax, limits, framing, UTF-8) is a `SipParseError`, so
a transport can wrap a parse in a single ``except`` and never be taken down by a
hostile datagram. The error remembers what could be read before things went wrong,
which is what `firmware.sip.message.error_response` needs to answer a bad request
with 400 (or 505) instead of dropping it silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from firmware.sip.headers import Headers

# --- Hard limits (bytes unless stated). Exceeding one raises SipParseError. ---
#: A UDP datagram cannot carry more; anything larger is not SIP we will read.
MAX_DATAGRAM_SIZE = 65_535
#: Start line plus header fields plus the blank line.
MAX_HEADER_SECTION = 32_768
#: One unfolded header line (or the start line).
MAX_LINE_LENGTH = 8_192
#: Header field values after comma lists are split (longreq has 47).
MAX_HEADER_COUNT = 100
#: Via values: Max-Forwards starts at 70, so a legitimate request never has more.
MAX_VIA_COUNT = 70
#: Message body; also bounds what a TCP connection may make us buffer.
MAX_BODY_SIZE = 65_536
#: A framed message on a stream transport.
MAX_STREAM_MESSAGE_SIZE = MAX_HEADER_SECTION + MAX_BODY_SIZE
#: One URI (Request-URI, or inside a header value).
MAX_URI_LENGTH = 2_048
#: Parameters on one URI or one header value.
MAX_PARAM_COUNT = 32


class SipParseError(ValueError):
    """A SIP message (or part of one) that the parser refuses.

    ``status`` is the response code a UAS should answer with (400, 505, 413).
    ``method`` and ``headers`` are filled in when the start line looked like a
    request and the header section could be split: enough to try building a
    response. ``internal`` marks a parser bug caught by the safety net; fuzzers
    treat it as a crash.
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.method: str | None = None
        self.headers: Headers | None = None
        self.internal = False

    def __repr__(self) -> str:
        return f"SipParseError({self.reason!r}, status={self.status})"
