"""Parse-rate micro benchmark: prints messages/s for a typical INVITE with SDP.

Not a timed assertion (machines differ); the figure is for the engineer reading the
output (run with ``-s``). Target: well above several thousand messages/s per core.
"""

from __future__ import annotations

import time

from firmware.sip import Request, parse_message

SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\ns=-\r\n"
    b"c=IN IP4 192.0.2.101\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
)
INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com:5060;transport=udp>\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, REFER, NOTIFY\r\n"
    b"Supported: replaces, timer, 100rel\r\n"
    b"User-Agent: Skillepunkt-Bench/1.0\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: %d\r\n\r\n" % len(SDP)
) + SDP


def rate(fn: object, seconds: float = 0.3) -> float:
    assert callable(fn)
    count, began = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - began) < seconds:
        for _ in range(200):
            fn()
        count += 200
    return count / elapsed


def test_parse_rate() -> None:
    message = parse_message(INVITE)
    assert isinstance(message, Request) and len(message.body) == len(SDP)
    parse = rate(lambda: parse_message(INVITE))
    full = rate(lambda: parse_message(INVITE).contact)
    serialize = rate(message.to_bytes)
    print(
        f"\nSIP INVITE+SDP ({len(INVITE)} B): parse {parse:,.0f}/s, "
        f"parse+Contact {full:,.0f}/s, serialize {serialize:,.0f}/s"
    )
    assert parse > 0
