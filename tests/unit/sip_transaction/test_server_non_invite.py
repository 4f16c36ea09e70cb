"""Non-INVITE server transaction (RFC 3261 §17.2.2): Trying, Proceeding, Completed, J."""

from __future__ import annotations

from firmware.sip.peer import Peer
from firmware.sip.transaction import TransactionLayer
from firmware.sip.txn_events import RequestReceived, Send, Terminated, Timeout

from .conftest import TCP_PEER, UDP_PEER, FakeClock, advance, request, sends


def receive(
    layer: TransactionLayer, method: str = "OPTIONS", peer: Peer = UDP_PEER, **kw: object
) -> int:
    events = layer.receive(request(method, **kw), peer)
    assert [type(e) for e in events] == [RequestReceived]
    assert isinstance(events[0], RequestReceived)
    return events[0].txn


def test_trying_absorbs_then_completed_resends(layer: TransactionLayer, clock: FakeClock) -> None:
    txn = receive(layer)
    assert layer.state(txn) == "Trying"
    assert layer.receive(request("OPTIONS"), UDP_PEER) == []  # absorbed, nothing to resend
    ok = request("OPTIONS").make_response(200, to_tag="t")
    final = layer.respond(txn, ok)
    assert [type(e) for e in final] == [Send]
    assert layer.state(txn) == "Completed"
    again = layer.receive(request("OPTIONS"), UDP_PEER)
    assert [e.data for e in sends(again)] == [e.data for e in sends(final)]
    assert layer.respond(txn, ok) == []  # one final response only
    t0 = clock.now
    fired = advance(layer, clock, t0 + 40)
    assert [(round(t - t0, 3), type(e)) for t, e in fired] == [(32.0, Terminated)]  # J = 64*T1
    assert [type(e) for e in layer.receive(request("OPTIONS"), UDP_PEER)] == [RequestReceived]


def test_proceeding_resends_last_provisional(layer: TransactionLayer) -> None:
    txn = receive(layer, "REGISTER")
    trying = layer.respond(txn, request("REGISTER").make_response(100))
    assert layer.state(txn) == "Proceeding"
    again = layer.receive(request("REGISTER"), UDP_PEER)
    assert [e.data for e in sends(again)] == [e.data for e in sends(trying)]


def test_reliable_transport_timer_j_is_zero(layer: TransactionLayer) -> None:
    txn = receive(layer, "BYE", transport="TCP", to_tag="t", peer=TCP_PEER)
    events = layer.respond(txn, request("BYE", transport="TCP").make_response(200))
    assert [type(e) for e in events] == [Send, Terminated]
    assert events[0].peer.connection == 7  # type: ignore[union-attr]
    assert layer.next_deadline() is None and layer.server_count == 0


def test_tu_that_never_answers_is_forgotten(layer: TransactionLayer, clock: FakeClock) -> None:
    txn = receive(layer, "MESSAGE")
    t0 = clock.now
    fired = advance(layer, clock, t0 + 40)
    assert [(round(t - t0, 3), type(e)) for t, e in fired] == [(32.0, Timeout), (32.0, Terminated)]
    assert layer.state(txn) is None
