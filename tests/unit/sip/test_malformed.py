"""Hand-made malformed corpus: every input ends in SipParseError or a clean parse.

Nothing else may come out of the parser (no IndexError, UnicodeDecodeError,
RecursionError...), and hostile shapes (long runs of quotes, backslashes, brackets,
separators) must not make it slow: a generous time bound catches regex backtracking.
"""

from __future__ import annotations

import time

import pytest

from firmware.sip import Request, SipParseError, error_response, parse_message
from firmware.sip.framing import message_length

HEAD = (
    b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKm1\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:alice@example.com>;tag=f1\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: m1@192.0.2.1\r\n"
    b"CSeq: 1 OPTIONS\r\n"
)
VALID = HEAD + b"Content-Length: 4\r\n\r\nbody"


def with_header(line: bytes) -> bytes:
    return HEAD + line + b"\r\nContent-Length: 0\r\n\r\n"


def replace(old: bytes, new: bytes) -> bytes:
    assert old in VALID
    return VALID.replace(old, new)


BAD: dict[str, bytes] = {
    # empty and truncated
    "empty": b"",
    "only-crlf": b"\r\n\r\n",
    "start-line-only": b"OPTIONS sip:bob@example.com SIP/2.0\r\n",
    "no-empty-line": VALID[: VALID.index(b"\r\n\r\n") + 2],
    "body-truncated": VALID[:-1],
    # start lines
    "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    "one-token": replace(b"OPTIONS sip:bob@example.com SIP/2.0", b"OPTIONS"),
    "two-tokens": replace(b"OPTIONS sip:bob@example.com SIP/2.0", b"OPTIONS sip:bob@example.com"),
    "four-tokens": replace(b"SIP/2.0\r\nVia", b"SIP/2.0 extra\r\nVia"),
    "tab-separated": replace(
        b"OPTIONS sip:bob@example.com SIP/2.0", b"OPTIONS\tsip:bob@example.com\tSIP/2.0"
    ),
    "swapped": replace(b"OPTIONS sip:bob@example.com", b"sip:bob@example.com OPTIONS"),
    "http": replace(b"OPTIONS sip:bob@example.com SIP/2.0", b"GET / HTTP/1.1"),
    "version-3": replace(b"SIP/2.0\r\nVia", b"SIP/3.0\r\nVia"),
    "version-garbage": replace(b"SIP/2.0\r\nVia", b"SIP/two\r\nVia"),
    "method-not-token": replace(b"OPTIONS sip", b"OPT(IONS sip"),
    "status-2-digits": b"SIP/2.0 20 OK\r\n" + VALID.split(b"\r\n", 1)[1],
    "status-700": b"SIP/2.0 700 Weird\r\n" + VALID.split(b"\r\n", 1)[1],
    "status-huge": b"SIP/2.0 99999999999999999999 OK\r\n" + VALID.split(b"\r\n", 1)[1],
    "status-fullwidth": "SIP/2.0 \uff12\uff10\uff10 OK\r\n".encode() + VALID.split(b"\r\n", 1)[1],
    "response-http": b"HTTP/1.1 200 OK\r\n" + VALID.split(b"\r\n", 1)[1],
    "nul-in-request-uri": replace(b"sip:bob@example.com SIP", b"sip:bob\x00@example.com SIP"),
    "folded-start-line": replace(b"SIP/2.0\r\nVia", b"SIP/2.0\r\n x\r\nVia"),
    # Content-Length
    "cl-alpha": replace(b"Content-Length: 4", b"Content-Length: four"),
    "cl-negative": replace(b"Content-Length: 4", b"Content-Length: -4"),
    "cl-plus": replace(b"Content-Length: 4", b"Content-Length: +4"),
    "cl-hex": replace(b"Content-Length: 4", b"Content-Length: 0x4"),
    "cl-exponent": replace(b"Content-Length: 4", b"Content-Length: 4e0"),
    "cl-spaced": replace(b"Content-Length: 4", b"Content-Length: 0 4"),
    "cl-fullwidth": replace(b"Content-Length: 4", "Content-Length: \uff14".encode()),
    "cl-empty": replace(b"Content-Length: 4", b"Content-Length:"),
    "cl-huge": replace(b"Content-Length: 4", b"Content-Length: 99999999999999999999999"),
    "cl-over-body-limit": replace(b"Content-Length: 4", b"Content-Length: 70000"),
    "cl-larger-than-datagram": replace(b"Content-Length: 4", b"Content-Length: 5"),
    "cl-twice-same": replace(b"Content-Length: 4", b"Content-Length: 4\r\nl: 4"),
    "cl-twice-conflicting": replace(
        b"Content-Length: 4", b"Content-Length: 4\r\nContent-Length: 2"
    ),
    # injection and control characters
    "bare-cr-in-value": with_header(b"Subject: a\rInjected: b"),
    "bare-lf-in-value": with_header(b"Subject: a\nVia: SIP/2.0/UDP evil.example.com"),
    "lf-line-endings": VALID.replace(b"\r\n", b"\n"),
    "nul-in-value": with_header(b"Subject: a\x00b"),
    "nul-in-name": with_header(b"Sub\x00ject: a"),
    "escape-in-value": with_header(b"Subject: \x1b[31mred"),
    "del-in-call-id": replace(b"Call-ID: m1@", b"Call-ID: m1\x7f@"),
    "unquoted-escaped-nul": with_header(b"Subject: a\\\x00b"),
    "cr-in-quoted": with_header(b'To2: "a\rb" <sip:a@b>'),
    # UTF-8
    "invalid-utf8-from": replace(b"From: <sip", b'From: "\xff\xfe" <sip'),
    "invalid-utf8-name": with_header(b"X-\xc3\x28: v"),
    "overlong-utf8": with_header(b"Subject: \xc0\xaf"),
    "surrogate-utf8": with_header(b"Subject: \xed\xa0\x80"),
    # mandatory and single headers
    "no-via": replace(b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKm1\r\n", b""),
    "no-from": replace(b"From: <sip:alice@example.com>;tag=f1\r\n", b""),
    "no-to": replace(b"To: <sip:bob@example.com>\r\n", b""),
    "no-call-id": replace(b"Call-ID: m1@192.0.2.1\r\n", b""),
    "no-cseq": replace(b"CSeq: 1 OPTIONS\r\n", b""),
    "two-to": replace(
        b"To: <sip:bob@example.com>\r\n", b"To: <sip:bob@example.com>\r\nt: <sip:x@y>\r\n"
    ),
    "two-call-id": replace(b"Call-ID: m1@192.0.2.1\r\n", b"Call-ID: a\r\ni: b\r\n"),
    "empty-call-id": replace(b"Call-ID: m1@192.0.2.1", b"Call-ID:"),
    "call-id-space": replace(b"Call-ID: m1@192.0.2.1", b"Call-ID: m1 @192.0.2.1"),
    "empty-from": replace(b"From: <sip:alice@example.com>;tag=f1", b"From:"),
    "cseq-mismatch": replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE"),
    "cseq-negative": replace(b"CSeq: 1 OPTIONS", b"CSeq: -1 OPTIONS"),
    "cseq-no-method": replace(b"CSeq: 1 OPTIONS", b"CSeq: 1"),
    "max-forwards-256": replace(b"Max-Forwards: 70", b"Max-Forwards: 256"),
    "max-forwards-alpha": replace(b"Max-Forwards: 70", b"Max-Forwards: seventy"),
    "via-no-host": replace(b"SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKm1", b"SIP/2.0/UDP"),
    "via-bad-port": replace(b"192.0.2.1:5060", b"192.0.2.1:65536"),
    "via-bad-ipv6": replace(b"192.0.2.1:5060", b"[2001:db8::zz]:5060"),
    "via-unclosed-ipv6": replace(b"192.0.2.1:5060", b"[2001:db8::1:5060"),
    "via-empty-params": replace(b";branch=z9hG4bKm1", b";;;"),
    "via-comma-storm": replace(b";branch=z9hG4bKm1", b"," * 5000),
    "from-unclosed-angle": replace(
        b"<sip:alice@example.com>;tag=f1", b"<sip:alice@example.com;tag=f1"
    ),
    "from-space-in-uri": replace(b"<sip:alice@example.com>", b"<sip:alice @example.com>"),
    "from-bad-ipv4": replace(b"<sip:alice@example.com>", b"<sip:alice@300.1.2.3>"),
    "from-param-storm": replace(b";tag=f1", b";p" * 2000),
    "to-unterminated-quote": replace(b"To: <sip:bob", b'To: "Bob <sip:bob'),
    # header lines
    "no-colon": with_header(b"This line has no colon"),
    "known-name-no-colon": with_header(b"Via"),
    "compact-name-no-colon": with_header(b"v SIP/2.0/UDP x"),
    "space-in-name": with_header(b"Bad Name: x"),
    "empty-name": with_header(b": x"),
    "name-with-separator": with_header(b"X(y): x"),
    # limits
    "too-many-headers": HEAD + b"X-A: b\r\n" * 200 + b"Content-Length: 0\r\n\r\n",
    "line-too-long": with_header(b"Subject: " + b"x" * 9000),
    "header-section-too-large": HEAD + (b"Subject: " + b"x" * 8000 + b"\r\n") * 5 + b"\r\n",
    "datagram-too-large": HEAD + b"\r\n" + b"x" * 70000,
    # odd quotes, brackets and separators
    "quote-run": with_header(b'Reply-To: "' + b'"' * 7000),
    "backslash-run": replace(b"From: <sip", b'From: "' + b"\\" * 7001 + b" <sip"),
    "escaped-quote-run-unterminated": replace(b"From: <sip", b'From: "' + b'\\"' * 3000 + b" <sip"),
    "angle-run": replace(b"<sip:alice@example.com>", b"<" * 7000 + b"sip:alice@example.com>"),
    "display-token-run": replace(b"From: <sip", b"From: " + b"a " * 3500 + b"(<sip"),
    "param-space-run": replace(b";tag=f1", b";tag" + b" " * 7000 + b"=x y"),
    "comma-in-route-storm": with_header(b"Route: " + b"<sip:a>," * 1000),
    "unbalanced-route": with_header(b"Route: <sip:a@b>, <sip:c@d"),
    "via-quote-unbalanced": replace(b";branch=z9hG4bKm1", b';x="a, b'),
}

# Inputs the RFC allows, which must parse (and validate) cleanly.
GOOD: dict[str, bytes] = {
    "leading-crlf": b"\r\n\r\n" + VALID,
    "lower-case-version": replace(b"SIP/2.0\r\nVia", b"sip/2.0\r\nVia"),
    "space-before-colon": replace(b"Max-Forwards: 70", b"Max-Forwards \t : 70"),
    "tab-in-value": with_header(b"Subject:\tmeeting\tnotes"),
    "quoted-escaped-controls": with_header(b'Reply-To: "a\\\x01\\\x7f" <sip:a@b>'),
    "utf8-display-name": replace(b"From: <sip", 'From: "Søren Ærø" <sip'.encode()),
    "invalid-utf8-body": HEAD + b"Content-Length: 3\r\n\r\n\xff\xfe\x00",
    "no-content-length-datagram": HEAD + b"\r\nrest of datagram",
    "trailing-octets-datagram": VALID + b"garbage after the body",
    "leading-zero-lengths": replace(b"Content-Length: 4", b"Content-Length: 0004"),
    "empty-subject": with_header(b"Subject:"),
    "unknown-header-commas": with_header(b"X-List: ;;,,;;,;"),
    "many-params-inside-limit": replace(b";tag=f1", b"".join(b";p%d" % i for i in range(32))),
    "whitespace-only-continuation": with_header(b"Subject: x\r\n \t "),
    "quote-run-in-unknown-header": with_header(b'X-Opaque: "' + b'"' * 7000),
    "quoted-string-long": replace(b"From: <sip", b'From: "' + b"\\\\" * 3000 + b'" <sip'),
}


def run(data: bytes) -> None:
    """Parse, and validate what parsed; time-bounded so backtracking would show."""
    began = time.perf_counter()
    try:
        parse_message(data).validate()
    finally:
        assert time.perf_counter() - began < 1.0


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_gives_parse_error(name: str) -> None:
    with pytest.raises(SipParseError) as info:
        run(BAD[name])
    assert not info.value.internal
    response = error_response(info.value)  # must never raise either
    if response is not None:
        assert response.status in (400, 413, 505, 513)
        assert response.to_bytes().startswith(b"SIP/2.0 ")


@pytest.mark.parametrize("name", sorted(GOOD))
def test_allowed_input_parses(name: str) -> None:
    run(GOOD[name])
    assert isinstance(parse_message(GOOD[name]), Request)


def test_every_prefix_of_a_message() -> None:
    """Truncated anywhere: an error, never anything else (the full message parses)."""
    for cut in range(len(VALID)):
        with pytest.raises(SipParseError):
            parse_message(VALID[:cut])
        assert message_length(VALID[:cut], stream=True) is None
    assert message_length(VALID, stream=True) == len(VALID)
    parse_message(VALID, stream=True)


def test_invalid_utf8_is_rejected_but_answered_byte_exact() -> None:
    with pytest.raises(SipParseError, match="UTF-8") as info:
        parse_message(BAD["invalid-utf8-from"])
    response = error_response(info.value, to_tag="x")
    assert response is not None
    assert b'\r\nFrom: "\xff\xfe" <sip:alice@example.com>;tag=f1\r\n' in response.to_bytes()


def test_injected_header_is_never_seen_as_a_header() -> None:
    with pytest.raises(SipParseError, match="bare CR or LF"):
        parse_message(BAD["bare-lf-in-value"])
    with pytest.raises(SipParseError) as info:
        parse_message(BAD["nul-in-value"])
    assert info.value.headers is not None
    assert info.value.headers.get_all("Via") == ["SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKm1"]
