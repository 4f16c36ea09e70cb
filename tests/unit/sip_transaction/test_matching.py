"""Matching (RFC 3261 §17.2.3, §9.2): CANCEL, ACK, RFC 2543 fallback, strays, overload."""

from __future__ import annotations

from firmware.sip import Response
from firmware.sip.peer import Peer
from firmware.sip.timers import TimerConfig
from firmware.sip.transaction import TransactionLayer
from firmware.sip.txn_events import (
    AckReceived,
    CancelRequested,
    RequestReceived,
    Send,
    StrayResponse,
    Terminated,
)

from .conftest import UDP_PEER, FakeClock, advance, request, response_to, sent_messages


def new_txn(layer: TransactionLayer, method: str = "INVITE", **kw: object) -> int:
    events = layer.receive(request(method, **kw), UDP_PEER)
    assert [type(e) for e in events] == [RequestReceived], events
    assert isinstance(events[0], RequestReceived)
    return events[0].txn


def test_cancel_without_invite_gets_481(layer: TransactionLayer) -> None:
    events = layer.receive(request("CANCEL"), UDP_PEER)
    assert [type(e) for e in events] == [Send]  # no TU involvement
    (answer,) = sent_messages(events)
    assert isinstance(answer, Response) and answer.status == 481
    assert answer.cseq.method == "CANCEL"
    assert layer.stats.cancels_unmatched == 1


def test_cancel_matches_pending_invite(layer: TransactionLayer, clock: FakeClock) -> None:
    txn = new_txn(layer)
    invite = request("INVITE")
    layer.respond(txn, invite.make_response(180, to_tag="callee"))
    cancel = request("CANCEL")
    events = layer.receive(cancel, UDP_PEER)
    assert [type(e) for e in events] == [Send, CancelRequested]
    (ok,) = sent_messages(events)
    assert isinstance(ok, Response) and ok.status == 200 and ok.cseq.method == "CANCEL"
    assert ok.to.tag == "callee"  # same tag as the INVITE's provisional
    assert events[1] == CancelRequested(txn, cancel, UDP_PEER)
    # the CANCEL retransmitted: 200 again, TU told only once
    again = layer.receive(request("CANCEL"), UDP_PEER)
    assert [type(e) for e in again] == [Send]
    # TU ends the INVITE with 487; the ACK (same branch) confirms it
    terminated = layer.respond(txn, invite.make_response(487, to_tag="callee"))
    assert sent_messages(terminated)[0].status == 487  # type: ignore[union-attr]
    assert layer.receive(request("ACK", to_tag="callee"), UDP_PEER) == []
    assert layer.state(txn) == "Confirmed"
    advance(layer, clock, clock.now + 60)
    assert layer.server_count == 0 and layer.next_deadline() is None


def test_cancel_after_final_response_is_200_but_no_event(layer: TransactionLayer) -> None:
    txn = new_txn(layer)
    layer.respond(txn, request("INVITE").make_response(200, to_tag="t"))
    events = layer.receive(request("CANCEL"), UDP_PEER)
    assert [type(e) for e in events] == [Send]
    assert sent_messages(events)[0].status == 200  # type: ignore[union-attr]


def test_branch_sent_by_and_method_all_count(layer: TransactionLayer) -> None:
    first = new_txn(layer, "INVITE")
    second = new_txn(layer, "INVITE", via_host="192.0.2.99")  # same branch, other sent-by
    third = new_txn(layer, "INVITE", via_port=5070)
    fourth = new_txn(layer, "OPTIONS")  # same branch, other method
    assert len({first, second, third, fourth}) == 4
    assert layer.server_count == 4


def test_stray_ack_goes_to_tu(layer: TransactionLayer) -> None:
    events = layer.receive(request("ACK", branch="z9hG4bKlonely", to_tag="x"), UDP_PEER)
    assert [type(e) for e in events] == [AckReceived]
    assert layer.server_count == 0 and layer.stats.acks_to_tu == 1


def test_stray_response(layer: TransactionLayer) -> None:
    events = layer.receive(response_to(request("INVITE"), 200), UDP_PEER)
    assert [type(e) for e in events] == [StrayResponse]


