"""INVITE client transaction (RFC 3261 §17.1.1, RFC 6026 Accepted state and timer M)."""

from __future__ import annotations

import pytest

from firmware.sip import Request, Response
from firmware.sip.transaction import TransactionLayer
from firmware.sip.txn_events import (
    ResponseReceived,
    Send,
    StrayResponse,
    Terminated,
    Timeout,
    TransportError,
)

from .conftest import (
    TCP_PEER,
    UDP_PEER,
    FakeClock,
    advance,
    request,
    response_to,
    sends,
    sent_messages,
)


def start(layer: TransactionLayer, **kw: object) -> tuple[int, Request]:
    invite = request("INVITE", **kw)
    txn, events = layer.send_request(invite, kw.get("peer", UDP_PEER))  # type: ignore[arg-type]
    assert [type(e) for e in events] == [Send]
    assert layer.state(txn) == "Calling"
    return txn, invite


def test_timer_a_doubles_until_timer_b(layer: TransactionLayer, clock: FakeClock) -> None:
    txn, _ = start(layer)
    t0 = clock.now
    fired = advance(layer, clock, t0 + 40)
    resent = [round(t - t0, 3) for t, e in fired if isinstance(e, Send)]
    assert resent == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # A: T1, 2T1, 4T1... no T2 cap
    ends = [(round(t - t0, 3), type(e)) for t, e in fired if not isinstance(e, Send)]
    assert ends == [(32.0, Timeout), (32.0, Terminated)]  # B = 64*T1
    assert layer.state(txn) is None
    assert layer.next_deadline() is None
    assert layer.stats.timeouts == 1


def test_reliable_transport_has_no_timer_a(layer: TransactionLayer, clock: FakeClock) -> None:
    txn, _ = layer.send_request(request("INVITE", transport="TCP"), TCP_PEER)
    t0 = clock.now
    fired = advance(layer, clock, t0 + 40)
    assert [(round(t - t0, 3), type(e)) for t, e in fired] == [(32.0, Timeout), (32.0, Terminated)]
    assert layer.state(txn) is None


def test_provisional_stops_retransmissions_then_2xx_accepted(
    layer: TransactionLayer, clock: FakeClock
) -> None:
    txn, invite = start(layer)
    t0 = clock.now
    clock.now += 0.1
    events = layer.receive(response_to(invite, 180), UDP_PEER)
    assert [type(e) for e in events] == [ResponseReceived]
    assert layer.state(txn) == "Proceeding"
    assert not sends(advance(layer, clock, t0 + 60))  # no A, and B does not apply any more
    assert layer.state(txn) == "Proceeding"
    ok = response_to(invite, 200)
    events = layer.receive(ok, UDP_PEER)
    assert [type(e) for e in events] == [ResponseReceived]  # no ACK: the TU ACKs a 2xx
    assert layer.state(txn) == "Accepted"
    t1 = clock.now
    # RFC 6026: retransmitted 2xx (or another fork's) go to the TU while Accepted
    again = layer.receive(response_to(invite, 200, to_tag="fork2"), UDP_PEER)
    assert [type(e) for e in again] == [ResponseReceived]
    assert not layer.receive(response_to(invite, 486), UDP_PEER)  # non-2xx now: dropped
    fired = advance(layer, clock, t1 + 40)
    assert [(round(t - t1, 3), type(e)) for t, e in fired] == [(32.0, Terminated)]  # M
    late = layer.receive(ok, UDP_PEER)
    assert [type(e) for e in late] == [StrayResponse]


