"""Message model, parser and serializer: requests, responses, round trips, error answers."""

from __future__ import annotations

import pytest

from firmware.sip import (
    MAX_VIA_COUNT,
    Headers,
    Request,
    Response,
    SipParseError,
    SipUri,
    error_response,
    parse_message,
    parse_uri,
)

SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP6 2001:db8::10\r\ns=-\r\n"
    b"c=IN IP6 2001:db8::10\r\nt=0 0\r\nm=audio 49172 RTP/AVP 8 101\r\n"
    b"a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
)


def invite(extra: str = "", body: bytes = SDP, length: int | None = None) -> bytes:
    n = len(body) if length is None else length
    return (
        "INVITE sip:bob@[2001:db8::20]:5060;transport=udp SIP/2.0\r\n"
        "Via: SIP/2.0/UDP [2001:db8::10]:5062;branch=z9hG4bK74bf9;rport\r\n"
        "Max-Forwards: 70\r\n"
        'From: "Alice" <sip:alice@[2001:db8::10]>;tag=9fxced76sl\r\n'
        "To: Bob <sip:bob@[2001:db8::20]>\r\n"
        "Call-ID: 3848276298220188511@2001:db8::10\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:alice@[2001:db8::10]:5062>\r\n"
        "Content-Type: application/sdp\r\n"
        f"{extra}"
        f"Content-Length: {n}\r\n\r\n"
    ).encode() + body


def test_ipv6_invite() -> None:
    m = parse_message(invite())
    assert isinstance(m, Request) and isinstance(m.uri, SipUri)
    assert (m.uri.host, m.uri.port, m.uri.transport) == ("2001:db8::20", 5060, "udp")
    via = m.top_via
    assert (via.host, via.port, via.rport_requested) == ("2001:db8::10", 5062, True)
    assert m.from_.display_name == "Alice" and m.from_.tag == "9fxced76sl"
    assert m.to.display_name == "Bob" and m.to.tag is None
    assert m.call_id == "3848276298220188511@2001:db8::10"
    assert m.content_length == len(SDP) and m.body == SDP
    contact = m.contact
    assert contact != "*" and isinstance(contact[0].uri, SipUri)
    assert contact[0].uri.host == "2001:db8::10"


