"""Header names, the Headers multi-dict, comma lists and the parsed header views."""

from __future__ import annotations

import pytest

from firmware.sip import (
    AbsoluteUri,
    Headers,
    NameAddr,
    SipParseError,
    SipUri,
    Via,
    canonical_name,
    parse_name_addr,
    parse_uri,
    parse_via,
    quote,
    unquote,
)
from firmware.sip.fields import parse_contacts, parse_cseq, parse_media_type, parse_uint
from firmware.sip.syntax import parse_params, split_list


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("i", "Call-ID"), ("m", "Contact"), ("e", "Content-Encoding"), ("l", "Content-Length"),
        ("c", "Content-Type"), ("f", "From"), ("s", "Subject"), ("k", "Supported"),
        ("t", "To"), ("v", "Via"), ("o", "Event"), ("u", "Allow-Events"), ("r", "Refer-To"),
        ("b", "Referred-By"), ("x", "Session-Expires"), ("y", "Identity"),
        ("a", "Accept-Contact"), ("j", "Reject-Contact"), ("d", "Request-Disposition"),
        ("V", "Via"), ("call-id", "Call-ID"), ("CSEQ", "CSeq"), ("www-authenticate", "WWW-Authenticate"),
        ("X-Custom-Thing", "X-Custom-Thing"),
    ],
)  # fmt: skip
def test_canonical_names(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


def test_headers_multidict() -> None:
    h = Headers([("v", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2")])
    h.add("X-Thing", "one")
    h.add("x-thing", "two")
    h.add("Allow", "INVITE, ACK ,BYE")
    assert h.get_all("VIA") == ["SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/UDP b;branch=z9hG4bK2"]
    assert h.items()[0] == ("Via", "SIP/2.0/UDP a;branch=z9hG4bK1")
    assert h.get_all("X-THING") == ["one", "two"] and h.count("x-thing") == 2
    assert h.get_all("allow") == ["INVITE", "ACK", "BYE"]
    assert "via" in h and "Route" not in h and h.get("Route") is None
    h.prepend("Via", "SIP/2.0/TCP c;branch=z9hG4bK3")
    assert h.get("Via") == "SIP/2.0/TCP c;branch=z9hG4bK3"
    assert h.pop_first("v") == "SIP/2.0/TCP c;branch=z9hG4bK3"
    h.set("x-thing", "three")
    assert h.get_all("X-Thing") == ["three"]
    assert [n for n, _ in h].index("X-Thing") == 2  # kept the first one's place
    assert h.remove("Allow") == 3 and "Allow" not in h
    assert h.copy() == h and h.copy() is not h


def test_headers_refuse_injection() -> None:
    h = Headers()
    for bad in ("a\r\nVia: x", "a\nb", "a\rb", "a\x00b"):
        with pytest.raises(ValueError):
            h.add("Subject", bad)
    with pytest.raises(SipParseError):
        h.add("Bad Name", "x")
    with pytest.raises(SipParseError):
        h.add("Route", "<sip:a>,,<sip:b>")


def test_parsed_views_are_cached_and_invalidated() -> None:
    h = Headers([("To", "<sip:bob@example.com>")])
    first = h.parsed("To", lambda vs: parse_name_addr(vs[0]))
    assert h.parsed("To", lambda vs: parse_name_addr(vs[0])) == first
    h.set("To", "<sip:carol@example.com>;tag=9")
    assert h.parsed("to", lambda vs: parse_name_addr(vs[0])).tag == "9"


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("a, b,c", ["a", "b", "c"]),
        ('"Doe, John" <sip:j@x>, <sip:k@y>', ['"Doe, John" <sip:j@x>', "<sip:k@y>"]),
        ("<sip:a@x;p=1,2>, <sip:b@y>", ["<sip:a@x;p=1,2>", "<sip:b@y>"]),
        ('"a \\" , b" <sip:a@x>', ['"a \\" , b" <sip:a@x>']),
        ("single", ["single"]),
        ("", [""]),
    ],
)
def test_split_list(value: str, parts: list[str]) -> None:
    assert split_list(value) == parts


@pytest.mark.parametrize("value", ["a,,b", "a,", ",a", '"a, b', "<sip:a, b", " , "])
def test_split_list_rejects(value: str) -> None:
    with pytest.raises(SipParseError):
        split_list(value)


def test_params() -> None:
    p = parse_params(' ; Tag = 12 ;lr; q=0.5;x="a;b, \\"c\\""', 0)
    assert list(p) == ["Tag", "lr", "q", "x"]
    assert p["tag"] == "12" and p["LR"] is None and p.get("missing") is None
    assert unquote(p["x"] or "") == 'a;b, "c"'
    assert str(p) == ';Tag=12;lr;q=0.5;x="a;b, \\"c\\""'
    assert p.with_param("TAG", "13")["tag"] == "13" and p["tag"] == "12"
    assert "lr" not in p.without("Lr")
    for bad in (";", ";a=", ";=b", ";a;a", "x", ';a="b', ";a=b c", ";a=<b>"):
        with pytest.raises(SipParseError):
            parse_params(bad, 0)


def test_quote_round_trip() -> None:
    for text in ("plain", 'with "quotes" and \\', "ctl\x00\x07\x7f", "æøå"):
        assert unquote(quote(text)) == text
    with pytest.raises(ValueError):
        quote("a\r\nb")


def test_name_addr_forms() -> None:
    na = parse_name_addr('"Alice \\"A\\"" <sip:alice@atlanta.com;transport=tcp>;tag=1928')
    assert na.display_name == 'Alice "A"' and na.tag == "1928"
    assert isinstance(na.uri, SipUri) and na.uri.transport == "tcp"
    assert str(na) == '"Alice \\"A\\"" <sip:alice@atlanta.com;transport=tcp>;tag=1928'
    plain = parse_name_addr("sip:bob@biloxi.com;tag=a6c85cf")  # addr-spec: tag is a header param
    assert plain.display_name is None and plain.tag == "a6c85cf"
    assert isinstance(plain.uri, SipUri) and not plain.uri.params
    tokens = parse_name_addr("Bob  Smith<sips:bob@biloxi.com>")
    assert tokens.display_name == "Bob  Smith" and tokens.uri == parse_uri("sips:bob@biloxi.com")
    assert parse_name_addr("<urn:service:sos>").uri == AbsoluteUri("urn", "service:sos")
    tagged = plain.with_tag("zz")
    assert tagged.tag == "zz" and plain.tag == "a6c85cf"
    assert str(NameAddr(parse_uri("sip:x@y"))) == "<sip:x@y>"


@pytest.mark.parametrize(
    "value",
    [
        "",
        '"unterminated <sip:a@b>',
        '"quoted" sip:a@b',
        "Bell, Alexander <sip:a@b>",
        "< sip:a@b >",
        "<sip:a@b",
        "sip:a@b?Route=x",
        "<sip:a@b> junk",
        "<sip:a@b>;tag=1;tag=2",
        "<>",
    ],
)
def test_name_addr_rejects(value: str) -> None:
    with pytest.raises(SipParseError):
        parse_name_addr(value)


def test_name_addr_without_brackets_refused_where_required() -> None:
    with pytest.raises(SipParseError):
        parse_name_addr("sip:proxy.example.com;lr", brackets=True)


def test_via() -> None:
    v = parse_via(
        "SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;rport;received=192.0.2.1"
    )
    assert (v.protocol, v.transport, v.host, v.port) == ("SIP/2.0", "UDP", "pc33.atlanta.com", 5066)
    assert v.branch == "z9hG4bK776asdhds" and v.received == "192.0.2.1"
    assert v.rport_requested and v.rport is None
    answered = v.with_param("rport", "5070").with_param("received", "198.51.100.7")
    assert answered.rport == 5070 and answered.received == "198.51.100.7"
    assert str(answered) == (
        "SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;rport=5070;received=198.51.100.7"
    )


def test_via_ipv6_and_whitespace() -> None:
    v = parse_via(
        "SIP / 2.0 / tcp [2001:db8::9:1] : 5061 ; branch = z9hG4bKas ; received=2001:db8::9:255"
    )
    assert (v.transport, v.host, v.port) == ("TCP", "2001:db8::9:1", 5061)
    assert v.received == "2001:db8::9:255" and v.branch == "z9hG4bKas"
    assert str(v) == "SIP/2.0/TCP [2001:db8::9:1]:5061;branch=z9hG4bKas;received=2001:db8::9:255"
    assert parse_via(str(v)) == v
    assert Via("WSS", "df7jal23ls0d.invalid", None).sent_by == ("df7jal23ls0d.invalid", None)


@pytest.mark.parametrize(
    "value",
    [
        "SIP/2.0/UDP",
        "SIP/2.0 host",
        "SIP/2.0/UDP host;;",
        "SIP/2.0/UDP host:70000",
        "SIP/2.0/UDP [2001:db8::1;branch=x",
        "SIP/2.0/UDP [zz::1]",
        "SIP/2.0/UDP host;branch=",
        "SIP/2.0/UDP host;rport=abc",
        "SIP/2.0/UDP host junk",
        "SIP/2.0/UDP host;branch=a;branch=b",
    ],
)
def test_via_rejects(value: str) -> None:
    with pytest.raises(SipParseError):
        v = parse_via(value)
        _ = v.rport


def test_cseq_numbers_and_media_types() -> None:
    cseq = parse_cseq("0009   INVITE")
    assert (cseq.number, cseq.method, str(cseq)) == (9, "INVITE", "9 INVITE")
    assert parse_cseq("4294967295 ACK").number == 2**32 - 1
    for bad in ("4294967296 INVITE", "1", "INVITE 1", "-1 INVITE", "1 INV ITE", "\uff11 INVITE"):
        with pytest.raises(SipParseError):
            parse_cseq(bad)
    assert parse_uint("1" * 50, "Expires", 2**32 - 1, clamp=True) == 2**32 - 1
    media = parse_media_type('Multipart/Mixed ; boundary="abc"')
    assert media.mime == "multipart/mixed" and unquote(media.params["boundary"] or "") == "abc"
    for bad in ("text", "text/", "/plain", "text/plain;"):
        with pytest.raises(SipParseError):
            parse_media_type(bad)


def test_contacts() -> None:
    assert parse_contacts(["*"]) == "*"
    contacts = parse_contacts(["<sip:a@x>;expires=3600;q=0.7", "sip:b@y;expires=99999999999"])
    assert contacts != "*"
    assert [c.expires for c in contacts] == [3600, 2**32 - 1]
    assert contacts[0].q == 0.7 and contacts[1].q is None
    for bad in (["*", "<sip:a@x>"], ["<sip:a@x>;q=2"], ["<sip:a@x>;expires=soon"]):
        with pytest.raises(SipParseError):
            parse_contacts(bad)
