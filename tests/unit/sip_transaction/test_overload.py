"""Overload control: new INVITEs refused with 503 + Retry-After, admitted calls go on.

Three levels: the transaction layer's refusal rules, the guard's decision (loop lag,
gauges, hysteresis), and a real endpoint on 127.0.0.1 whose event loop is made to fall
behind while a flood of new INVITEs arrives next to a call already set up.
"""

from __future__ import annotations

import asyncio
import socket
import time

from firmware.sip import Request, Response, parse_message
from firmware.sip.endpoint import EndpointConfig, SipEndpoint
from firmware.sip.overload import OverloadConfig, OverloadGuard, watch_loop
from firmware.sip.peer import Peer
from firmware.sip.timers import TimerConfig
from firmware.sip.transaction import TransactionLayer
from firmware.sip.txn_events import AckReceived, Event, RequestReceived, Send

from .conftest import UDP_PEER, FakeClock, request, request_bytes, sent_messages


def admit(layer: TransactionLayer, method: str = "INVITE", **kw: object) -> int:
    events = layer.receive(request(method, **kw), UDP_PEER)
    assert [type(e) for e in events] == [RequestReceived], events
    assert isinstance(events[0], RequestReceived)
    return events[0].txn


def refused(events: list[Event]) -> Response:
    assert [type(e) for e in events] == [Send], events
    (answer,) = sent_messages(events)
    assert isinstance(answer, Response) and answer.status == 503
    return answer


def test_shedding_refuses_new_invites_only(clock: FakeClock) -> None:
    layer = TransactionLayer(clock, TimerConfig(), retry_after=9)
    call = admit(layer, branch="z9hG4bKcall")
    layer.respond(call, request(branch="z9hG4bKcall").make_response(200, to_tag="box"))
    layer.shed_invites = True
    busy = refused(layer.receive(request(branch="z9hG4bKnew", call_id="new@x"), UDP_PEER))
    assert busy.headers.get("Retry-After") == "9" and busy.to.tag
    assert layer.stats.overload_rejected == 1
    # the admitted call goes on: INVITE retransmission absorbed, ACK to the TU,
    # BYE and re-INVITE (To tag) and OPTIONS admitted
    assert layer.receive(request(branch="z9hG4bKcall"), UDP_PEER) == []
    ack = layer.receive(request("ACK", branch="z9hG4bKack", to_tag="box"), UDP_PEER)
    assert [type(e) for e in ack] == [AckReceived]
    admit(layer, "BYE", branch="z9hG4bKbye", to_tag="box", cseq=2)
    admit(layer, branch="z9hG4bKreinvite", to_tag="box", cseq=3)
    admit(layer, "OPTIONS", branch="z9hG4bKopt")
    layer.shed_invites = False
    admit(layer, branch="z9hG4bKnew", call_id="new@x")  # the caller's retry gets in


def test_too_many_pending_invites(clock: FakeClock) -> None:
    layer = TransactionLayer(clock, TimerConfig(), max_pending_invites=2)
    first = admit(layer, branch="z9hG4bK1")
    admit(layer, branch="z9hG4bK2")
    assert layer.pending_invites == 2
    refused(layer.receive(request(branch="z9hG4bK3"), UDP_PEER))
    layer.respond(first, request(branch="z9hG4bK1").make_response(180, to_tag="t"))
    assert layer.pending_invites == 2  # a provisional answer does not count
    layer.respond(first, request(branch="z9hG4bK1").make_response(486, to_tag="t"))
    assert layer.pending_invites == 1
    admit(layer, branch="z9hG4bK3")


def test_pending_count_survives_every_ending(clock: FakeClock) -> None:
    config = TimerConfig(proceeding_limit=10.0)
    layer = TransactionLayer(clock, config)
    ok = admit(layer, branch="z9hG4bKa")
    layer.respond(ok, request(branch="z9hG4bKa").make_response(200, to_tag="t"))
    admit(layer, branch="z9hG4bKb")  # never answered: the proceeding limit ends it
    clock.now += 11
    layer.handle_timers(clock.now)
    assert layer.pending_invites == 0
    clock.now += 100
    layer.handle_timers(clock.now)
    assert layer.pending_invites == 0 and layer.server_count == 0


