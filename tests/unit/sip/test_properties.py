"""Property tests: nothing but SipParseError ever leaves the parser, and whatever it
accepts survives a serialize/parse round trip unchanged."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.sip import (
    KEEPALIVE,
    Headers,
    KeepAlive,
    NameAddr,
    Request,
    Response,
    SipParseError,
    SipUri,
    StreamFramer,
    UriParams,
    parse_message,
    parse_name_addr,
    parse_uri,
)
from firmware.sip.syntax import Params

TORTURE_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "sip-torture"
BASIC = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKp;rport, SIP/2.0/TCP h.example.com\r\n"
    b'From: "A \\"x\\"" <sip:a@example.com;transport=tcp>;tag=1\r\nTo: b <sip:b@example.com>\r\n'
    b"Call-ID: p@h\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
    b"Contact: <sip:a@[2001:db8::1]>;expires=60, sip:c@d;q=0.5\r\n"
    b"Route: <sip:p1;lr>, <sip:p2;lr>\r\nContent-Type: application/sdp\r\n"
    b"Content-Length: 5\r\n\r\nv=0\r\n"
)
SEEDS = [BASIC, *sorted(p.read_bytes() for p in TORTURE_DIR.glob("*.dat"))]
INTERESTING = b'\r\n \t:;,<>"\\@%[]=?/\x00\x7f\xff\xc3'
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["set", "insert", "delete", "duplicate", "truncate"]))
        byte = draw(st.one_of(st.sampled_from(INTERESTING), st.integers(0, 255)))
        if op == "set":
            data[at] = byte
        elif op == "insert":
            data.insert(at, byte)
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif op == "duplicate":
            end = min(len(data), at + draw(st.integers(1, 200)))
            data[at:at] = data[at:end]
        else:
            del data[at:]
    return bytes(data)


def check(data: bytes, stream: bool = False) -> None:
    """Only SipParseError may escape; an accepted message must round-trip."""
    try:
        message = parse_message(data, stream=stream)
    except SipParseError as exc:
        assert not exc.internal, exc.__cause__
        return
    wire = message.to_bytes()
    again = parse_message(wire, stream=True)
    assert again == message
    assert again.to_bytes() == wire
    try:
        message.validate()
    except SipParseError as exc:
        assert not exc.internal, exc.__cause__


@SETTINGS
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    check(data)
    check(data, stream=True)


@SETTINGS
@given(mutated())
def test_mutated_messages(data: bytes) -> None:
    check(data)


TOKEN = st.text("abcXYZ019-.!%*_+`'~", min_size=1, max_size=12)
HOST = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9]{0,6}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)
PARAM = st.text("abcXYZ019-_.!~*'()", min_size=1, max_size=10)
USER = st.text("abcXYZ019-_.!~*'()&=+$,;?/", min_size=1, max_size=15)
TEXT = st.text(st.characters(blacklist_categories=["Cs", "Cc", "Zl", "Zp"]), max_size=30).map(
    lambda s: s.strip(" \t")
)


@st.composite
def sip_uris(draw: st.DrawFn) -> SipUri:
    params = draw(st.dictionaries(PARAM.map(str.lower), st.none() | PARAM, max_size=3))
    return SipUri(
        draw(st.sampled_from(["sip", "sips"])),
        draw(st.none() | USER),
        draw(HOST),
        draw(st.none() | st.integers(0, 65535)),
        UriParams(list(params.items())),
    )


@SETTINGS
@given(sip_uris())
def test_uri_text_round_trip(uri: SipUri) -> None:
    again = parse_uri(str(uri))
    assert again == uri and str(again) == str(uri)


@SETTINGS
@given(sip_uris(), st.none() | TEXT, st.none() | TOKEN)
def test_name_addr_round_trip(uri: SipUri, display: str | None, tag: str | None) -> None:
    na = NameAddr(uri, display, Params() if tag is None else Params([("tag", tag)]))
    again = parse_name_addr(str(na))
    assert again == na


@SETTINGS
@given(
    method=TOKEN,
    uri=sip_uris(),
    status=st.integers(100, 699),
    reason=TEXT,
    extra=st.lists(
        st.tuples(st.sampled_from(["Subject", "X-Note", "User-Agent", "Organization"]), TEXT),
        max_size=5,
    ),
    body=st.binary(max_size=300),
)
def test_built_messages_round_trip(
    method: str,
    uri: SipUri,
    status: int,
    reason: str,
    extra: list[tuple[str, str]],
    body: bytes,
) -> None:
    headers = [
        (
            "Via",
            f"SIP/2.0/UDP {uri.host if ':' not in uri.host else f'[{uri.host}]'};branch=z9hG4bKq",
        ),
        ("From", f"<{uri}>;tag=1"),
        ("To", f"<{uri}>"),
        ("Call-ID", "prop@test"),
        ("CSeq", f"7 {method}"),
        *extra,
    ]
    request = Request(method, uri, Headers(headers), body)
    assert parse_message(request.to_bytes()) == request
    response = Response(status, reason, Headers(headers), body)
    assert parse_message(response.to_bytes(), stream=True) == response


@SETTINGS
@given(st.lists(st.sampled_from([BASIC, b"\r\n\r\n"]), min_size=1, max_size=4), st.data())
def test_stream_framing_any_chunking(parts: list[bytes], data: st.DataObject) -> None:
    """However TCP cuts the stream, the framer yields the same messages and pings."""
    stream = b"".join(parts)
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=20)))
    framer = StreamFramer()
    got: list[bytes | KeepAlive] = []
    for begin, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += framer.feed(stream[begin:end])
    assert got == [KEEPALIVE if p == b"\r\n\r\n" else p for p in parts]
    assert framer.buffered == 0
