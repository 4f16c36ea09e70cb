"""`RelayPorts`: released port pairs keep their sockets bound for the next call."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator

import pytest

from firmware.media.relay import Leg, RelayPorts, RelaySession

from .conftest import HOST, RTP, PeerFactory


@pytest.fixture
async def pool() -> AsyncIterator[RelayPorts]:
    ports = RelayPorts(22000, 22999, quarantine=0.05)
    yield ports
    ports.close()
    await asyncio.sleep(0.01)  # let the transports finish closing


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_pairs_are_reused_after_quarantine(peer: PeerFactory, pool: RelayPorts) -> None:
    a, b = await peer(), await peer()
    first = await RelaySession.open(HOST, pool)
    ports = first.ports
    first.set_remote(Leg.B, HOST, b.port)
    a.send(RTP, first.port(Leg.A))
    await b.recv()
    first.close()
    await first.wait_closed()
    assert pool.idle == 2 and pool.in_use == 2  # pooled pairs stay allocated

    early = await RelaySession.open(HOST, pool)  # still in quarantine: new pairs
    assert set(early.ports).isdisjoint(ports) and pool.reused == 0
    early.close()
    await asyncio.sleep(0.06)

    second = await RelaySession.open(HOST, pool)
    assert second.ports == ports and pool.reused == 2
    # a fresh start: no latch, no counters, nowhere to send until told
    assert second.source(Leg.A) is None and second.remote(Leg.B) is None
    assert second.stats().rtp_a_to_b.packets == 0
    a.send(RTP, second.port(Leg.A))
    assert await b.silent()  # unroutable: leg B's remote is not known yet
    second.set_remote(Leg.B, HOST, b.port)
    a.send(RTP, second.port(Leg.A))
    data, source = await b.recv()
    assert data == RTP and source == (HOST, second.port(Leg.B))
    assert second.stats().rtp_a_to_b.packets == 1
    second.close()


async def test_idle_sockets_drop_what_arrives(peer: PeerFactory, pool: RelayPorts) -> None:
    a, b = await peer(), await peer()
    relay = await RelaySession.open(HOST, pool)
    relay.set_remote(Leg.A, HOST, a.port)
    relay.set_remote(Leg.B, HOST, b.port)
    pa, pb = relay.ports
    relay.close()
    for _ in range(5):  # late media of the ended call
        a.send(RTP, pa)
        b.send(RTP, pb)
    assert await a.silent() and await b.silent()  # neither forwarded nor echoed


async def test_exhausted_range_takes_quarantined_pairs(pool: RelayPorts) -> None:
    small = RelayPorts(22500, 22503, quarantine=60.0)  # two pairs: one session
    try:
        relay = await RelaySession.open(HOST, small)
        ports = relay.ports
        relay.close()
        again = await RelaySession.open(HOST, small)
        assert set(again.ports) == set(ports) and small.reused == 2
        again.close()
    finally:
        small.close()
        await asyncio.sleep(0.01)


async def test_idle_pool_is_bounded(pool: RelayPorts) -> None:
    bounded = RelayPorts(22600, 22699, max_idle=3, quarantine=0.0)
    try:
        sessions = [await RelaySession.open(HOST, bounded) for _ in range(4)]
        for relay in sessions:
            relay.close()
        await asyncio.sleep(0.02)
        assert bounded.idle == 3 and bounded.in_use == 3  # the rest closed and released
    finally:
        bounded.close()
        await asyncio.sleep(0.02)
    assert bounded.idle == 0 and bounded.available == bounded.capacity


async def test_close_unbinds_every_idle_socket(pool: RelayPorts) -> None:
    sessions = [await RelaySession.open(HOST, pool) for _ in range(3)]
    ports = [p for relay in sessions for p in relay.ports]
    for relay in sessions:
        relay.close()
    pool.close()
    await asyncio.sleep(0.02)
    assert pool.available == pool.capacity
    for port in ports:
        for p in (port, port + 1):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((HOST, p))  # free again


async def test_steady_churn_opens_no_new_sockets(peer: PeerFactory, pool: RelayPorts) -> None:
    b = await peer()
    for _ in range(3):  # warm the pool
        relay = await RelaySession.open(HOST, pool)
        relay.close()
    await asyncio.sleep(0.06)
    before, reused = fds(), pool.reused
    for _ in range(50):
        relay = await RelaySession.open(HOST, pool)
        relay.set_remote(Leg.B, HOST, b.port)
        relay.close()
        await asyncio.sleep(0.03)  # the pairs of two calls ago are out of quarantine
    assert fds() <= before + 4 and pool.reused - reused >= 90


async def test_idle_pairs_expire(pool: RelayPorts) -> None:
    expiring = RelayPorts(22700, 22799, quarantine=0.0, idle_timeout=0.05)
    try:
        relay = await RelaySession.open(HOST, expiring)
        ports = relay.ports
        relay.close()
        assert expiring.idle == 2
        await asyncio.sleep(0.06)
        assert expiring.sweep(asyncio.get_running_loop().time()) == 2
        await asyncio.sleep(0.02)
        assert expiring.idle == 0 and expiring.available == expiring.capacity
        for port in ports:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((HOST, port))  # unbound again
    finally:
        expiring.close()