def test_rfc2543_invite_matching(layer: TransactionLayer, clock: FakeClock) -> None:
    txn = new_txn(layer, branch=None)
    # the same request again is a retransmission: quenched with 100, not a new txn
    again = layer.receive(request("INVITE", branch=None), UDP_PEER)
    assert [m.status for m in sent_messages(again)] == [100]  # type: ignore[union-attr]
    # another From tag, Call-ID or CSeq is another transaction
    other = new_txn(layer, branch=None, from_tag="other")
    assert other != txn
    new_txn(layer, branch=None, call_id="call-2@192.0.2.10")
    new_txn(layer, branch=None, cseq=2)
    layer.respond(txn, request("INVITE", branch=None).make_response(486, to_tag="rtag"))
    # ACK: same From tag, Call-ID, CSeq number, top Via, and the To tag we sent
    wrong = layer.receive(request("ACK", branch=None, to_tag="nope"), UDP_PEER)
    assert [type(e) for e in wrong] == [AckReceived]
    assert layer.receive(request("ACK", branch=None, to_tag="rtag"), UDP_PEER) == []
    assert layer.state(txn) == "Confirmed"


def test_rfc2543_cancel(layer: TransactionLayer) -> None:
    txn = new_txn(layer, branch=None)
    events = layer.receive(request("CANCEL", branch=None), UDP_PEER)
    assert [type(e) for e in events] == [Send, CancelRequested]
    assert isinstance(events[1], CancelRequested) and events[1].invite_txn == txn
    unmatched = layer.receive(request("CANCEL", branch=None, from_tag="zz"), UDP_PEER)
    assert sent_messages(unmatched)[0].status == 481  # type: ignore[union-attr]


def test_bare_magic_cookie_falls_back_to_rfc2543(layer: TransactionLayer) -> None:
    """RFC 4475 badbranch: ``branch=z9hG4bK`` alone identifies nothing."""
    txn = new_txn(layer, "OPTIONS", branch="z9hG4bK")
    assert layer.receive(request("OPTIONS", branch="z9hG4bK"), UDP_PEER) == []
    new_txn(layer, "OPTIONS", branch="z9hG4bK", call_id="another@x")
    assert layer.state(txn) == "Trying"


def test_overload_answers_503_statelessly(clock: FakeClock) -> None:
    layer = TransactionLayer(clock, TimerConfig(), max_server_transactions=2, retry_after=7)
    first = new_txn(layer, branch="z9hG4bK1")
    new_txn(layer, "OPTIONS", branch="z9hG4bK2")
    events = layer.receive(request("INVITE", branch="z9hG4bK3"), UDP_PEER)
    assert [type(e) for e in events] == [Send]
    (busy,) = sent_messages(events)
    assert isinstance(busy, Response) and busy.status == 503
    assert busy.headers.get("Retry-After") == "7" and busy.to.tag
    assert layer.server_count == 2 and layer.stats.overload_rejected == 1
    # known transactions are still served, and ACKs never answered
    layer.respond(first, request("INVITE", branch="z9hG4bK1").make_response(180, to_tag="t"))
    assert len(layer.receive(request("INVITE", branch="z9hG4bK1"), UDP_PEER)) == 1
    assert [type(e) for e in layer.receive(request("ACK", branch="z9hG4bK9"), UDP_PEER)] == [
        AckReceived
    ]


def test_everything_is_forgotten(layer: TransactionLayer, clock: FakeClock) -> None:
    """Bounded memory: after the timers run out, no transaction and no timer is left."""
    for i in range(50):
        txn = new_txn(layer, branch=f"z9hG4bKmem{i}")
        layer.respond(txn, request("INVITE", branch=f"z9hG4bKmem{i}").make_response(200))
        layer.send_request(
            request("OPTIONS", branch=f"z9hG4bKout{i}"), Peer("udp", "192.0.2.5", 5060)
        )
    events = [e for _, e in advance(layer, clock, clock.now + 100)]
    assert sum(isinstance(e, Terminated) for e in events) == 100
    assert layer.server_count == 0 and layer.client_count == 0
    assert layer.next_deadline() is None and len(layer._timers) == 0


def test_malformed_match_fields_are_dropped(layer: TransactionLayer) -> None:
    response = response_to(request("INVITE"), 200)
    response.headers.set("CSeq", "not a cseq")
    assert layer.receive(response, UDP_PEER) == []
    assert layer.stats.malformed == 1
