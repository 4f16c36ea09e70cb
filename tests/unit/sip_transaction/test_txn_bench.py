"""Transaction-layer throughput: prints INVITE server transactions/s (run with ``-s``).

Not an assertion (machines differ); the figure tells how much of the box's budget
(>= 1,000 calls/s, ~8 transactions per call through the B2BUA) the sans-I/O layer
takes. One lifecycle = INVITE in, 180 and 200 out, the 2xx ACK in (passed to the
TU), timer L (and the 100 Trying timer cancelled) fired, transaction removed.
"""

from __future__ import annotations

import gc
import time

from firmware.sip import Request, parse_message
from firmware.sip.peer import Peer
from firmware.sip.transaction import TransactionLayer
from firmware.sip.txn_events import RequestReceived

from .conftest import FakeClock, request_bytes

N = 10_000
PEER = Peer("udp", "192.0.2.10", 5060)


def parsed(method: str, i: int, to_tag: str | None = None) -> Request:
    message = parse_message(
        request_bytes(method, branch=f"z9hG4bK{method}{i}", call_id=f"c{i}", to_tag=to_tag)
    )
    assert isinstance(message, Request)
    return message


def run(layer: TransactionLayer, clock: FakeClock, *, gc_on: bool) -> float:
    invites = [parsed("INVITE", i) for i in range(N)]
    acks = [parsed("ACK", i, to_tag="t") for i in range(N)]
    ringing = [inv.make_response(180, to_tag="t") for inv in invites]
    ok = [inv.make_response(200, to_tag="t") for inv in invites]
    if not gc_on:
        gc.disable()
    try:
        began = time.perf_counter()
        for i in range(N):
            clock.now += 0.0001
            event = layer.receive(invites[i], PEER)[0]
            assert isinstance(event, RequestReceived)
            layer.respond(event.txn, ringing[i])
            layer.respond(event.txn, ok[i])
            layer.receive(acks[i], PEER)
        clock.now += 40
        layer.handle_timers(clock.now)
        elapsed = time.perf_counter() - began
    finally:
        gc.enable()
    assert layer.server_count == 0
    return N / elapsed


def test_invite_server_transaction_rate() -> None:
    clock = FakeClock()
    with_gc = run(TransactionLayer(clock), clock, gc_on=True)
    without_gc = run(TransactionLayer(clock), clock, gc_on=False)
    raw = [request_bytes("INVITE", branch=f"z9hG4bKx{i}", call_id=f"x{i}") for i in range(N)]
    began = time.perf_counter()
    for data in raw:
        parse_message(data)
    parse_rate = N / (time.perf_counter() - began)
    print(
        f"\nINVITE server transaction lifecycles/s (layer incl. serializing 180+200): "
        f"{with_gc:,.0f} ({without_gc:,.0f} with the cyclic GC off); "
        f"for comparison, parsing a small INVITE: {parse_rate:,.0f}/s"
    )
