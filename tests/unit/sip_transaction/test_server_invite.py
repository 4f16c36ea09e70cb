"""INVITE server transaction (RFC 3261 §17.2.1, RFC 6026 Accepted state and timer L)."""

from __future__ import annotations

from firmware.sip import Request, Response
from firmware.sip.peer import Peer
from firmware.sip.timers import TimerConfig
from firmware.sip.transaction import TransactionLayer
from firmware.sip.txn_events import (
    AckReceived,
    RequestReceived,
    Send,
    Terminated,
    Timeout,
)

from .conftest import (
    TCP_PEER,
    UDP_PEER,
    FakeClock,
    advance,
    request,
    sends,
    sent_messages,
)


def receive_invite(
    layer: TransactionLayer, peer: Peer = UDP_PEER, **kw: object
) -> tuple[int, Request]:
    invite = request("INVITE", **kw)
    events = layer.receive(invite, peer)
    assert [type(e) for e in events] == [RequestReceived]
    assert isinstance(events[0], RequestReceived) and events[0].request is invite
    return events[0].txn, invite


def test_100_trying_after_200_ms_of_tu_silence(layer: TransactionLayer, clock: FakeClock) -> None:
    _txn, invite = receive_invite(layer)
    t0 = clock.now
    assert layer.next_deadline() == t0 + 0.2
    fired = advance(layer, clock, t0 + 1)
    assert [(round(t - t0, 3), type(e)) for t, e in fired] == [(0.2, Send)]
    (trying,) = sent_messages([e for _, e in fired])
    assert isinstance(trying, Response) and trying.status == 100
    assert trying.to.tag is None  # §17.2.1: no To tag on the transaction's 100
    assert trying.top_via.branch == invite.top_via.branch


def test_no_100_when_tu_answers_in_time(layer: TransactionLayer, clock: FakeClock) -> None:
    txn, invite = receive_invite(layer)
    clock.now += 0.05
    events = layer.respond(txn, invite.make_response(180, to_tag="t"))
    assert [type(e) for e in events] == [Send]
    assert not sends([e for _, e in advance(layer, clock, clock.now + 10)])


def test_immediate_100_when_configured(clock: FakeClock) -> None:
    layer = TransactionLayer(clock, TimerConfig(trying_delay=0))
    events = layer.receive(request("INVITE"), UDP_PEER)
    assert [type(e) for e in events] == [RequestReceived, Send]
    assert sent_messages(events)[0].status == 100  # type: ignore[union-attr]


def test_retransmitted_invite_in_proceeding(layer: TransactionLayer, clock: FakeClock) -> None:
    txn, invite = receive_invite(layer)
    again = layer.receive(request("INVITE"), UDP_PEER)
    (trying,) = sent_messages(again)  # nothing sent yet: quench with 100 at once
    assert [type(e) for e in again] == [Send] and trying.status == 100  # type: ignore[union-attr]
    assert not sends([e for _, e in advance(layer, clock, clock.now + 1)])  # no second 100
    ringing = layer.respond(txn, invite.make_response(180, to_tag="t"))
    again = layer.receive(request("INVITE"), UDP_PEER)
    assert [e.data for e in sends(again)] == [e.data for e in sends(ringing)]  # last provisional
    assert layer.stats.retransmissions_absorbed == 2


def test_2xx_accepted_state(layer: TransactionLayer, clock: FakeClock) -> None:
    txn, invite = receive_invite(layer)
    layer.respond(txn, invite.make_response(180, to_tag="t"))
    ok = invite.make_response(200, to_tag="t")
    assert [type(e) for e in layer.respond(txn, ok)] == [Send]
    assert layer.state(txn) == "Accepted"
    t0 = clock.now
    assert layer.receive(request("INVITE"), UDP_PEER) == []  # RFC 6026: absorbed
    assert [type(e) for e in layer.respond(txn, ok)] == [Send]  # TU's 2xx retransmission
    assert layer.respond(txn, invite.make_response(500)) == []  # no non-2xx after a 2xx
    # the 2xx ACK has a branch of its own: it is the TU's
    ack = request("ACK", branch="z9hG4bKack1", to_tag="t")
    events = layer.receive(ack, UDP_PEER)
    assert [type(e) for e in events] == [AckReceived]
    # an ACK that does reuse the INVITE branch still goes to the TU in Accepted
    events = layer.receive(request("ACK", to_tag="t"), UDP_PEER)
    assert [type(e) for e in events] == [AckReceived]
    fired = advance(layer, clock, t0 + 40)
    assert [(round(t - t0, 3), type(e)) for t, e in fired] == [(32.0, Terminated)]  # L
    assert layer.respond(txn, ok) == []  # gone: the TU sends later 2xx statelessly
    assert layer.stats.responses_refused == 2


