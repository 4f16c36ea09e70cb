"""Our endpoint places calls (INVITE, ACK, BYE) to SIPp's built-in ``uas``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from firmware.sip.endpoint import EndpointConfig, SipEndpoint
from firmware.sip.peer import Peer

from .conftest import SippResult, TestUac, free_port, needs_sipp, production_loop, run_sipp

pytestmark = [pytest.mark.peer, needs_sipp, production_loop]


@contextlib.asynccontextmanager
async def caller() -> AsyncIterator[tuple[SipEndpoint, TestUac]]:
    endpoint = SipEndpoint(EndpointConfig(udp_port=0, tcp_port=0))
    tu = TestUac(endpoint)
    endpoint.tu = tu
    await endpoint.start()
    try:
        yield endpoint, tu
    finally:
        await endpoint.close()


async def wait_for_tcp(port: int, deadline: float = 5.0) -> None:
    """SIPp binds a moment after it starts; poll (bounded) before calling over TCP."""
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise TimeoutError(f"SIPp not listening on TCP {port}")


async def run_calls(
    tmp_path: Path, calls: int, *, transport: str = "udp", lost: int = 0
) -> tuple[SippResult, list[tuple[int, int]], dict[str, int], TestUac]:
    port = free_port()
    args = ["-sn", "uas", "-p", str(port), "-m", str(calls), "-timeout", "40s"]
    if transport == "tcp":
        args += ["-t", "t1"]
    if lost:
        # SIPp pairs a retransmitted request only with the one message it sent right
        # after it, so after "180, 200" it calls our INVITE retransmission (sent when
        # both were lost) unexpected; so is an ACK we re-send for a 2xx retransmission
        # that crossed our BYE. Both are RFC 3261 behaviour: let SIPp log them and
        # carry on instead of failing the call. Our side still checks every call.
        args += ["-lost", str(lost), "-default_behaviors", "all,-abortunexp"]
    sipp = asyncio.create_task(run_sipp(args, tmp_path, timeout=60))
    async with caller() as (endpoint, tu):
        if transport == "tcp":
            await wait_for_tcp(port)
        else:
            await asyncio.sleep(0.3)  # (timer A would cover a late start anyway)
        peer = Peer(transport, "127.0.0.1", port)  # type: ignore[arg-type]
        results: list[tuple[int, int]] = []
        for batch in range(0, calls, 5):  # five calls in flight at a time
            results += await asyncio.wait_for(
                asyncio.gather(*(tu.call(peer) for _ in range(min(5, calls - batch)))), 45
            )
        result = await sipp
        return result, results, endpoint.stats(), tu


async def test_calls_to_sipp_uas_over_udp(tmp_path: Path) -> None:
    result, calls, _, _ = await run_calls(tmp_path, 10)
    assert calls == [(200, 200)] * 10
    assert result.returncode == 0, result.explain()


async def test_calls_to_sipp_uas_over_tcp_reuse_one_connection(tmp_path: Path) -> None:
    result, calls, stats, _ = await run_calls(tmp_path, 10, transport="tcp")
    assert calls == [(200, 200)] * 10
    assert result.returncode == 0, result.explain()
    assert stats["transport_connections_opened"] == 1  # every request reused it


async def test_calls_to_lossy_sipp_uas(tmp_path: Path) -> None:
    """SIPp drops 10% both ways: our timers A/E resend requests, our TU re-ACKs
    repeated 2xx; every call must still complete."""
    result, calls, stats, tu = await run_calls(tmp_path, 20, lost=10)
    assert calls == [(200, 200)] * 20, result.explain()
    assert result.returncode == 0, result.explain()
    recovered = stats["txn_retransmissions_sent"] + tu.resent_acks
    print(
        f"\nlossy uas: requests retransmitted by timers A/E {stats['txn_retransmissions_sent']}, "
        f"ACKs re-sent for repeated 2xx {tu.resent_acks}"
    )
    assert recovered > 0  # something was lost and made up for
