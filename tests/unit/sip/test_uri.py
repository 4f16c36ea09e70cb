"""URI parsing and RFC 3261 §19.1.4 comparison."""

from __future__ import annotations

import pytest

from firmware.sip import AbsoluteUri, SipParseError, SipUri, parse_uri, unescape
from firmware.sip.uri import normalize_escapes


def sip(text: str) -> SipUri:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    return uri


def test_components() -> None:
    uri = sip(
        "sips:alice:secret@atlanta.com:5061;transport=TCP;lr?subject=project%20x&priority=urgent"
    )
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sips", "alice", "secret", "atlanta.com", 5061,
    )  # fmt: skip
    assert uri.transport == "tcp" and uri.lr and uri.secure
    assert uri.headers == (("subject", "project%20x"), ("priority", "urgent"))
    assert (
        str(uri)
        == "sips:alice:secret@atlanta.com:5061;transport=TCP;lr?subject=project%20x&priority=urgent"
    )


def test_no_user_and_user_with_reserved_characters() -> None:
    assert sip("sip:example.com").user is None
    uri = sip("sip:+4512345678;phone-context=example.com@gw.example.com;user=phone")
    assert uri.user == "+4512345678;phone-context=example.com"
    assert uri.params["user"] == "phone"


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("sip:[2001:db8::1]:5060", "2001:db8::1", 5060),
        ("sip:alice@[2001:DB8::10]", "2001:DB8::10", None),
        ("sips:[::ffff:192.0.2.1];transport=tls", "::ffff:192.0.2.1", None),
        ("sip:bob@192.0.2.4:6000", "192.0.2.4", 6000),
        ("sip:host.example.com.", "host.example.com.", None),
    ],
)
def test_hosts(text: str, host: str, port: int | None) -> None:
    uri = sip(text)
    assert (uri.host, uri.port) == (host, port)
    assert str(uri.replace(port=uri.port)) == text  # rebuilt text, IPv6 brackets restored


def test_ipv6_comparison_is_by_address() -> None:
    assert sip("sip:[2001:db8::1]") == sip("sip:[2001:DB8:0:0:0:0:0:1]")
    assert sip("sip:[2001:db8::1]") != sip("sip:[2001:db8::2]")
    assert sip("sip:[2001:db8::1]:5060") != sip("sip:[2001:db8::1]")


