"""The endpoint glue end to end over loopback: our UAC against our UAS for what SIPp's
built-in scenarios cannot drive (CANCEL from our side, local timeouts, TU failures,
the supervised service form). The interop tests with SIPp are in test_sipp_*."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from firmware.sip import Request, Response
from firmware.sip.endpoint import BaseTransactionUser, EndpointConfig, SipEndpoint
from firmware.sip.peer import Peer
from firmware.sip.timers import TimerConfig
from firmware.sip.txn_events import TxnId

from .conftest import TestUas, running_uas

FAST = TimerConfig(t1=0.02, t2=0.16, t4=0.2, timer_d=0.2, trying_delay=0.2)


def invite(to_port: int, user: str, call_id: str) -> Request:
    return Request(
        "INVITE",
        f"sip:{user}@127.0.0.1:{to_port}",
        [("From", "<sip:uac@127.0.0.1>;tag=u1"), ("To", f"<sip:{user}@127.0.0.1>"),
         ("Call-ID", call_id), ("CSeq", "1 INVITE"), ("Contact", "<sip:uac@127.0.0.1>")],
    )  # fmt: skip


@pytest.fixture
async def caller() -> AsyncIterator[SipEndpoint]:
    endpoint = SipEndpoint(EndpointConfig(udp_port=0, tcp_port=0, timers=FAST))
    endpoint.tu = BaseTransactionUser(endpoint)
    await endpoint.start()
    try:
        yield endpoint
    finally:
        await endpoint.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_cancel_is_deferred_until_a_provisional(
    caller: SipEndpoint, uas: tuple[SipEndpoint, TestUas], transport: str
) -> None:
    callee, tu = uas
    _, port = callee.address(transport) or ("", 0)  # type: ignore[arg-type]
    seen: list[int] = []
    handle = caller.start_request(
        invite(port, "ring", f"cancel-{transport}"),
        Peer(transport, "127.0.0.1", port),  # type: ignore[arg-type]
        on_provisional=lambda r: seen.append(r.status),
    )
    handle.cancel()  # nothing heard yet: the CANCEL waits for the first 1xx (§9.1)
    assert caller.layer.client_count == 1
    final = await asyncio.wait_for(handle.response(), 5)
    assert final.status == 487 and handle.failure is None
    assert seen[:1] == [100] and 180 in seen
    assert tu.counters.cancels == 1
    statuses = [r.status async for r in handle]  # the iterator replays what came
    assert statuses[-1] == 487


async def test_request_timeout_is_a_local_408(caller: SipEndpoint) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        handle = caller.start_request(
            invite(port, "void", "timeout-1"), Peer("udp", "127.0.0.1", port)
        )
        final = await asyncio.wait_for(handle.response(), 5)  # B = 64*T1 = 1.28 s here
        silent.setblocking(False)
        copies = 0
        while True:
            try:
                silent.recv(65535)
            except BlockingIOError:
                break
            copies += 1
    assert final.status == 408 and handle.failure == "timeout"
    assert copies == 7  # the INVITE and timer A's six retransmissions within timer B
    assert caller.stats()["txn_retransmissions_sent"] == 6


class Exploding(BaseTransactionUser):
    def on_request(self, txn: TxnId, request: Request, peer: Peer) -> None:
        raise RuntimeError("TU bug")


async def test_tu_exception_becomes_500(caller: SipEndpoint) -> None:
    callee = SipEndpoint(EndpointConfig(udp_port=0, tcp_port=None))
    callee.tu = Exploding(callee)
    await callee.start()
    try:
        _, port = callee.address("udp") or ("", 0)
        options = Request(
            "OPTIONS", f"sip:x@127.0.0.1:{port}",
            [("From", "<sip:a@b>;tag=1"), ("To", "<sip:x@127.0.0.1>"), ("Call-ID", "boom"),
             ("CSeq", "1 OPTIONS")],
        )  # fmt: skip
        answer = await asyncio.wait_for(caller.request(options, Peer("udp", "127.0.0.1", port)), 5)
        assert isinstance(answer, Response) and answer.status == 500
    finally:
        await callee.close()


async def test_no_tu_answers_503() -> None:
    async with running_uas() as (callee, _):
        callee.tu = None
        caller = SipEndpoint(EndpointConfig(udp_port=0, tcp_port=None))
        await caller.start()
        try:
            _, port = callee.address("udp") or ("", 0)
            answer = await asyncio.wait_for(
                caller.request(invite(port, "x", "no-tu"), Peer("udp", "127.0.0.1", port)), 5
            )
            assert answer.status == 503
        finally:
            await caller.close()


async def test_service_form_binds_reports_ready_and_stops() -> None:
    endpoint = SipEndpoint(EndpointConfig(udp_port=0, tcp_port=0))
    assert endpoint.name == "sip"
    ready = asyncio.Event()
    task = asyncio.create_task(endpoint.run(ready.set))
    await asyncio.wait_for(ready.wait(), 5)
    udp, tcp = endpoint.address("udp"), endpoint.address("tcp")
    assert udp is not None and udp[1] > 0 and tcp is not None and tcp[1] > 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert endpoint.address("udp") is None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(udp)  # the port was released
