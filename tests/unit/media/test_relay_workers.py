"""The relay in worker processes: real worker processes, real UDP on 127.0.0.1.

Every test starts its own `RelayWorkerPool` (workers are child processes of the test),
under asyncio and under uvloop, and closes it in a finally.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from firmware.media import relay_workers
from firmware.media.relay import Leg, RelaySession
from firmware.media.relay_workers import (
    RelayWorkerPool,
    RemoteRelaySession,
    default_workers,
    split_range,
)

from .conftest import HOST, RTCP_RR, RTP, Peer, PeerFactory

FIRST, LAST = 9100, 9399  # below the app's default media range and the ephemeral range
INTERVAL = 0.05  # counters pushed every 50 ms in these tests


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``check`` until it holds (AssertionError after ``timeout`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def relayed(send: Callable[[], None], to: Peer) -> tuple[bytes, tuple[str, int]]:
    """What ``to`` receives of repeated ``send()``s: a command just given may still be on
    its way to the worker when the first packets arrive there."""
    for _ in range(100):
        send()
        try:
            data, source = await to.recv(0.05)
            return data, source
        except TimeoutError:
            continue
    raise AssertionError("nothing relayed")


@pytest.fixture
async def pool() -> AsyncIterator[RelayWorkerPool]:
    pool = RelayWorkerPool(FIRST, LAST, 2, stats_interval=INTERVAL, max_idle=0)
    try:
        await pool.start()
        yield pool
    finally:
        await pool.close()


async def remote(pool: RelayWorkerPool) -> RemoteRelaySession:
    session = await pool.open(HOST)
    assert isinstance(session, RemoteRelaySession)
    return session


async def test_rtp_both_ways_through_a_worker_with_latching(
    pool: RelayWorkerPool, peer: PeerFactory
) -> None:
    sdp_said, behind_nat, b = await peer(), await peer(), await peer()
    relay = await remote(pool)
    try:
        pa, pb = relay.ports
        own_slice = split_range(FIRST, LAST, 3)[0]
        assert not own_slice[0] <= pa <= own_slice[1]  # a worker's slice, not the SIP side's
        relay.set_remote(Leg.A, HOST, sdp_said.port)
        relay.set_remote(Leg.B, HOST, b.port)
        assert relay.remote(Leg.A) == sdp_said.addr

        # B speaks first: the SDP address of A is the best guess until A is heard
        assert await relayed(lambda: b.send(RTP, pb), sdp_said) == (RTP, (HOST, pa))
        behind_nat.send(RTP, pa)  # A's packets come from elsewhere (NAT)
        assert await b.recv() == (RTP, (HOST, pb))
        reply = RTP[:12] + b"\x55" * 160
        b.send(reply, pb)
        assert await behind_nat.recv() == (reply, (HOST, pa))  # latched
        await until(lambda: relay.source(Leg.A) == behind_nat.addr)
        assert relay.source(Leg.B) == b.addr

        # RTCP goes port + 1 to port + 1
        b_rtcp = await peer()
        relay.set_remote(Leg.B, HOST, b.port, rtcp_port=b_rtcp.port)
        sent = await relayed(lambda: behind_nat.send(RTCP_RR, pa + 1), b_rtcp)
        assert sent == (RTCP_RR, (HOST, pb + 1))
    finally:
        relay.close()
        await relay.wait_closed()


async def test_set_remote_moves_the_stream(pool: RelayWorkerPool, peer: PeerFactory) -> None:
    a, b1, b2 = await peer(), await peer(), await peer()
    async with await remote(pool) as relay:
        relay.set_remote(Leg.B, HOST, b1.port)
        a.send(RTP, relay.port(Leg.A))
        assert (await b1.recv())[0] == RTP
        relay.set_remote(Leg.B, HOST, b2.port)  # a re-INVITE moved B
        assert relay.remote(Leg.B) == b2.addr
        await relayed(lambda: a.send(RTP, relay.port(Leg.A)), b2)
        while not b1.queue.empty():  # sent before the worker applied the move
            b1.queue.get_nowait()
        a.send(RTP, relay.port(Leg.A))
        assert (await b2.recv())[0] == RTP
        assert await b1.silent()

        relay.set_remote(Leg.B, "0.0.0.0", 4000)  # RFC 2543 hold: nowhere
        assert relay.remote(Leg.B) is None


async def test_bad_remote_raises_here(pool: RelayWorkerPool) -> None:
    async with await remote(pool) as relay:
        with pytest.raises(ValueError):
            relay.set_remote(Leg.A, "phone.example", 4000)  # a name: resolve first
        with pytest.raises(ValueError):
            relay.set_remote(Leg.A, "::1", 4000)  # other family
        with pytest.raises(ValueError, match="loop"):
            relay.set_remote(Leg.A, HOST, relay.port(Leg.B))
        with pytest.raises(ValueError):
            relay.set_remote(Leg.A, HOST, 70_000)
        assert relay.remote(Leg.A) is None


async def test_stats_arrive_while_the_call_runs(pool: RelayWorkerPool, peer: PeerFactory) -> None:
    a, b = await peer(), await peer()
    async with await remote(pool) as relay:
        assert relay.stats().rtp_a_to_b.packets == 0
        relay.set_remote(Leg.B, HOST, b.port)
        for _ in range(10):
            a.send(RTP, relay.port(Leg.A))
            await b.recv()
        b.send(b"\x00" * 20, relay.port(Leg.B))  # not RTP: dropped
        await until(lambda: relay.stats().rtp_b_to_a.dropped == 1)
        stats = relay.stats()
        assert (stats.rtp_a_to_b.packets, stats.rtp_a_to_b.bytes) == (10, 10 * len(RTP))
        assert stats.source_a == a.addr


async def test_close_gives_final_stats_and_frees_the_ports(
    pool: RelayWorkerPool, peer: PeerFactory
) -> None:
    a, b = await peer(), await peer()
    relay = await remote(pool)
    relay.set_remote(Leg.B, HOST, b.port)
    for _ in range(3):
        a.send(RTP, relay.port(Leg.A))
        await b.recv()
    assert pool.loads().count(1) == 1
    relay.close()
    assert relay.closed
    await asyncio.wait_for(relay.wait_closed(), 5)
    assert relay.stats().rtp_a_to_b.packets == 3  # the final counters, not a stale push
    assert pool.loads() == [0, 0]
    for port in relay.ports:  # the worker's sockets are gone (max_idle=0: no pooling)
        for p in (port, port + 1):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((HOST, p))
    relay.close()  # twice is harmless
    relay.set_remote(Leg.A, HOST, a.port)  # after close: recorded, not sent
    await relay.wait_closed()


async def test_calls_spread_over_the_workers(pool: RelayWorkerPool) -> None:
    sessions = [await remote(pool) for _ in range(6)]
    try:
        assert pool.loads() == [3, 3]
        assert len({s.worker for s in sessions}) == 2
        slices = split_range(FIRST, LAST, 3)[1:]
        for s in sessions:
            lo, hi = slices[s.worker]
            assert all(lo <= p <= hi for p in s.ports)
    finally:
        for s in sessions:
            s.close()
        await asyncio.gather(*(s.wait_closed() for s in sessions))
    # closed at once in both workers: every socket is gone as each wait_closed returns
    for s in sessions:
        for port in s.ports:
            for p in (port, port + 1):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.bind((HOST, p))


async def test_a_killed_worker_is_restarted_and_new_calls_work(
    peer: PeerFactory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay_workers, "RESTART_DELAYS", (1.0,))
    pool = RelayWorkerPool(FIRST, LAST, 1, stats_interval=INTERVAL, max_idle=0)
    try:
        await pool.start()
        relay = await remote(pool)
        (pid,) = pool.pids()
        assert pid is not None
        with caplog.at_level(logging.ERROR, logger="firmware.media.relay_workers"):
            os.kill(pid, signal.SIGKILL)
            await asyncio.wait_for(relay.wait_closed(), 5)  # its media died; nothing hangs
            assert relay.closed
            relay.set_remote(Leg.A, HOST, 4000)  # harmless on a dead session
            relay.close()
            # while the worker is down, a new call is relayed in the SIP process itself
            assert pool.loads() == [None]
            fallback = await pool.open(HOST)
            assert isinstance(fallback, RelaySession)
            lo, hi = split_range(FIRST, LAST, 2)[0]
            assert lo <= fallback.port(Leg.A) <= hi
            fallback.close()
            await fallback.wait_closed()
            await until(lambda: pool.loads() == [0], timeout=15)
        assert any("relay worker died" in r.getMessage() for r in caplog.records)
        assert pool.restarts == 1 and pool.pids()[0] not in (None, pid)

        a, b = await peer(), await peer()
        async with await remote(pool) as again:
            again.set_remote(Leg.A, HOST, a.port)
            again.set_remote(Leg.B, HOST, b.port)
            assert (await relayed(lambda: b.send(RTP, again.port(Leg.B)), a))[0] == RTP
    finally:
        await pool.close()


async def test_a_hung_worker_is_killed_and_restarted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relay_workers, "RESTART_DELAYS", (0.1,))
    pool = RelayWorkerPool(FIRST, LAST, 1, stats_interval=INTERVAL, request_timeout=0.4)
    try:
        await pool.start()
        relay = await remote(pool)
        (pid,) = pool.pids()
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # alive but deaf
        relay.set_remote(Leg.A, HOST, 4000)  # never answered
        await asyncio.wait_for(relay.wait_closed(), 5)
        await until(lambda: pool.loads() == [0], timeout=15)
        assert pool.pids()[0] != pid
        again = await remote(pool)
        again.close()
        await asyncio.wait_for(again.wait_closed(), 5)
    finally:
        await pool.close()


async def test_close_stops_every_worker() -> None:
    pool = RelayWorkerPool(FIRST, LAST, 2, stats_interval=INTERVAL)
    await pool.start()
    pids = [p for p in pool.pids() if p is not None]
    assert len(pids) == 2
    relay = await remote(pool)
    await pool.close()
    await asyncio.wait_for(relay.wait_closed(), 5)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped, not a zombie
    assert pool.pids() == [None, None]


def test_range_split_into_disjoint_even_slices() -> None:
    slices = split_range(10_000, 19_999, 3)
    assert slices[0][0] == 10_000 and slices[-1][1] == 19_999
    for (lo, hi), (next_lo, _) in itertools.pairwise(slices):
        assert lo % 2 == 0 and hi % 2 == 1 and next_lo == hi + 1
    assert split_range(10_001, 10_009, 2) == [(10_002, 10_005), (10_006, 10_009)]
    with pytest.raises(ValueError):
        split_range(10_000, 10_005, 2)  # 3 pairs: not two each
    with pytest.raises(ValueError):
        RelayWorkerPool(FIRST, LAST, 0)


def test_default_workers_leave_a_core_to_the_sip_process() -> None:
    assert default_workers(1) == 0
    assert default_workers(2) == 0  # measured: one worker on 2 cores only adds a hop
    assert default_workers(4) == 3
    assert default_workers(8) == 7
    cores = os.cpu_count() or 1
    assert default_workers() == (cores - 1 if cores >= 4 else 0)
