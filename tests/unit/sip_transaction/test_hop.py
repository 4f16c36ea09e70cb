"""Per-hop rules: branches, Via stamping (RFC 3581), response routing (§18.2.2), ACK/CANCEL."""

from __future__ import annotations

from firmware.sip import Request, parse_message
from firmware.sip.hop import (
    MAGIC_COOKIE,
    is_rfc3261_branch,
    make_ack,
    make_cancel,
    new_branch,
    response_peer,
    stamp_via,
)
from firmware.sip.peer import Peer

from .conftest import request, response_to


def test_branches_are_unique_and_rfc3261() -> None:
    branches = {new_branch() for _ in range(1000)}
    assert len(branches) == 1000
    assert all(b.startswith(MAGIC_COOKIE) and is_rfc3261_branch(b) for b in branches)
    assert not is_rfc3261_branch("z9hG4bK") and not is_rfc3261_branch("abc")
    assert not is_rfc3261_branch(None)


def test_stamp_via_received_and_rport() -> None:
    req = request("OPTIONS", via_host="pc33.example.com", rport=True)
    stamp_via(req, Peer("udp", "198.51.100.7", 34567))
    top = req.top_via
    assert top.received == "198.51.100.7" and top.rport == 34567
    assert top.branch == "z9hG4bKabc123"
    wire = parse_message(req.to_bytes())
    assert wire.top_via == top  # the text was rewritten, not just the cached view
    assert len(wire.via) == 1


def test_stamp_via_leaves_a_matching_sent_by_alone() -> None:
    req = request("OPTIONS", via_host="192.0.2.10")
    before = req.to_bytes()
    stamp_via(req, Peer("udp", "192.0.2.10", 5060))
    assert req.to_bytes() == before
    v6 = request("OPTIONS", via_host="[2001:db8::1]")
    stamp_via(v6, Peer("udp", "2001:db8:0::1", 5060))
    assert v6.top_via.received is None


def test_stamp_via_keeps_the_other_vias() -> None:
    req = request(
        "OPTIONS",
        via_host="10.0.0.1",
        rport=True,
        extra="Via: SIP/2.0/UDP proxy:5060;branch=z9hG4bKp\r\n",
    )
    stamp_via(req, Peer("udp", "192.0.2.1", 6000))
    assert [v.host for v in req.via] == ["10.0.0.1", "proxy"]
    assert [v.host for v in parse_message(req.to_bytes()).via] == ["10.0.0.1", "proxy"]


def test_response_peer_udp() -> None:
    source = Peer("udp", "198.51.100.7", 34567)
    rport = request("OPTIONS", rport=True).top_via
    assert response_peer(rport, source) == source
    plain = request("OPTIONS", via_port=5080).top_via
    assert response_peer(plain, source) == Peer("udp", "198.51.100.7", 5080)
    default = request("OPTIONS", via_port=None).top_via
    assert response_peer(default, source) == Peer("udp", "198.51.100.7", 5060)


def test_response_peer_streams_keep_the_connection() -> None:
    via = request("OPTIONS", transport="TCP", via_port=None).top_via
    tcp = response_peer(via, Peer("tcp", "192.0.2.8", 40001, 3))
    assert tcp == Peer("tcp", "192.0.2.8", 5060, 3)
    tls = response_peer(via, Peer("tls", "192.0.2.8", 40001, 4))
    assert tls == Peer("tls", "192.0.2.8", 5061, 4)


def test_make_cancel() -> None:
    invite = request("INVITE", cseq=42, extra="Route: <sip:a;lr>\r\nRoute: <sip:b;lr>\r\n")
    cancel = make_cancel(invite)
    assert isinstance(cancel, Request) and cancel.method == "CANCEL"
    assert str(cancel.uri) == str(invite.uri)
    assert cancel.via == invite.via[:1]
    assert (cancel.cseq.number, cancel.cseq.method) == (42, "CANCEL")
    assert cancel.to == invite.to and cancel.from_ == invite.from_
    assert cancel.route == invite.route
    assert parse_message(cancel.to_bytes()).cseq == cancel.cseq


def test_make_ack_takes_to_from_the_response() -> None:
    invite = request("INVITE", cseq=7)
    ack = make_ack(invite, response_to(invite, 603, to_tag="declined"))
    assert ack.method == "ACK" and ack.to.tag == "declined"
    assert ack.cseq.number == 7 and ack.top_via.branch == invite.top_via.branch
    assert ack.body == b""
