"""The RTP relay over real UDP sockets on 127.0.0.1 (under asyncio and uvloop)."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from firmware.media.ports import PortAllocator, PortsExhaustedError
from firmware.media.relay import DSCP_EF, Leg, RelaySession

from .conftest import HOST, RTCP_RR, RTP, PeerFactory


async def test_forwards_rtp_both_ways(peer: PeerFactory, allocator: PortAllocator) -> None:
    a, b = await peer(), await peer()
    async with await RelaySession.open(HOST, allocator) as relay:
        relay.set_remote(Leg.A, HOST, a.port)
        relay.set_remote(Leg.B, HOST, b.port)
        pa, pb = relay.ports
        assert pa % 2 == 0 and pb % 2 == 0 and pa != pb

        a.send(RTP, pa)
        data, source = await b.recv()
        assert data == RTP and source == (HOST, pb)  # leaves through leg B's own socket

        reply = RTP[:12] + b"\x55" * 160
        b.send(reply, pb)
        data, source = await a.recv()
        assert data == reply and source == (HOST, pa)

        stats = relay.stats()
        assert (stats.rtp_a_to_b.packets, stats.rtp_a_to_b.bytes) == (1, len(RTP))
        assert (stats.rtp_b_to_a.packets, stats.rtp_b_to_a.bytes) == (1, len(reply))
        assert stats.source_a == a.addr and stats.source_b == b.addr


async def test_forwards_many_packets_in_order(peer: PeerFactory, allocator: PortAllocator) -> None:
    a, b = await peer(), await peer()
    async with await RelaySession.open(HOST, allocator) as relay:
        relay.set_remote(Leg.B, HOST, b.port)
        for seq in range(50):
            a.send(b"\x80\x08" + seq.to_bytes(2, "big") + bytes(168), relay.port(Leg.A))
        got = [(await b.recv())[0][2:4] for _ in range(50)]
        assert got == [seq.to_bytes(2, "big") for seq in range(50)]


async def test_rtcp_on_the_port_above(peer: PeerFactory, allocator: PortAllocator) -> None:
    a, a_rtcp, b, b_rtcp = await peer(), await peer(), await peer(), await peer()
    async with await RelaySession.open(HOST, allocator) as relay:
        relay.set_remote(Leg.A, HOST, a.port, rtcp_port=a_rtcp.port)
        relay.set_remote(Leg.B, HOST, b.port, rtcp_port=b_rtcp.port)
        pa, pb = relay.ports
        a_rtcp.send(RTCP_RR, pa + 1)
        assert await b_rtcp.recv() == (RTCP_RR, (HOST, pb + 1))
        b_rtcp.send(RTCP_RR, pb + 1)
        assert await a_rtcp.recv() == (RTCP_RR, (HOST, pa + 1))
        assert await b.silent() and await a.silent()
        stats = relay.stats()
        assert stats.rtcp_a_to_b.packets == 1 and stats.rtcp_b_to_a.packets == 1
        assert stats.rtp_a_to_b.packets == 0


async def test_latches_onto_the_nat_source(peer: PeerFactory, allocator: PortAllocator) -> None:
    """The phone's SDP names one port, its packets come from another (NAT)."""
    sdp_said, behind_nat, b = await peer(), await peer(), await peer()
    async with await RelaySession.open(HOST, allocator) as relay:
        relay.set_remote(Leg.A, HOST, sdp_said.port)
        relay.set_remote(Leg.B, HOST, b.port)
        pa, pb = relay.ports

        b.send(RTP, pb)  # before A spoke, the SDP address is the best guess
        assert (await sdp_said.recv())[0] == RTP

        behind_nat.send(RTP, pa)
        assert (await b.recv())[0] == RTP
        assert relay.source(Leg.A) == behind_nat.addr and relay.remote(Leg.A) == sdp_said.addr

        b.send(RTP, pb)  # answers now go where A really is
        assert (await behind_nat.recv())[0] == RTP
        assert await sdp_said.silent()