def test_non_2xx_final_generates_ack(layer: TransactionLayer, clock: FakeClock) -> None:
    txn, invite = start(layer, extra="Route: <sip:proxy.example.com;lr>\r\n")
    busy = response_to(invite, 486, to_tag="busy1")
    events = layer.receive(busy, UDP_PEER)
    assert [type(e) for e in events] == [Send, ResponseReceived]
    (ack,) = sent_messages(events)
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert str(ack.uri) == str(invite.uri)
    assert len(ack.via) == 1 and ack.top_via.branch == invite.top_via.branch
    assert ack.to.tag == "busy1"
    assert ack.from_ == invite.from_ and ack.call_id == invite.call_id
    assert (ack.cseq.number, ack.cseq.method) == (invite.cseq.number, "ACK")
    assert ack.route == invite.route and len(ack.route) == 1
    assert layer.state(txn) == "Completed"
    # a retransmitted final response: ACK again, TU not bothered
    again = layer.receive(busy, UDP_PEER)
    assert [type(e) for e in again] == [Send]
    assert again[0].data == events[0].data  # type: ignore[union-attr]
    t0 = clock.now
    fired = advance(layer, clock, t0 + 40)
    assert [(round(t - t0, 3), type(e)) for t, e in fired] == [(32.0, Terminated)]  # D


def test_non_2xx_on_tcp_terminates_at_once(layer: TransactionLayer) -> None:
    invite = request("INVITE", transport="TCP")
    txn, _ = layer.send_request(invite, TCP_PEER)
    events = layer.receive(response_to(invite, 503), TCP_PEER)
    assert [type(e) for e in events] == [Send, ResponseReceived, Terminated]  # D = 0
    assert events[0].peer == TCP_PEER  # type: ignore[union-attr]
    assert layer.state(txn) is None and layer.next_deadline() is None


def test_final_in_calling_state_without_provisional(layer: TransactionLayer) -> None:
    txn, invite = start(layer)
    events = layer.receive(response_to(invite, 200), UDP_PEER)
    assert [type(e) for e in events] == [ResponseReceived]
    assert isinstance(events[0], ResponseReceived) and events[0].response.status == 200
    assert layer.state(txn) == "Accepted"


def test_transport_error(layer: TransactionLayer) -> None:
    txn, _ = start(layer)
    events = layer.transport_error(txn)
    assert events == [TransportError(txn), Terminated(txn)]
    assert layer.transport_error(txn) == []
    assert layer.next_deadline() is None


def test_proceeding_limit(layer: TransactionLayer, clock: FakeClock) -> None:
    _txn, invite = start(layer)
    layer.receive(response_to(invite, 180), UDP_PEER)
    t0 = clock.now
    fired = advance(layer, clock, t0 + layer.config.proceeding_limit + 1)
    assert [type(e) for _, e in fired] == [Timeout, Terminated]
    assert fired[0][0] - t0 == pytest.approx(layer.config.proceeding_limit)


def test_pending_invite_for_cancel(layer: TransactionLayer) -> None:
    txn, invite = start(layer)
    assert layer.pending_invite(txn) is invite
    layer.receive(response_to(invite, 180), UDP_PEER)
    assert layer.pending_invite(txn) is invite
    layer.receive(response_to(invite, 200), UDP_PEER)
    assert layer.pending_invite(txn) is None


def test_refuses_what_is_not_a_client_transaction(layer: TransactionLayer) -> None:
    with pytest.raises(ValueError, match="ACK"):
        layer.send_request(request("ACK"), UDP_PEER)
    with pytest.raises(ValueError, match="branch"):
        layer.send_request(request("INVITE", branch=None), UDP_PEER)
    layer.send_request(request("INVITE"), UDP_PEER)
    with pytest.raises(ValueError, match="in use"):
        layer.send_request(request("INVITE"), UDP_PEER)
    layer.send_request(request("CANCEL"), UDP_PEER)  # same branch, other method: fine


def test_response_matching_needs_branch_and_method(layer: TransactionLayer) -> None:
    txn, _invite = start(layer)
    other = request("INVITE", branch="z9hG4bKother")
    assert [type(e) for e in layer.receive(response_to(other, 180), UDP_PEER)] == [StrayResponse]
    cancel_response = request("CANCEL")  # same branch, CSeq method CANCEL
    stray = layer.receive(response_to(cancel_response, 200), UDP_PEER)
    assert [type(e) for e in stray] == [StrayResponse]
    assert layer.state(txn) == "Calling"
    assert layer.stats.stray_responses == 2
    assert isinstance(stray[0], StrayResponse) and isinstance(stray[0].response, Response)