def test_non_2xx_timer_g_and_h(layer: TransactionLayer, clock: FakeClock) -> None:
    txn, invite = receive_invite(layer)
    first = layer.respond(txn, invite.make_response(486, to_tag="t"))
    assert layer.state(txn) == "Completed"
    t0 = clock.now
    fired = advance(layer, clock, t0 + 40)
    resent = [round(t - t0, 3) for t, e in fired if isinstance(e, Send)]
    assert resent == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]  # G to T2
    assert all(e.data == sends(first)[0].data for _, e in fired if isinstance(e, Send))
    ends = [(round(t - t0, 3), type(e)) for t, e in fired if not isinstance(e, Send)]
    assert ends == [(32.0, Timeout), (32.0, Terminated)]  # H: the ACK never came


def test_ack_confirms_then_timer_i(layer: TransactionLayer, clock: FakeClock) -> None:
    txn, invite = receive_invite(layer)
    final = layer.respond(txn, invite.make_response(404, to_tag="t"))
    again = layer.receive(request("INVITE"), UDP_PEER)
    assert [e.data for e in sends(again)] == [e.data for e in sends(final)]  # final resent
    clock.now += 0.7
    ack = request("ACK", to_tag="t")
    assert layer.receive(ack, UDP_PEER) == []  # absorbed by the transaction
    assert layer.state(txn) == "Confirmed"
    assert layer.receive(ack, UDP_PEER) == []  # ACK retransmission absorbed
    assert layer.receive(request("INVITE"), UDP_PEER) == []  # and late INVITE copies
    t0 = clock.now
    fired = advance(layer, clock, t0 + 10)
    assert [(round(t - t0, 3), type(e)) for t, e in fired] == [(5.0, Terminated)]  # I = T4
    assert layer.server_count == 0


def test_reliable_transport(layer: TransactionLayer, clock: FakeClock) -> None:
    txn, invite = receive_invite(layer, TCP_PEER, transport="TCP")
    final = layer.respond(txn, invite.make_response(480, to_tag="t"))
    assert [type(e) for e in final] == [Send]
    assert final[0].peer == Peer("tcp", "192.0.2.10", 5060, 7)  # type: ignore[union-attr]
    t0 = clock.now
    assert not sends([e for _, e in advance(layer, clock, t0 + 20)])  # no timer G on TCP
    events = layer.receive(request("ACK", transport="TCP", to_tag="t"), TCP_PEER)
    assert [type(e) for e in events] == [Terminated]  # I = 0


def test_responses_follow_rport(layer: TransactionLayer) -> None:
    source = Peer("udp", "198.51.100.7", 34567)
    txn, invite = receive_invite(layer, source, rport=True)
    (sent,) = layer.respond(txn, invite.make_response(180, to_tag="t"))
    assert isinstance(sent, Send) and sent.peer == source
    txn2, invite2 = receive_invite(layer, source, branch="z9hG4bKno-rport")
    (sent,) = layer.respond(txn2, invite2.make_response(180, to_tag="t"))
    assert isinstance(sent, Send) and sent.peer == Peer("udp", "198.51.100.7", 5060)


def test_proceeding_limit_frees_a_forgotten_invite(
    layer: TransactionLayer, clock: FakeClock
) -> None:
    txn, invite = receive_invite(layer)
    fired = advance(layer, clock, clock.now + layer.config.proceeding_limit + 1)
    assert [type(e) for _, e in fired] == [Send, Timeout, Terminated]  # 100, then gone
    assert layer.respond(txn, invite.make_response(200, to_tag="t")) == []
    assert layer.server_count == 0
