"""The RTP relay that anchors a call's media on the box: pass-through, symmetric, latching.

Each call gets a `RelaySession` with two legs, A and B. A leg owns an RTP socket on an
even port and an RTCP socket on the port above, both bound on the box's media address.
What arrives on leg A's RTP socket leaves through leg B's RTP socket toward B, and vice
versa (RTCP likewise), so each phone talks to exactly the address and port the box put
in its SDP. Payloads are never touched (G.711 and everything else pass as they are);
the relay forwards whatever arrives whatever the hold state, since the phones already
stop sending when the SDP says so.

Where a leg's packets go is the address its phone actually sends from, learnt by
`firmware.media.latch.Latch` (see the rule there); the SDP address is only the first
guess. The per-packet path is kept to a tuple compare, two byte checks and a
``sendto``: under uvloop a bare Python relay costs ~7 µs of CPU per packet and every
extra step is paid at 50 packets/s per stream per direction.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from firmware.media.latch import RTP_HEADER, Addr, Latch, is_rtcp, is_rtp
from firmware.media.ports import PortAllocator

log = logging.getLogger(__name__)

#: DSCP EF (expedited forwarding, RFC 3246): what voice media is marked with.
DSCP_EF = 46
#: Seconds a latched source must be silent before another may take its place.
DEFAULT_RELATCH_AFTER = 2.0
#: Ports tried when a pair from the allocator is held by some other process.
BIND_ATTEMPTS = 8


class Leg(StrEnum):
    """The two sides of an anchored call."""

    A = "a"
    B = "b"

    @property
    def other(self) -> Leg:
        return Leg.B if self is Leg.A else Leg.A


@dataclass(frozen=True, slots=True)
class FlowStats:
    """Counters of one direction of one stream (RTP or RTCP)."""

    packets: int  # forwarded
    bytes: int  # forwarded
    dropped: int  # malformed: not RTP/RTCP version 2, too short
    ignored: int  # from a source other than the latched one
    unroutable: int  # nowhere to send yet (no SDP remote, nothing latched)
    send_errors: int  # sendto failed (e.g. ICMP port unreachable from the far side)


@dataclass(frozen=True, slots=True)
class RelayStats:
    """A snapshot of a session's counters and latched sources."""

    rtp_a_to_b: FlowStats
    rtp_b_to_a: FlowStats
    rtcp_a_to_b: FlowStats
    rtcp_b_to_a: FlowStats
    source_a: Addr | None  # where leg A's RTP comes from (and where B's goes)
    source_b: Addr | None


def _drop(data: bytes, addr: Addr) -> None:
    """Stand-in ``sendto`` until the transport exists."""


class _Endpoint(asyncio.DatagramProtocol):
    """One socket of a leg. ``out`` is the same-kind socket of the other leg."""

    __slots__ = (
        "bytes",
        "dest",
        "dropped",
        "ignored",
        "latch",
        "loop",
        "out",
        "packets",
        "send_errors",
        "sendto",
        "session",
        "source",
        "transport",
        "unroutable",
    )
    valid: Callable[[bytes], bool] = staticmethod(is_rtp)

    def __init__(self, session: RelaySession, latch: Latch) -> None:
        self.session = session
        self.latch = latch
        self.loop = asyncio.get_running_loop()
        self.out: _Endpoint = self
        self.transport: asyncio.DatagramTransport | None = None
        self.sendto: Callable[[bytes, Addr], None] = _drop
        self.source: Addr | None = None  # latched source, mirrors latch.source
        self.dest: Addr | None = None  # where to send toward this side, mirrors latch.target
        self.packets = self.bytes = self.dropped = self.ignored = 0
        self.unroutable = self.send_errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDPTransport does not subclass asyncio.DatagramTransport: duck-type it.
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.sendto = self.transport.sendto

    def connection_lost(self, exc: Exception | None) -> None:
        self.sendto = _drop
        self.session._endpoint_closed()

    def error_received(self, exc: Exception) -> None:
        self.send_errors += 1

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        # The hot path: latched source, plausible RTP, a known destination.
        if addr == self.source and len(data) >= RTP_HEADER and data[0] & 0xC0 == 0x80:
            out = self.out
            dest = out.dest
            if dest is not None:
                out.sendto(data, dest)
                self.packets += 1
                self.bytes += len(data)
                return
        self.forward(data, addr)

    def forward(self, data: bytes, addr: Addr) -> None:
        """The full path: validity, latching, then forwarding."""
        if not self.valid(data):
            self.dropped += 1
            return
        if addr != self.source:
            if not self.latch.consider(addr, self.loop.time(), self.packets + self.unroutable):
                self.ignored += 1
                return
            self.source = addr
            self.dest = self.latch.target
            log.debug("relay latched", extra={"port": self.port, "source": f"{addr[0]}:{addr[1]}"})
        out = self.out
        dest = out.dest
        if dest is None:
            self.unroutable += 1
            return
        out.sendto(data, dest)
        self.packets += 1
        self.bytes += len(data)

    def reset(self, expected: Addr | None) -> None:
        self.latch.reset(expected)
        self.source = self.latch.source
        self.dest = self.latch.target

    @property
    def port(self) -> int:
        if self.transport is None:
            return 0
        return int(self.transport.get_extra_info("sockname")[1])

    def flow(self) -> FlowStats:
        return FlowStats(
            self.packets,
            self.bytes,
            self.dropped,
            self.ignored,
            self.unroutable,
            self.out.send_errors,
        )