def test_response_parse_and_make_response() -> None:
    request = parse_message(invite())
    assert isinstance(request, Request)
    ringing = request.make_response(
        180, to_tag="b0b", headers=[("Contact", "<sip:bob@[2001:db8::20]>")]
    )
    assert ringing.reason == "Ringing"
    wire = ringing.to_bytes()
    assert wire.startswith(b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP [2001:db8::10]:5062;")
    reply = parse_message(wire)
    assert isinstance(reply, Response) and reply.status == 180
    assert reply.to.tag == "b0b" and reply.from_.tag == "9fxced76sl"
    assert reply.cseq == request.cseq and reply.call_id == request.call_id
    assert reply.via == request.via
    assert request.make_response(100, to_tag="x").to.tag is None  # 100 Trying: no tag needed
    assert reply == ringing


def test_compact_forms_and_folding() -> None:
    data = (
        b"OPTIONS sip:carol@chicago.com SIP/2.0\r\n"
        b"v: SIP/2.0/TCP pc.example.com;branch=z9hG4bKhjhs8ass877,\r\n"
        b"   SIP/2.0/UDP\r\n\t 192.0.2.4;branch=z9hG4bK0\r\n"
        b"f: <sip:alice@atlanta.com>;tag=1\r\n"
        b"t:\r\n <sip:carol@chicago.com>\r\n"
        b"i: a84b4c76e66710\r\n"
        b"CSEQ: 63104\r\n OPTIONS\r\n"
        b'm: <sip:alice@pc.example.com>, "Work, desk" <sip:alice@desk.example.com>;q=0.5\r\n'
        b"k: timer, 100rel\r\n"
        b'WWW-Authenticate: Digest realm="a, b", nonce="x", qop="auth,auth-int"\r\n'
        b"Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n"
        b"l: 0\r\n\r\n"
    )
    m = parse_message(data)
    assert [v.host for v in m.via] == ["pc.example.com", "192.0.2.4"]
    assert m.to.uri == parse_uri("sip:carol@chicago.com")
    assert (m.cseq.number, m.cseq.method) == (63104, "OPTIONS")
    contact = m.contact
    assert contact != "*" and [c.display_name for c in contact] == [None, "Work, desk"]
    assert m.supported == ("timer", "100rel")
    assert m.headers.get_all("www-authenticate") == [
        'Digest realm="a, b", nonce="x", qop="auth,auth-int"'
    ]  # never split
    assert m.headers.get("date") == "Sat, 13 Nov 2010 23:29:00 GMT"
    wire = m.to_bytes()
    for long_form in (b"\r\nVia: ", b"\r\nFrom: ", b"\r\nTo: ", b"\r\nCall-ID: ", b"\r\nContact: "):
        assert long_form in wire
    assert b"\r\nSupported: timer, 100rel\r\n" in wire  # a token list: one line
    assert parse_message(wire) == m
    m.validate()


def test_token_lists_go_out_on_one_line_and_others_one_per_element() -> None:
    m = Request(
        "INVITE",
        "sip:bob@example.com",
        [
            ("Via", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/UDP b.example.com"),
            ("From", "<sip:alice@example.com>;tag=1"),
            ("To", "<sip:bob@example.com>"),
            ("Call-ID", "c1"),
            ("CSeq", "1 INVITE"),
            ("Allow", "INVITE, ACK"),
            ("Supported", "timer"),
            ("Allow", "BYE"),  # not adjacent to the first Allow: a line of its own
            ("Contact", "<sip:a@example.com>, <sip:b@example.com>"),
            ("Require", "100rel, timer"),
        ],
    )
    wire = m.to_bytes()
    assert b"\r\nAllow: INVITE, ACK\r\nSupported: timer\r\nAllow: BYE\r\n" in wire
    assert b"\r\nRequire: 100rel, timer\r\n" in wire
    assert wire.count(b"\r\nVia: ") == 2 and wire.count(b"\r\nContact: ") == 2
    again = parse_message(wire)
    assert again.headers.get_all("Allow") == ["INVITE", "ACK", "BYE"]
    assert again == m


def test_serializer_writes_correct_content_length() -> None:
    m = parse_message(invite())
    m.body = b"short"
    wire = m.to_bytes()
    assert wire.count(b"Content-Length") == 1 and b"\r\nContent-Length: 5\r\n\r\nshort" in wire
    built = Request(
        "MESSAGE",
        "sip:bob@example.com",
        [
            ("Via", "SIP/2.0/TCP 192.0.2.1;branch=z9hG4bKx"),
            ("Max-Forwards", "70"),
            ("From", "<sip:alice@example.com>;tag=1"),
            ("To", "<sip:bob@example.com>"),
            ("Call-ID", "c1"),
            ("CSeq", "1 MESSAGE"),
            ("Content-Type", "text/plain;charset=utf-8"),
        ],
        "Hej æøå".encode(),
    )
    wire = built.to_bytes()
    assert wire.endswith(b"Content-Length: 10\r\n\r\n" + "Hej æøå".encode())
    again = parse_message(wire, stream=True)
    assert again == built and again.content_length == 10
    assert str(built.uri) == "sip:bob@example.com"


def test_round_trip_of_modified_message() -> None:
    m = parse_message(invite())
    assert isinstance(m, Request)
    top = m.top_via.with_param("received", "2001:db8::99").with_param("rport", "5062")
    m.headers.pop_first("Via")
    m.headers.prepend("Via", str(top))
    m.headers.prepend("Via", "SIP/2.0/UDP [2001:db8::1];branch=z9hG4bKproxy")
    m.headers.add("Record-Route", "<sip:[2001:db8::1];lr>")
    m.uri = parse_uri("sip:bob@[2001:db8::30]")
    again = parse_message(m.to_bytes())
    assert again == m
    assert [v.host for v in again.via] == ["2001:db8::1", "2001:db8::10"]
    assert again.via[1].received == "2001:db8::99" and again.via[1].rport == 5062
    assert again.record_route[0].uri == parse_uri("sip:[2001:db8::1];lr")


def test_model_rejects_what_it_could_not_serialize() -> None:
    with pytest.raises(ValueError):
        Request("IN VITE", "sip:a@b")
    with pytest.raises(SipParseError):
        Request("INVITE", "not a uri")
    with pytest.raises(ValueError):
        Response(200, "OK\r\nInjected: 1")
    with pytest.raises(ValueError):
        Response(1000)
    assert Response(299).reason == "Unknown" and Response(486).reason == "Busy Here"


def test_lazy_header_errors_raise_parse_error_on_access() -> None:
    m = parse_message(invite(extra="Expires: soon\r\nRoute: sip:no-brackets.example.com\r\n"))
    with pytest.raises(SipParseError):
        _ = m.expires
    with pytest.raises(SipParseError):
        _ = m.route
    with pytest.raises(SipParseError):
        m.validate()
    assert isinstance(m, Request)
    answer = m.make_response(400, to_tag="t")
    assert answer.status == 400 and answer.to.tag == "t"


def test_expires_is_clamped_and_star_contact() -> None:
    register = (
        b"REGISTER sip:example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKreg\r\n"
        b"Max-Forwards: 70\r\nFrom: <sip:101@example.com>;tag=a\r\nTo: <sip:101@example.com>\r\n"
        b"Call-ID: r1\r\nCSeq: 2 REGISTER\r\nContact: *\r\n"
        b"Expires: 99999999999999999999\r\nContent-Length: 0\r\n\r\n"
    )
    m = parse_message(register)
    assert m.contact == "*" and m.expires == 2**32 - 1


def test_error_response_decisions() -> None:
    # Missing Call-ID: nothing to copy -> drop.
    data = invite().replace(b"Call-ID: 3848276298220188511@2001:db8::10\r\n", b"")
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.reason == "missing Call-ID" and error_response(info.value) is None
    # An ACK is never answered.
    ack = (
        invite(body=b"").replace(b"INVITE", b"ACK").replace(b"Max-Forwards: 70", b"Max-Forwards: x")
    )
    with pytest.raises(SipParseError) as info:
        parse_message(ack)
    assert info.value.method == "ACK" and error_response(info.value) is None
    # A bad Max-Forwards in an INVITE is answered, To gets a tag.
    with pytest.raises(SipParseError) as info:
        parse_message(invite().replace(b"Max-Forwards: 70", b"Max-Forwards: 256"))
    response = error_response(info.value, to_tag="q")
    assert response is not None and response.status == 400
    assert parse_message(response.to_bytes()).to.tag == "q"
    # Garbage start line: not recognisably a request -> drop.
    with pytest.raises(SipParseError) as info:
        parse_message(b"\x16\x03\x01 hello\r\n\r\n")
    assert error_response(info.value) is None


def test_limits() -> None:
    vias = "".join(
        f"Via: SIP/2.0/UDP h{i}.example.com;branch=z9hG4bK{i}\r\n" for i in range(MAX_VIA_COUNT)
    )
    with pytest.raises(SipParseError, match="too many Via"):
        parse_message(invite(extra=vias))
    many = "".join(f"X-H{i}: v\r\n" for i in range(100))
    with pytest.raises(SipParseError, match="too many header fields"):
        parse_message(invite(extra=many))
    with pytest.raises(SipParseError, match="line too long"):
        parse_message(invite(extra="Subject: " + "x" * 9000 + "\r\n"))
    with pytest.raises(SipParseError, match="header section too large"):
        parse_message(invite(extra=("Subject: " + "x" * 8000 + "\r\n") * 5))
    with pytest.raises(SipParseError, match="message too large") as info:
        parse_message(invite(body=b"x" * 70000))
    assert info.value.status == 513
    with pytest.raises(SipParseError, match="body too large") as info:
        parse_message(invite(body=b"x" * 65537), stream=True)
    assert info.value.status == 413
    with pytest.raises(SipParseError, match="URI too long"):
        parse_message(
            invite().replace(b"sip:bob@[2001:db8::20]:5060", b"sip:" + b"b" * 3000 + b"@x")
        )


def test_stream_mode_is_exact() -> None:
    data = invite()
    assert parse_message(data, stream=True) == parse_message(data)
    with pytest.raises(SipParseError, match="octets after the body"):
        parse_message(data + b"x", stream=True)
    with pytest.raises(SipParseError, match="no Content-Length"):
        parse_message(data.replace(b"Content-Length", b"X-Length"), stream=True)
    assert parse_message(data.replace(b"Content-Length", b"X-Length")).body == SDP


def test_headers_equality_ignores_content_length_only() -> None:
    a = Headers([("Subject", "x"), ("Content-Length", "1")])
    assert a == Headers([("Subject", "x")])
    assert a != Headers([("Subject", "y")])
    assert a != Headers([("Subject", "x"), ("Subject", "x")])