async def test_latched_stream_ignores_strangers(
    peer: PeerFactory, allocator: PortAllocator
) -> None:
    a, b, stranger = await peer(), await peer(), await peer()
    async with await RelaySession.open(HOST, allocator, relatch_after=30.0) as relay:
        relay.set_remote(Leg.A, HOST, a.port)
        relay.set_remote(Leg.B, HOST, b.port)
        pa, pb = relay.ports
        a.send(RTP, pa)
        await b.recv()
        for _ in range(3):
            stranger.send(RTP, pa)
        await asyncio.sleep(0.05)
        assert await b.silent()
        assert relay.stats().rtp_a_to_b.ignored == 3
        b.send(RTP, pb)
        assert (await a.recv())[0] == RTP
        assert await stranger.silent()


async def test_relatches_after_silence(peer: PeerFactory, allocator: PortAllocator) -> None:
    old, new, b = await peer(), await peer(), await peer()
    async with await RelaySession.open(HOST, allocator, relatch_after=0.1) as relay:
        relay.set_remote(Leg.A, HOST, old.port)
        relay.set_remote(Leg.B, HOST, b.port)
        pa, pb = relay.ports
        old.send(RTP, pa)
        await b.recv()
        new.send(RTP, pa)  # the first knock is only noted
        assert await b.silent(0.15)
        new.send(RTP, pa)  # old source silent for > 0.1 s: the new mapping takes over
        await b.recv()
        assert relay.source(Leg.A) == new.addr
        b.send(RTP, pb)
        assert (await new.recv())[0] == RTP


async def test_new_sdp_remote_clears_latch(peer: PeerFactory, allocator: PortAllocator) -> None:
    first, second, b = await peer(), await peer(), await peer()
    async with await RelaySession.open(HOST, allocator, relatch_after=30.0) as relay:
        relay.set_remote(Leg.B, HOST, b.port)
        first.send(RTP, relay.port(Leg.A))
        await b.recv()
        relay.set_remote(Leg.A, HOST, first.port)  # the same as latched: no change
        assert relay.source(Leg.A) == first.addr
        relay.set_remote(Leg.A, HOST, second.port)  # re-INVITE moved the stream
        assert relay.source(Leg.A) is None
        second.send(RTP, relay.port(Leg.A))
        await b.recv()
        assert relay.source(Leg.A) == second.addr


async def test_garbage_is_dropped(peer: PeerFactory, allocator: PortAllocator) -> None:
    b = await peer()
    async with await RelaySession.open(HOST, allocator) as relay:
        relay.set_remote(Leg.B, HOST, b.port)
        pa = relay.port(Leg.A)
        garbage = [b"", b"\x80", b"\x80" * 11, b"\x40" + bytes(40), b"\x00" * 200, b"GET / HTTP"]
        # A raw socket: asyncio transports silently skip empty datagrams.
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        raw.bind((HOST, 0))
        try:
            for junk in garbage:
                raw.sendto(junk, (HOST, pa))
            raw.sendto(RTP, (HOST, pa + 1))  # RTP on the RTCP port is not RTCP
            assert await b.silent()
            assert relay.source(Leg.A) is None  # garbage does not latch
            raw.sendto(RTP, (HOST, pa))
            assert (await b.recv())[0] == RTP
            for junk in garbage:  # nor is it forwarded once latched
                raw.sendto(junk, (HOST, pa))
            assert await b.silent()
        finally:
            raw.close()
        stats = relay.stats()
        assert stats.rtp_a_to_b.dropped == 2 * len(garbage)
        assert stats.rtcp_a_to_b.dropped == 1
        assert stats.rtp_a_to_b.packets == 1


async def test_unroutable_until_the_far_side_is_known(
    peer: PeerFactory, allocator: PortAllocator
) -> None:
    a, b = await peer(), await peer()
    async with await RelaySession.open(HOST, allocator) as relay:
        a.send(RTP, relay.port(Leg.A))
        await asyncio.sleep(0.05)
        assert relay.stats().rtp_a_to_b.unroutable == 1
        relay.set_remote(Leg.B, "0.0.0.0", 5000)  # RFC 2543 hold: nowhere
        assert relay.remote(Leg.B) is None
        relay.set_remote(Leg.B, HOST, b.port)
        a.send(RTP, relay.port(Leg.A))
        assert (await b.recv())[0] == RTP


