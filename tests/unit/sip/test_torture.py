"""RFC 4475 torture messages: every outcome, and the parsed values where the RFC says them."""

from __future__ import annotations

from typing import Any

import pytest

from firmware.sip import (
    AbsoluteUri,
    Request,
    Response,
    SipParseError,
    SipUri,
    error_response,
    message_length,
    parse_message,
    parse_uri,
    unescape,
    unquote,
)

# What the parser does with each invalid message: (status, answerable) when
# parse_message rejects it; "validate" when only Message.validate() rejects it (an
# unused header the RFC lets a tolerant element ignore); "accept" when it is
# syntactically valid and the RFC's objection is a decision for the layer above.
INVALID_OUTCOMES: dict[str, tuple[int, bool] | str] = {
    "badinv01": (400, True),
    "clerr": (400, True),
    "ncl": (400, True),
    "scalar02": (400, True),
    "scalarlg": (400, False),  # a response: never answered
    "quotbal": (400, True),
    "ltgtruri": (400, True),
    "lwsruri": (400, True),
    "lwsstart": (400, True),
    "trws": (400, True),
    "escruri": (400, True),
    "baddate": "validate",  # [liberal-ok]: Date is parsed only when used
    "regbadct": "validate",  # [liberal-ok]: Contact is parsed only when used
    "badaspec": (400, True),
    "baddn": (400, False),  # archive copy has no empty line: the header section never ends
    "badvers": (505, True),
    "mismatch01": (400, True),
    "mismatch02": (400, True),
    "bigcode": (400, False),  # a response: never answered
    "insuf": (400, False),  # no From/To/Call-ID to copy into a response
    "unksm2": "accept",  # non-SIP AOR in a REGISTER: the registrar's 400, not a syntax error
    "multi01": (400, True),
    "mcl01": (400, True),
    "sdp01": "accept",  # Accept without application/sdp: the UAS's 406, not a syntax error
}


def parse_ok(data: bytes) -> Request | Response:
    message = parse_message(data)
    message.validate()
    return message


def test_manifest_outcome(torture_case: Any) -> None:
    if torture_case.expected == "valid":
        message = parse_ok(torture_case.data)
        again = parse_message(message.to_bytes())
        assert again == message
        again.validate()
        return
    outcome = INVALID_OUTCOMES[torture_case.name]
    if outcome == "accept":
        parse_ok(torture_case.data)
    elif outcome == "validate":
        assert torture_case.liberal_ok
        message = parse_message(torture_case.data)
        with pytest.raises(SipParseError):
            message.validate()
    else:
        assert isinstance(outcome, tuple)
        status, answerable = outcome
        with pytest.raises(SipParseError) as info:
            parse_message(torture_case.data)
        assert not info.value.internal
        assert info.value.status == status
        response = error_response(info.value, to_tag="t1")
        assert (response is not None) == answerable
        if response is not None:
            # Copied as received (the client matches on Via branch and CSeq), even
            # the field that made the request invalid.
            wire = response.to_bytes()
            assert wire.startswith(f"SIP/2.0 {status} ".encode())
            call_id = info.value.headers.get("Call-ID") if info.value.headers else None
            assert call_id is not None and f"\r\nCall-ID: {call_id}\r\n".encode() in wire
            assert wire.endswith(b"\r\nContent-Length: 0\r\n\r\n")


def test_every_invalid_message_has_a_decided_outcome(torture_cases: dict[str, Any]) -> None:
    invalid = {n for n, c in torture_cases.items() if c.expected == "invalid"}
    assert invalid == set(INVALID_OUTCOMES)