def test_guard_hysteresis_and_gauges() -> None:
    config = OverloadConfig(lag_on=0.2, lag_off=0.05, smoothing=1.0, min_shed=1.0)
    guard = OverloadGuard(config, {"cdr_backlog": 1000})
    assert not guard.update(0.0, 0.01)
    assert guard.update(0.1, 0.5) and "loop lag" in guard.reason
    assert guard.update(0.2, 0.01)  # calm, but not for min_shed yet
    assert not guard.update(1.2, 0.01) and guard.episodes == 1
    assert guard.update(2.0, 0.0, {"cdr_backlog": 1500}) and "cdr_backlog" in guard.reason
    assert guard.update(3.5, 0.0, {"cdr_backlog": 600})  # not below half the limit
    assert not guard.update(3.6, 0.0, {"cdr_backlog": 100}) and guard.episodes == 2
    smooth = OverloadGuard(OverloadConfig(lag_on=0.2, smoothing=0.3))
    assert not smooth.update(0.0, 0.5)  # one late tick is not overload
    assert any(smooth.update(0.05 * i, 0.5) for i in range(1, 10))


async def test_flood_while_behind_gets_503_and_the_call_completes() -> None:
    """A real endpoint: a call is set up, then 150 new INVITEs arrive faster than the
    TU can take them (4 ms each); once datagrams pile up in the kernel the rest get
    503 + Retry-After without reaching the TU, and the call's BYE still gets its 200."""
    loop = asyncio.get_running_loop()

    class Tu:
        def __init__(self) -> None:
            self.endpoint: SipEndpoint | None = None
            self.invites = 0

        def on_request(self, txn: int, req: Request, peer: Peer) -> None:
            assert self.endpoint is not None
            if req.method == "INVITE":
                self.invites += 1
                time.sleep(0.004)  # a slow call setup: the loop falls behind under a flood
            self.endpoint.respond(txn, req.make_response(200, to_tag="box"))

        def on_ack(self, req: Request, peer: Peer) -> None: ...
        def on_cancel(self, txn: int, req: Request, peer: Peer) -> None: ...
        def on_response(self, txn: int | None, resp: Response, peer: Peer) -> None: ...
        def on_failure(self, txn: int, reason: str) -> None: ...

    tu = Tu()
    endpoint = SipEndpoint(EndpointConfig(udp_port=0, tcp_port=None), tu)
    tu.endpoint = endpoint
    await endpoint.start()
    # refuse while more than ~6 datagrams wait in the kernel (1,280 B of buffer each)
    guard = OverloadGuard(OverloadConfig(interval=0.01), {"udp_backlog": 8_000})

    def apply(shedding: bool) -> None:
        endpoint.layer.shed_invites = shedding

    def gauges() -> dict[str, float]:
        backlog = endpoint.transport.receive_backlog()
        assert backlog is not None  # Linux tells
        return {"udp_backlog": backlog[0]}

    probe = asyncio.create_task(watch_loop(guard, apply, gauges))
    phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    phone.bind(("127.0.0.1", 0))
    phone.setblocking(False)
    address = endpoint.address("udp")
    assert address is not None
    port: int = phone.getsockname()[1]

    def invite(n: int) -> bytes:
        return request_bytes(  # type: ignore[no-any-return]
            branch=f"z9hG4bKflood{n}", call_id=f"flood-{n}@x", via_host="127.0.0.1", via_port=port
        )

    async def responses(wait: float) -> list[Response]:
        got: list[Response] = []
        deadline = loop.time() + wait
        while loop.time() < deadline:
            try:
                data = phone.recv(65536)
            except BlockingIOError:
                await asyncio.sleep(0.01)
                continue
            message = parse_message(data)
            assert isinstance(message, Response)
            got.append(message)
        return got

    try:
        phone.sendto(invite(0), address)  # the call that must survive
        (ok,) = await responses(0.3)
        assert ok.status == 200 and ok.call_id == "flood-0@x"
        for n in range(1, 151):
            phone.sendto(invite(n), address)
        flood = await responses(2.0)
        busy = [r for r in flood if r.status == 503]
        assert busy and all(r.headers.get("Retry-After") for r in busy)
        assert tu.invites < 151  # refused INVITEs never reached the TU
        bye = request_bytes(
            "BYE", branch="z9hG4bKbye0", call_id="flood-0@x", to_tag="box", cseq=2,
            via_host="127.0.0.1", via_port=port,
        )  # fmt: skip
        phone.sendto(bye, address)
        answers = [r for r in await responses(1.0) if r.cseq.method == "BYE"]
        assert [r.status for r in answers] == [200]
        assert guard.episodes >= 1
    finally:
        probe.cancel()
        phone.close()
        await endpoint.close()
