"""Non-INVITE client transaction (RFC 3261 §17.1.2): timer E to T2, F, K."""

from __future__ import annotations

from firmware.sip.transaction import TransactionLayer
from firmware.sip.txn_events import ResponseReceived, Send, Terminated, Timeout

from .conftest import TCP_PEER, UDP_PEER, FakeClock, advance, request, response_to


def test_timer_e_doubles_to_t2_until_timer_f(layer: TransactionLayer, clock: FakeClock) -> None:
    txn, events = layer.send_request(request("OPTIONS"), UDP_PEER)
    assert [type(e) for e in events] == [Send]
    t0 = clock.now
    fired = advance(layer, clock, t0 + 40)
    resent = [round(t - t0, 3) for t, e in fired if isinstance(e, Send)]
    # intervals 0.5, 1, 2, 4, 4, 4...: doubling capped at T2
    assert resent == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    ends = [(round(t - t0, 3), type(e)) for t, e in fired if not isinstance(e, Send)]
    assert ends == [(32.0, Timeout), (32.0, Terminated)]  # F = 64*T1
    assert layer.state(txn) is None


def test_proceeding_retransmits_every_t2(layer: TransactionLayer, clock: FakeClock) -> None:
    req = request("REGISTER")
    txn, _ = layer.send_request(req, UDP_PEER)
    t0 = clock.now
    advance(layer, clock, t0 + 2.0)  # resent at 0.5 and 1.5; next E at 3.5
    events = layer.receive(response_to(req, 100, to_tag=None), UDP_PEER)
    assert [type(e) for e in events] == [ResponseReceived]
    assert layer.state(txn) == "Proceeding"
    fired = advance(layer, clock, t0 + 20)
    resent = [round(t - t0, 3) for t, e in fired if isinstance(e, Send)]
    assert resent == [3.5, 7.5, 11.5, 15.5, 19.5]  # then every T2


def test_final_response_then_timer_k(layer: TransactionLayer, clock: FakeClock) -> None:
    req = request("BYE", to_tag="t1")
    txn, _ = layer.send_request(req, UDP_PEER)
    ok = response_to(req, 200, to_tag=None)
    events = layer.receive(ok, UDP_PEER)
    assert [type(e) for e in events] == [ResponseReceived]
    assert layer.state(txn) == "Completed"
    assert layer.receive(ok, UDP_PEER) == []  # retransmission absorbed
    t0 = clock.now
    fired = advance(layer, clock, t0 + 10)
    assert [(round(t - t0, 3), type(e)) for t, e in fired] == [(5.0, Terminated)]  # K = T4


def test_reliable_transport(layer: TransactionLayer, clock: FakeClock) -> None:
    req = request("OPTIONS", transport="TCP")
    _txn, _ = layer.send_request(req, TCP_PEER)
    t0 = clock.now
    assert not [e for _, e in advance(layer, clock, t0 + 31) if isinstance(e, Send)]
    events = layer.receive(response_to(req, 404), TCP_PEER)
    assert [type(e) for e in events] == [ResponseReceived, Terminated]  # K = 0
    assert layer.next_deadline() is None and layer.client_count == 0