class _RtcpEndpoint(_Endpoint):
    """RTCP is a few packets per second: always take the checked path."""

    __slots__ = ()
    valid: Callable[[bytes], bool] = staticmethod(is_rtcp)

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.forward(data, addr)


def _bind(family: int, address: str, port: int, dscp: int | None) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if dscp is not None:
            try:
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, dscp << 2)
                else:
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, dscp << 2)
            except OSError:  # marking is a nicety; some sandboxes refuse it
                pass
        sock.bind((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _bind_pair(
    allocator: PortAllocator, family: int, address: str, dscp: int | None
) -> tuple[int, socket.socket, socket.socket]:
    """Allocate a pair and bind both sockets, skipping pairs another process holds."""
    for _ in range(BIND_ATTEMPTS):
        port = allocator.allocate()
        try:
            rtp = _bind(family, address, port, dscp)
            try:
                rtcp = _bind(family, address, port + 1, dscp)
            except BaseException:
                rtp.close()
                raise
        except OSError as exc:
            allocator.release(port)  # back of the queue: the next try gets another pair
            if exc.errno != errno.EADDRINUSE:
                raise
            log.warning("media port pair busy, trying another", extra={"port": port})
            continue
        except BaseException:
            allocator.release(port)
            raise
        return port, rtp, rtcp
    raise OSError(errno.EADDRINUSE, f"{BIND_ATTEMPTS} media port pairs in a row were busy")


def _factory(endpoint: _Endpoint) -> Callable[[], _Endpoint]:
    return lambda: endpoint


class RelaySession:
    """The media anchor of one call: legs A and B, RTP and RTCP, both directions.

    Create with ``await RelaySession.open(address, allocator)``; advertise
    `port` (leg) in each leg's SDP; feed each leg's SDP remote to `set_remote`; end
    with `close` (+ `wait_closed`) or ``async with``. Ports go back to the allocator
    once every socket is really closed, so a reused pair can always be bound again.
    """

    def __init__(
        self, address: str, allocator: PortAllocator, family: int, relatch_after: float
    ) -> None:
        self.address = address
        self.allocator = allocator
        self.family = family
        self._ports: dict[Leg, int] = {}
        self._rtp: dict[Leg, _Endpoint] = {}
        self._rtcp: dict[Leg, _Endpoint] = {}
        self._remote: dict[Leg, tuple[Addr | None, Addr | None]] = {
            Leg.A: (None, None),
            Leg.B: (None, None),
        }
        for leg in Leg:
            self._rtp[leg] = _Endpoint(self, Latch(relatch_after))
            self._rtcp[leg] = _RtcpEndpoint(self, Latch(relatch_after))
        for leg in Leg:
            self._rtp[leg].out = self._rtp[leg.other]
            self._rtcp[leg].out = self._rtcp[leg.other]
        self._open = 0
        self._closing = False
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(
        cls,
        address: str,
        allocator: PortAllocator,
        *,
        relatch_after: float = DEFAULT_RELATCH_AFTER,
        dscp: int | None = DSCP_EF,
    ) -> RelaySession:
        """Bind both legs' socket pairs on ``address`` (an IP literal) and start relaying.

        Raises `PortsExhaustedError` when the range is full, OSError when binding fails.
        """
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
        session = cls(address, allocator, family, relatch_after)
        socks: list[tuple[_Endpoint, socket.socket]] = []
        try:
            for leg in Leg:
                port, rtp, rtcp = _bind_pair(allocator, family, address, dscp)
                session._ports[leg] = port
                socks += [(session._rtp[leg], rtp), (session._rtcp[leg], rtcp)]
            loop = asyncio.get_running_loop()
            while socks:
                endpoint, sock = socks[0]
                await loop.create_datagram_endpoint(_factory(endpoint), sock=sock)
                socks.pop(0)
                session._open += 1
        except BaseException:
            for _, sock in socks:
                sock.close()
            if session._open:
                session.close()  # ports come back when the transports are closed
            else:
                for port in session._ports.values():
                    allocator.release(port)
            raise
        return session

    # ------------------------------------------------------------------ signalling side

    def port(self, leg: Leg) -> int:
        """The RTP port to advertise to ``leg`` (its RTCP port is this + 1)."""
        return self._ports[Leg(leg)]

    @property
    def ports(self) -> tuple[int, int]:
        """RTP ports of legs A and B."""
        return self._ports[Leg.A], self._ports[Leg.B]

    def set_remote(
        self, leg: Leg, host: str | None, port: int, rtcp_port: int | None = None
    ) -> None:
        """Where ``leg``'s phone said (in SDP) it receives media.

        ``host`` None, a null address (0.0.0.0, ::) or port 0 means nowhere (a rejected
        stream or an RFC 2543 hold): the leg gets nothing unless its phone sends and is
        latched. RTCP defaults to port + 1. Re-signalling the same address keeps the
        latch, and so does the first one; a different one clears it (latch rule 5).
        """
        leg = Leg(leg)
        rtp, rtcp = self._addresses(host, port, rtcp_port)
        if (rtp, rtcp) == self._remote[leg]:
            return
        self._remote[leg] = (rtp, rtcp)
        self._rtp[leg].reset(rtp)
        self._rtcp[leg].reset(rtcp)

    def _addresses(
        self, host: str | None, port: int, rtcp_port: int | None
    ) -> tuple[Addr | None, Addr | None]:
        if host is None or port == 0:
            return None, None
        ip = ipaddress.ip_address(host)  # ValueError for a name: resolve before calling
        if ip.is_unspecified:
            return None, None
        if (ip.version == 6) != (self.family == socket.AF_INET6):
            raise ValueError(f"remote {host} is not in the relay's address family")
        rtcp_port = port + 1 if rtcp_port is None else rtcp_port
        for p in (port, rtcp_port):
            if not 0 < p <= 65_535:
                raise ValueError(f"bad remote port {p}")
        text = ip.compressed
        if text == ipaddress.ip_address(self.address).compressed:
            own = {p + i for p in self._ports.values() for i in (0, 1)}
            if port in own or rtcp_port in own:
                raise ValueError("remote is the relay itself: packets would loop")
        if ip.version == 6:
            return (text, port, 0, 0), (text, rtcp_port, 0, 0)
        return (text, port), (text, rtcp_port)

    def remote(self, leg: Leg) -> Addr | None:
        """The RTP address ``leg``'s SDP announced (None until set)."""
        return self._remote[Leg(leg)][0]

    def source(self, leg: Leg) -> Addr | None:
        """The address ``leg``'s RTP is latched to (None before its first packet)."""
        return self._rtp[Leg(leg)].source

    def stats(self) -> RelayStats:
        a, b = self._rtp[Leg.A], self._rtp[Leg.B]
        ca, cb = self._rtcp[Leg.A], self._rtcp[Leg.B]
        return RelayStats(a.flow(), b.flow(), ca.flow(), cb.flow(), a.source, b.source)

    # ------------------------------------------------------------------ lifetime

    @property
    def closed(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop relaying; sockets close and ports return to the allocator shortly after."""
        if self._closing:
            return
        self._closing = True
        for endpoint in (*self._rtp.values(), *self._rtcp.values()):
            if endpoint.transport is not None:
                endpoint.transport.close()
        if self._open == 0:
            self._release()

    async def wait_closed(self) -> None:
        """Until every socket is closed and the ports are back in the allocator."""
        await asyncio.shield(self._closed)

    def _endpoint_closed(self) -> None:
        self._open -= 1
        if self._open == 0 and self._closing:
            self._release()

    def _release(self) -> None:
        if self._closed.done():
            return
        for port in self._ports.values():
            self.allocator.release(port)
        self._closed.set_result(None)

    async def __aenter__(self) -> RelaySession:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
        await self.wait_closed()