def test_wsinv_folding_compact_forms_and_odd_whitespace(torture: dict[str, bytes]) -> None:
    m = parse_message(torture["wsinv"])
    assert isinstance(m, Request) and m.method == "INVITE"
    assert m.uri == parse_uri("sip:vivekg@chair-dnrc.example.com;unknownparam")
    assert str(m.to.uri) == "sip:vivekg@chair-dnrc.example.com" and m.to.tag == "1918181833n"
    assert m.from_.display_name == 'J Rosenberg \\"' and m.from_.tag == "98asjd8"
    assert m.max_forwards == 68
    assert (m.cseq.number, m.cseq.method) == (9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in m.via] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.headers.get("Subject") == ""  # "s :" compact form, empty value
    assert m.headers.get("newfangledheader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    contact = m.contact
    assert contact != "*" and len(contact) == 1
    assert contact[0].display_name == 'Quoted string ""'
    assert contact[0].params["newparam"] == "newvalue"
    assert "secondparam" in contact[0].params and contact[0].params["secondparam"] is None
    assert contact[0].q == 0.33
    assert m.route[0].uri == parse_uri("sip:services.example.com;lr")
    assert isinstance(m.route[0].uri, SipUri) and m.route[0].uri.lr
    assert m.content_type is not None and m.content_type.mime == "application/sdp"
    assert len(m.body) == 150 and m.body.startswith(b"v=0\r\n")


def test_intmeth_token_characters_and_quoted_controls(torture: dict[str, bytes]) -> None:
    m = parse_message(torture["intmeth"])
    assert isinstance(m, Request)
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.cseq.method == m.method
    assert isinstance(m.uri, SipUri)
    assert m.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert unquote(m.from_.params["fromParam''~+*_!.-%"] or "") == "работающий"
    assert m.from_.tag == "_token~1'+`*%!-."
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    # The quoted NUL survives a round trip, re-escaped.
    assert parse_message(m.to_bytes()).to.display_name == m.to.display_name


def test_esc01_escapes_compare_decoded(torture: dict[str, bytes]) -> None:
    m = parse_message(torture["esc01"])
    assert isinstance(m, Request) and isinstance(m.uri, SipUri)
    assert unescape(m.uri.user or "") == "sips:user@example.com"
    assert m.to.uri == parse_uri("sip:user@example.com")
    assert isinstance(m.from_.uri, SipUri) and unescape(m.from_.uri.user or "") == "I have spaces"
    contact = m.contact
    assert contact != "*"
    uri = contact[0].uri
    assert isinstance(uri, SipUri)
    assert "lr" in uri.params and uri.params["name"] == "v%61lue%25%34%31"
    assert unescape(uri.params["name"] or "") == "value%41"
    assert uri == parse_uri("sip:caller@host5.example.net;lr;name=value%2541")
    assert m.content_type is not None and m.content_type.mime == "application/sdp"  # "C:" form


def test_escnull_two_distinct_contacts(torture: dict[str, bytes]) -> None:
    m = parse_message(torture["escnull"])
    contact = m.contact
    assert contact != "*" and len(contact) == 2
    first, second = (c.uri for c in contact)
    assert isinstance(first, SipUri) and unescape(first.user or "") == "\x00"
    assert first != second
    assert m.headers.get("Content-Length") == "0"  # "L:0" compact, no space


def test_esc02_percent_is_not_an_escape_in_method_or_header_name(
    torture: dict[str, bytes],
) -> None:
    m = parse_message(torture["esc02"])
    assert isinstance(m, Request) and m.method == "RE%47IST%45R"
    contact = m.contact
    assert contact != "*"
    assert [str(c.uri) for c in contact] == [
        "sip:alias1@host1.example.com",
        "sip:alias3@host3.example.com",
    ]
    assert m.headers.get_all("C%6Fntact") == ["<sip:alias2@host2.example.com>"]
    assert m.to.display_name == "%Z%45"


def test_longreq_many_vias_and_long_values(torture: dict[str, bytes]) -> None:
    m = parse_message(torture["longreq"])
    assert len(m.via) == 34
    assert m.via[0].host == "sip33.example.com" and m.via[-1].received == "192.0.2.5"
    assert isinstance(m.to.uri, SipUri) and m.to.uri.port == 6000
    assert m.to.uri.params["verylonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglongParameterNameWithNoValue"] is None  # fmt: skip
    assert m.to.display_name is not None and m.to.display_name.endswith("proportion")
    assert len(m.body) == 150


def test_dblreq_datagram_ignores_trailing_octets(torture: dict[str, bytes]) -> None:
    data = torture["dblreq"]
    m = parse_message(data)
    assert isinstance(m, Request) and m.method == "REGISTER" and m.body == b""
    assert m.call_id.startswith("dblreq.0ha0")  # "I:" compact form, upper case
    first = message_length(data, stream=True)
    assert first is not None and data[:first].endswith(b"Content-Length: 0\r\n\r\n")
    rest = data[first:].lstrip(b"\r\n")
    assert message_length(rest, stream=True) is not None
    second = parse_message(rest)
    assert isinstance(second, Request) and second.method == "INVITE"


def test_semiuri_and_folded_accept(torture: dict[str, bytes]) -> None:
    m = parse_message(torture["semiuri"])
    assert isinstance(m, Request) and isinstance(m.uri, SipUri)
    assert m.uri.user == "user;par=u%40example.net" and m.uri.host == "example.com"
    assert not m.uri.params
    assert m.headers.get_all("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


def test_transports(torture: dict[str, bytes]) -> None:
    m = parse_message(torture["transports"])
    assert [v.transport for v in m.via] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_mpart01_binary_body_framed_by_content_length(torture: dict[str, bytes]) -> None:
    m = parse_message(torture["mpart01"])
    assert len(m.body) == 553 and b"\x00" in m.body
    assert m.content_type is not None and m.content_type.params["boundary"] == "7a9cbec02ceef655"
    assert m.via[0].rport_requested and m.via[0].rport is None
    assert m.date is not None and m.date.year == 2005


def test_responses_with_odd_reason_phrases(torture: dict[str, bytes]) -> None:
    unreason = parse_message(torture["unreason"])
    assert isinstance(unreason, Response) and unreason.status == 200
    assert unreason.reason.startswith("= 2**3 * 5**2 но сто")
    noreason = parse_message(torture["noreason"])
    assert isinstance(noreason, Response) and (noreason.status, noreason.reason) == (100, "")


def test_display_name_without_space_and_addr_spec_params(torture: dict[str, bytes]) -> None:
    assert parse_message(torture["lwsdisp"]).from_.display_name == "caller"
    cparam01 = parse_message(torture["cparam01"]).contact
    assert cparam01 != "*" and "unknownparam" in cparam01[0].params  # header param (no <>)
    cparam02 = parse_message(torture["cparam02"]).contact
    assert cparam02 != "*" and not cparam02[0].params
    assert isinstance(cparam02[0].uri, SipUri) and "unknownparam" in cparam02[0].uri.params
    regescrt = parse_message(torture["regescrt"]).contact
    assert regescrt != "*" and isinstance(regescrt[0].uri, SipUri)
    assert regescrt[0].uri.headers == (("Route", "%3Csip:sip.example.com%3E"),)


def test_other_schemes_and_rfc2543(torture: dict[str, bytes]) -> None:
    unkscm = parse_message(torture["unkscm"])
    assert isinstance(unkscm, Request) and unkscm.uri == AbsoluteUri(
        "nobodyKnowsThisScheme", "totallyopaquecontent"
    )
    novelsc = parse_message(torture["novelsc"])
    assert isinstance(novelsc, Request) and isinstance(novelsc.uri, AbsoluteUri)
    assert novelsc.uri.scheme == "soap.beep"
    old = parse_message(torture["inv2543"])
    assert old.via[0].branch is None and old.from_.tag is None and old.max_forwards is None
    assert old.content_length is None and old.body.startswith(b"v=0") and old.body.endswith(b"\r\n")
    assert parse_message(torture["zeromf"]).max_forwards == 0
    assert parse_message(torture["badbranch"]).via[0].branch == "z9hG4bK"
    assert parse_message(torture["bcast"]).via[1].host == "255.255.255.255"
    regaut = parse_message(torture["regaut01"])
    assert regaut.headers.get("Authorization") == "NoOneKnowsThisScheme opaque-data=here"
    bext = parse_message(torture["bext01"])
    assert bext.require == ("nothingSupportsThis", "nothingSupportsThisEither")
    assert bext.proxy_require == ("noProxiesSupportThis", "norDoAnyProxiesSupportThis")


def test_unksm2_keeps_non_sip_uris(torture: dict[str, bytes]) -> None:
    m = parse_message(torture["unksm2"])
    assert m.to.uri == AbsoluteUri("isbn", "2983792873")
    assert m.from_.uri == AbsoluteUri("http", "//www.example.com")
    contact = m.contact
    assert contact != "*" and contact[0].uri == AbsoluteUri("name", "John_Smith")


def test_error_responses_copy_the_request(torture: dict[str, bytes]) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(torture["mismatch01"])
    response = error_response(info.value, to_tag="abc")
    assert response is not None
    wire = parse_message(response.to_bytes())
    assert isinstance(wire, Response) and wire.status == 400
    assert wire.call_id == "mismatch01.dj0234sxdfl3"
    assert wire.to.tag == "abc" and wire.from_.tag == "34525"
    assert str(wire.cseq) == "8 INVITE" and wire.via[0].branch == "z9hG4bKkdjuw"
    with pytest.raises(SipParseError) as info:
        parse_message(torture["badvers"])
    response = error_response(info.value)
    assert response is not None and response.status == 505
    assert response.reason == "Version Not Supported"


def test_stream_framing_of_the_bad_lengths(torture: dict[str, bytes]) -> None:
    assert message_length(torture["clerr"], stream=True) is None  # wait for more, then close
    for name in ("ncl", "mcl01"):
        with pytest.raises(SipParseError):
            message_length(torture[name], stream=True)
    with pytest.raises(SipParseError):
        message_length(torture["clerr"], stream=False)