@pytest.mark.parametrize(
    ("a", "b"),
    [  # RFC 3261 §19.1.4: equivalent
        ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
        ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
        (
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
        ),
        (
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
        ),
    ],
)
def test_rfc3261_equivalent(a: str, b: str) -> None:
    assert parse_uri(a) == parse_uri(b)
    assert hash(parse_uri(a)) == hash(parse_uri(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [  # RFC 3261 §19.1.4: not equivalent
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp;user=ip"),
        ("sip:bob@biloxi.com;transport=udp", "sip:bob@biloxi.com:6000;transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
        ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
        ("sip:alice@atlanta.com", "sip:atlanta.com"),
        ("sip:alice:pw@atlanta.com", "sip:alice@atlanta.com"),
        ("sip:alice@atlanta.com;maddr=239.255.255.1", "sip:alice@atlanta.com"),
        ("sip:a%40b@example.com", "sip:a@b@example.com"),  # reserved stays escaped
    ],
)
def test_rfc3261_not_equivalent(a: str, b: str) -> None:
    try:
        second = parse_uri(b)
    except SipParseError:
        return  # "a@b@example.com" is not even a URI: certainly not equal
    assert parse_uri(a) != second


def test_escapes() -> None:
    assert normalize_escapes("%61%2a%2F%25%4a") == "a*%2F%25J"
    assert unescape("I%20have%20spaces") == "I have spaces"
    assert unescape("%C3%A6%C3%B8%C3%A5") == "æøå"
    assert unescape("%FF") == "\udcff"  # invalid UTF-8 kept, never raises
    uri = sip("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31")
    assert "lr" in uri.params and "NAME" in uri.params
    assert uri == sip("sip:caller@host5.example.net;lr;name=value%2541")


def test_tel_and_other_schemes() -> None:
    tel = parse_uri("tel:+45-33-12-34-56;phone-context=+45")
    assert isinstance(tel, SipUri) and tel.scheme == "tel" and tel.user == "+45-33-12-34-56"
    assert tel == parse_uri("tel:+4533123456;phone-context=+45")
    assert tel != parse_uri("tel:+4533123456")
    assert str(tel) == "tel:+45-33-12-34-56;phone-context=+45"
    assert tel.address_of_record == "tel:+4533123456"
    urn = parse_uri("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
    assert urn == AbsoluteUri("URN", "uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
    assert str(parse_uri("http://www.example.com/a?b=c")) == "http://www.example.com/a?b=c"


def test_address_of_record_and_replace() -> None:
    uri = sip("sip:%61lice@Atlanta.COM:5070;transport=tcp?x=y")
    assert uri.address_of_record == "sip:alice@atlanta.com:5070"
    moved = uri.replace(host="192.0.2.1", port=None, headers=())
    assert str(moved) == "sip:%61lice@192.0.2.1;transport=tcp"
    assert str(uri) == "sip:%61lice@Atlanta.COM:5070;transport=tcp?x=y"
    assert str(SipUri("sip", "bob", "2001:db8::5", 5062)) == "sip:bob@[2001:db8::5]:5062"
    assert str(uri.replace(params=uri.params.with_param("lr"))).endswith(";transport=tcp;lr?x=y")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sip",
        ":foo",
        "sip:",
        "sip:@example.com",
        "sip:user@",
        "sip:user@host:",
        "sip:user@host:99999",
        "sip:user@host:12a",
        "sip:user@ho st",
        "sip:user@host;",
        "sip:user@host;;lr",
        "sip:user@host;lr;lr",
        "sip:user@host;a=",
        "sip:user@host?",
        "sip:user@host?a",
        "sip:us%2@host",
        "sip:us%zzer@host",
        "sip:user@host%41",
        "sip:user@[2001:db8::1",
        "sip:user@[2001:db8::g]",
        "sip:user@[::1]x",
        "sip:user@256.1.1.1",
        "sip:user@1.2.3",
        "sip:user@a..b",
        "sip:user@host;lr?x=1;y",
        "sip:us<er@host",
        "sip:user@host\x00",
        "tel:",
        "tel:+45 12",
        "1http://x",
        "http:",
        "http:a b",
        "sip:" + "a" * 3000 + "@host",
        "sip:host" + ";p" * 40,
    ],
)
def test_malformed(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(text)


def test_parsed_uris_are_cached_and_bounded() -> None:
    from firmware.sip import uri as uri_module
    from firmware.sip.fields import parse_name_addr

    first = parse_uri("sip:cache-test@192.0.2.7:5060;transport=udp")
    assert parse_uri("sip:cache-test@192.0.2.7:5060;transport=udp") is first
    assert str(first) == "sip:cache-test@192.0.2.7:5060;transport=udp"
    addr = parse_name_addr('"Cache" <sip:cache-test@192.0.2.7>;tag=1')
    assert parse_name_addr('"Cache" <sip:cache-test@192.0.2.7>;tag=1') is addr
    with pytest.raises(SipParseError):  # bracket rule differs: not served from the cache
        parse_name_addr("sip:cache-test@192.0.2.7;tag=1", brackets=True)
    for _ in range(2):  # errors are never cached
        with pytest.raises(SipParseError):
            parse_uri("sip:bad host@192.0.2.7")
    for i in range(uri_module.CACHE_SIZE + 10):
        parse_uri(f"sip:u{i}@192.0.2.8")
    assert len(uri_module._URI_CACHE) <= uri_module.CACHE_SIZE
