"""Dialog state and in-dialog request construction (RFC 3261 §12)."""

from __future__ import annotations

import pytest

from firmware.sip import Request, Response, parse_message
from firmware.sip.dialog import Dialog, DialogError
from firmware.sip.peer import Peer

INVITE = (
    b"INVITE sip:201@box.example SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK1\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Anne" <sip:101@box.example>;tag=aaa\r\n'
    b"To: <sip:201@box.example>\r\n"
    b"Call-ID: c1@10.0.0.5\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Contact: <sip:101@10.0.0.5:5062>\r\n"
    b"Record-Route: <sip:p2.example;lr>, <sip:p1.example;lr>\r\n"
    b"Content-Length: 0\r\n\r\n"
)
OK = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK1\r\n"
    b'From: "Anne" <sip:101@box.example>;tag=aaa\r\n'
    b"To: <sip:201@box.example>;tag=bbb\r\n"
    b"Call-ID: c1@10.0.0.5\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Contact: <sip:201@10.0.0.9:5070>\r\n"
    b"Record-Route: <sip:p2.example;lr>, <sip:p1.example;lr>\r\n"
    b"Content-Length: 0\r\n\r\n"
)
PEER = Peer("udp", "127.0.0.1", 5070)


def msg(data: bytes) -> Request | Response:
    return parse_message(data)


def test_uac_dialog_builds_bye_and_ack() -> None:
    invite, ok = msg(INVITE), msg(OK)
    assert isinstance(invite, Request) and isinstance(ok, Response)
    d = Dialog.as_uac(invite, ok, PEER)
    assert (d.call_id, d.local_tag, d.remote_tag) == ("c1@10.0.0.5", "aaa", "bbb")
    assert d.confirmed
    ack = d.ack(7)
    assert ack.cseq.number == 7 and ack.cseq.method == "ACK"
    bye = d.request("BYE")
    assert bye.cseq.number == 8 and bye.method == "BYE"
    assert str(bye.uri) == "sip:201@10.0.0.9:5070"  # the remote target
    assert [str(r.uri) for r in bye.route] == ["sip:p1.example;lr", "sip:p2.example;lr"]  # reversed
    assert bye.from_.tag == "aaa" and bye.to.tag == "bbb"
    assert bye.from_.display_name == "Anne"
    again = parse_message(_with_via(bye))  # what we build parses back
    assert isinstance(again, Request) and again.call_id == "c1@10.0.0.5"


def _with_via(request: Request) -> bytes:
    request.headers.prepend("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx")
    return request.to_bytes()


def test_uas_dialog_checks_cseq_and_refreshes_target() -> None:
    invite = msg(INVITE)
    assert isinstance(invite, Request)
    d = Dialog.as_uas(invite, "ourtag", PEER)
    assert d.remote_seq == 7 and d.local_tag == "ourtag" and d.remote_tag == "aaa"
    assert [str(r.uri) for r in d.route_set] == ["sip:p2.example;lr", "sip:p1.example;lr"]
    reinvite = msg(
        INVITE.replace(b"CSeq: 7", b"CSeq: 8")
        .replace(b"To: <sip:201@box.example>", b"To: <sip:201@box.example>;tag=ourtag")
        .replace(b"10.0.0.5:5062>", b"10.0.0.6:5062>")
    )
    assert isinstance(reinvite, Request)
    d.check_request(reinvite)
    assert str(d.remote_target) == "sip:101@10.0.0.6:5062"
    with pytest.raises(DialogError) as info:
        d.check_request(reinvite)  # same CSeq again: out of order
    assert info.value.status == 500
    bye = d.request("BYE")
    assert bye.from_.tag == "ourtag" and bye.to.tag == "aaa"
    assert bye.cseq.number == d.local_seq


def test_dialog_needs_tags_and_contact() -> None:
    invite = msg(INVITE)
    ok = msg(OK.replace(b";tag=bbb", b""))
    assert isinstance(invite, Request) and isinstance(ok, Response)
    with pytest.raises(DialogError):
        Dialog.as_uac(invite, ok, PEER)
    no_contact = msg(INVITE.replace(b"Contact: <sip:101@10.0.0.5:5062>\r\n", b""))
    assert isinstance(no_contact, Request)
    with pytest.raises(DialogError):
        Dialog.as_uas(no_contact, "t", PEER)
