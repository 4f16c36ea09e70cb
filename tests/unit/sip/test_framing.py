"""Stream framing: message_length and the incremental StreamFramer (TCP/TLS)."""

from __future__ import annotations

import pytest

from firmware.sip import (
    KEEPALIVE,
    MAX_HEADER_SECTION,
    SipParseError,
    StreamFramer,
    message_length,
    parse_message,
)


def message(n: int, body: bytes = b"hello") -> bytes:
    return (
        f"MESSAGE sip:bob@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKf{n}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag={n}\r\nTo: <sip:bob@example.com>\r\n"
        f"Call-ID: frame-{n}\r\nCSeq: {n} MESSAGE\r\nContent-Type: text/plain\r\n"
        f"l:\r\n {len(body)}\r\n\r\n"  # compact and folded: still found
    ).encode() + body


def test_message_length_rules() -> None:
    one = message(1)
    assert message_length(one) == len(one)
    assert message_length(one + message(2)) == len(one)
    assert message_length(one[:-1]) is None  # stream: wait for the rest
    assert message_length(one[:20]) is None
    with pytest.raises(SipParseError):
        message_length(one[:-1], stream=False)  # datagram: Content-Length larger than what came
    no_length = one.replace(b"l:\r\n 5", b"X-Nothing: 5")
    assert message_length(no_length, stream=False) == len(no_length)  # datagram: rest is body
    with pytest.raises(SipParseError, match="no Content-Length"):
        message_length(no_length)
    for bad in (b"l:\r\n -5", b"l:\r\n 5\r\nContent-Length: 5", b"l:\r\n 5x", b"l:\r\n 999999"):
        with pytest.raises(SipParseError):
            message_length(one.replace(b"l:\r\n 5", bad))
    with pytest.raises(SipParseError, match="header section too large"):
        message_length(b"X" * MAX_HEADER_SECTION)


def test_framer_byte_by_byte_and_pipelined() -> None:
    stream = message(1) + message(2, b"") + message(3, b"\r\n\r\nbody with blank lines")
    framer = StreamFramer()
    got: list[bytes] = []
    for i in range(len(stream)):
        for item in framer.feed(stream[i : i + 1]):
            assert isinstance(item, bytes)
            got.append(item)
    assert got == [message(1), message(2, b""), message(3, b"\r\n\r\nbody with blank lines")]
    assert framer.buffered == 0
    assert [parse_message(m, stream=True).cseq.number for m in got] == [1, 2, 3]
    assert StreamFramer().feed(stream) == got


def test_framer_keepalives() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n") == [KEEPALIVE]
    assert framer.feed(b"\r\n") == []  # maybe half a ping: wait
    assert framer.feed(b"\r\n\r\n") == [KEEPALIVE]  # completes one ping, a CRLF remains
    assert framer.feed(message(7)) == [message(7)]  # the pending CRLF is skipped (RFC 3261 §7.5)
    assert framer.feed(b"\r\n" + message(8)) == [message(8)]
    assert framer.buffered == 0


def test_framer_errors_close_the_connection() -> None:
    with pytest.raises(SipParseError):
        StreamFramer().feed(message(1).replace(b"l:\r\n 5", b"Content-Length: -1"))
    with pytest.raises(SipParseError):
        StreamFramer().feed(message(1).replace(b"l:\r\n 5", b"X-None: 1"))
    framer = StreamFramer()
    with pytest.raises(SipParseError, match="header section too large"):
        for _ in range(MAX_HEADER_SECTION // 1000 + 2):
            framer.feed(b"X-Junk: " + b"j" * 990 + b"\r\n")
    with pytest.raises(SipParseError):
        StreamFramer().feed(b"\rGARBAGE")


def test_framer_does_not_rescan_headers() -> None:
    """Slow senders cost linear time: each feed scans only the new bytes for the end."""
    framer = StreamFramer()
    head = message(1)
    for i in range(len(head) - 1):
        framer.feed(head[i : i + 1])
        assert framer._scanned >= max(0, i - 3) or framer._expect is not None
    assert framer.feed(head[-1:]) == [head]