async def test_set_remote_checks(allocator: PortAllocator) -> None:
    async with await RelaySession.open(HOST, allocator) as relay:
        with pytest.raises(ValueError):
            relay.set_remote(Leg.A, "phone.example.com", 4000)
        with pytest.raises(ValueError, match="family"):
            relay.set_remote(Leg.A, "::1", 4000)
        with pytest.raises(ValueError, match="port"):
            relay.set_remote(Leg.A, HOST, 70000)
        with pytest.raises(ValueError, match="loop"):
            relay.set_remote(Leg.A, HOST, relay.port(Leg.B))
        relay.set_remote("a", HOST, 4000)  # type: ignore[arg-type]  # plain strings work too
        assert relay.remote(Leg.A) == (HOST, 4000)


async def test_exhaustion_leaves_the_allocator_intact(peer: PeerFactory) -> None:
    pool = PortAllocator(21000, 21005)  # three pairs: one session and a half
    relay = await RelaySession.open(HOST, pool)
    assert pool.available == 1
    with pytest.raises(PortsExhaustedError):
        await RelaySession.open(HOST, pool)
    assert pool.available == 1
    relay.close()
    await relay.wait_closed()
    assert pool.available == pool.capacity


async def test_skips_a_port_pair_held_by_someone_else(peer: PeerFactory) -> None:
    pool = PortAllocator(21100, 21199)
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind((HOST, 21101))  # the RTCP half of the first pair
    try:
        async with await RelaySession.open(HOST, pool) as relay:
            assert 21100 not in relay.ports
            assert pool.in_use == 2 and not pool.is_allocated(21100)
        assert pool.available == pool.capacity
    finally:
        squatter.close()


async def test_close_releases_sockets_and_ports(allocator: PortAllocator) -> None:
    relay = await RelaySession.open(HOST, allocator)
    ports = relay.ports
    relay.close()
    relay.close()  # idempotent
    assert relay.closed
    await relay.wait_closed()
    for port in ports:
        for p in (port, port + 1):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((HOST, p))  # free again


async def test_no_leak_after_many_sessions(peer: PeerFactory, allocator: PortAllocator) -> None:
    a, b = await peer(), await peer()
    warm = await RelaySession.open(HOST, allocator)
    warm.close()
    await warm.wait_closed()
    fds_before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        sessions = [await RelaySession.open(HOST, allocator) for _ in range(40)]
        assert allocator.in_use == 80
        for relay in sessions:
            relay.set_remote(Leg.B, HOST, b.port)
            a.send(RTP, relay.port(Leg.A))
        for _ in sessions:
            await b.recv()
        for relay in sessions:
            relay.close()
        await asyncio.gather(*(relay.wait_closed() for relay in sessions))
        assert allocator.available == allocator.capacity
    assert len(os.listdir("/proc/self/fd")) == fds_before


async def test_sockets_are_marked_ef(allocator: PortAllocator) -> None:
    async with await RelaySession.open(HOST, allocator) as relay:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((HOST, 0))
        transport = relay._rtp[Leg.A].transport
        assert transport is not None
        sock = transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == DSCP_EF << 2


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no ::1 on this host")
async def test_ipv6(allocator: PortAllocator) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            queue.put_nowait(data)

    a, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("::1", 0))
    b, _ = await loop.create_datagram_endpoint(Sink, local_addr=("::1", 0))
    try:
        async with await RelaySession.open("::1", allocator) as relay:
            relay.set_remote(Leg.B, "::1", b.get_extra_info("sockname")[1])
            a.sendto(RTP, ("::1", relay.port(Leg.A)))
            assert await asyncio.wait_for(queue.get(), 2) == RTP
            assert relay.source(Leg.A) == ("::1", a.get_extra_info("sockname")[1], 0, 0)
    finally:
        a.close()
        b.close()
