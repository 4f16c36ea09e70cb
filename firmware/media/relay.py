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
import functools
import ipaddress
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from firmware.media.latch import RTP_HEADER, Addr, Latch, is_rtcp, is_rtp
from firmware.media.ports import DEFAULT_FIRST_PORT, DEFAULT_LAST_PORT, PortAllocator

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
    """One socket of a leg. ``out`` is the same-kind socket of the other leg.

    Outlives a session when its socket is pooled (`RelayPorts`): `attach` gives it a
    fresh latch and zeroed counters for the next call.
    """

    __slots__ = (
        "bytes",
        "dest",
        "dropped",
        "ignored",
        "latch",
        "loop",
        "on_closed",
        "out",
        "packets",
        "send_errors",
        "sendto",
        "source",
        "transport",
        "unroutable",
    )
    valid: Callable[[bytes], bool] = staticmethod(is_rtp)

    def __init__(self, loop: asyncio.AbstractEventLoop | None, relatch_after: float) -> None:
        self.loop = loop
        self.on_closed: Callable[[], None] = _nothing
        self.transport: asyncio.DatagramTransport | None = None
        self.sendto: Callable[[bytes, Addr], None] = _drop
        self.attach(relatch_after)

    def attach(self, relatch_after: float | None) -> None:
        """Start over: nothing latched, nowhere to send, counters 0. A new session wires
        `out` next; ``relatch_after`` None makes the socket deaf (idle in a pool: what
        arrives is counted as ignored and dropped)."""
        self.latch = _DEAF if relatch_after is None else Latch(relatch_after)
        self.out: _Endpoint = _NOWHERE
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
        self.on_closed()

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
            now = self.loop.time() if self.loop is not None else 0.0
            if not self.latch.consider(addr, now, self.packets + self.unroutable):
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


class _DeafLatch(Latch):
    """The latch of a socket no call owns: it never latches."""

    __slots__ = ()

    def consider(self, source: Addr, now: float, latched_count: int) -> bool:
        return False


def _nowhere() -> _Endpoint:
    """The stand-in `out` of a socket wired to no other leg: its ``dest`` is None, so
    nothing is ever sent (built without `attach`, which points `out` here)."""
    nowhere = _Endpoint.__new__(_Endpoint)
    nowhere.loop = None
    nowhere.transport = None
    nowhere.sendto = _drop
    nowhere.latch = _DEAF
    nowhere.out = nowhere
    nowhere.source = nowhere.dest = None
    nowhere.packets = nowhere.bytes = nowhere.dropped = nowhere.ignored = 0
    nowhere.unroutable = nowhere.send_errors = 0
    return nowhere


_DEAF = _DeafLatch()
_NOWHERE = _nowhere()


class _RtcpEndpoint(_Endpoint):
    """RTCP is a few packets per second: always take the checked path."""

    __slots__ = ()
    valid: Callable[[bytes], bool] = staticmethod(is_rtcp)

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.forward(data, addr)


def _nothing() -> None:
    pass


def _bind(family: int, address: str, port: int, dscp: int | None) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
    try:
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


def bind_pair(
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


def remote_addresses(
    host: str | None,
    port: int,
    rtcp_port: int | None,
    family: int,
    own_address: str,
    own_ports: Mapping[Leg, int],
) -> tuple[Addr | None, Addr | None]:
    """The RTP and RTCP socket addresses an SDP remote names (None, None: nowhere — no
    host, port 0 or a null address). ValueError for a name (resolve first), another
    address family, a bad port, or the anchor's own ports (packets would loop)."""
    if host is None or port == 0:
        return None, None
    text, version, unspecified = _ip(host)
    if unspecified:
        return None, None
    if (version == 6) != (family == socket.AF_INET6):
        raise ValueError(f"remote {host} is not in the relay's address family")
    rtcp_port = port + 1 if rtcp_port is None else rtcp_port
    for p in (port, rtcp_port):
        if not 0 < p <= 65_535:
            raise ValueError(f"bad remote port {p}")
    if text == _ip(own_address)[0]:
        own = {p + i for p in own_ports.values() for i in (0, 1)}
        if port in own or rtcp_port in own:
            raise ValueError("remote is the relay itself: packets would loop")
    if version == 6:
        return (text, port, 0, 0), (text, rtcp_port, 0, 0)
    return (text, port), (text, rtcp_port)


def _factory(endpoint: _Endpoint) -> Callable[[], _Endpoint]:
    return lambda: endpoint


@functools.lru_cache(maxsize=4096)
def _ip(host: str) -> tuple[str, int, bool]:
    """(compressed text, version, unspecified) of an IP literal; ValueError for a name.
    Cached: the same few phone and box addresses come back with every call."""
    ip = ipaddress.ip_address(host)
    return ip.compressed, ip.version, ip.is_unspecified


class _Pair:
    """A bound RTP/RTCP port pair of one leg, with its two endpoints."""

    __slots__ = ("address", "dscp", "idle_since", "open", "port", "rtcp", "rtp")

    def __init__(self, port: int, address: str, dscp: int | None, rtp: _Endpoint, rtcp: _Endpoint):
        self.port = port
        self.address = address
        self.dscp = dscp
        self.rtp = rtp
        self.rtcp = rtcp
        self.open = 0  # sockets whose transport exists and has not been lost
        self.idle_since = 0.0

    @property
    def reusable(self) -> bool:
        return (
            self.open == 2
            and self.rtp.transport is not None
            and not self.rtp.transport.is_closing()
            and self.rtcp.transport is not None
            and not self.rtcp.transport.is_closing()
        )


async def _start_pair(
    port: int,
    socks: tuple[socket.socket, socket.socket],
    address: str,
    dscp: int | None,
    relatch_after: float,
    allocator: PortAllocator,
) -> _Pair:
    """Start the transports of a freshly bound pair (closing it all if that fails)."""
    loop = asyncio.get_running_loop()
    pair = _Pair(
        port, address, dscp, _Endpoint(loop, relatch_after), _RtcpEndpoint(loop, relatch_after)
    )
    pending = [(pair.rtp, socks[0]), (pair.rtcp, socks[1])]
    try:
        while pending:
            endpoint, sock = pending[0]
            await loop.create_datagram_endpoint(_factory(endpoint), sock=sock)
            pending.pop(0)
            pair.open += 1
    except BaseException:
        for _, sock in pending:
            sock.close()
        _close_pair(pair, allocator)
        raise
    return pair


def _close_pair(pair: _Pair, allocator: PortAllocator, then: Callable[[], None] = _nothing) -> None:
    """Close both sockets; once both really are, the port goes back to ``allocator``
    and ``then`` runs."""

    def closed() -> None:
        pair.open -= 1
        if pair.open == 0:
            allocator.release(pair.port)
            then()

    pair.rtp.on_closed = pair.rtcp.on_closed = closed
    if pair.open == 0:
        allocator.release(pair.port)
        then()
        return
    for endpoint in (pair.rtp, pair.rtcp):
        if endpoint.transport is not None and not endpoint.transport.is_closing():
            endpoint.transport.close()


class RelayPorts(PortAllocator):
    """A `PortAllocator` that keeps the sockets of released pairs bound, for the next call.

    Binding a leg's two sockets and starting their transports is most of what opening a
    relay session costs (8 syscalls and 2 loop round trips per leg); at 1,000 calls/s
    that is 4,000 sockets a second opened and closed. A pair a session gives back stays
    bound in an idle FIFO and is handed out again once it has been idle ``quarantine``
    seconds (so late packets of the call that ended meet no other call: while idle they
    are read and dropped). At most ``max_idle`` pairs wait, none longer than
    ``idle_timeout`` (`sweep`); beyond that the oldest is closed and its port released.
    Pooled pairs count as allocated. Call `close` (the owner's shutdown) to close the
    idle sockets.

    ``clock`` is the pool's time: CLOCK_MONOTONIC, the clock of asyncio's and uvloop's
    ``loop.time()`` on Linux (which `sweep` callers may pass), read without the getpid
    that every ``asyncio.get_running_loop()`` costs.
    """

    def __init__(
        self,
        first: int = DEFAULT_FIRST_PORT,
        last: int = DEFAULT_LAST_PORT,
        *,
        max_idle: int = 1024,
        quarantine: float = 0.5,
        idle_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(first, last)
        self.clock = clock
        self.max_idle = max(0, max_idle)
        self.quarantine = quarantine
        self.idle_timeout = idle_timeout
        self._idle: deque[_Pair] = deque()
        self.reused = 0  # pairs handed out again (for /metrics and tests)

    @property
    def idle(self) -> int:
        """Pairs bound and waiting for a call."""
        return len(self._idle)

    def _take(
        self, address: str, dscp: int | None, now: float, relatch_after: float
    ) -> _Pair | None:
        """The oldest idle pair out of quarantine, bound as asked; else None. When the
        range is exhausted a pair still in quarantine is better than no call."""
        idle = self._idle
        while idle and not idle[0].reusable:  # closed under us (fatal socket error)
            _close_pair(idle.popleft(), self)
        if not idle:
            return None
        pair = idle[0]
        if now - pair.idle_since < self.quarantine and self.available:
            return None
        if pair.address != address or pair.dscp != dscp:
            return None  # another media address: the pool serves one at a time
        idle.popleft()
        pair.rtp.attach(relatch_after)
        pair.rtcp.attach(relatch_after)
        self.reused += 1
        return pair

    def _give(self, pair: _Pair, now: float, then: Callable[[], None] = _nothing) -> bool:
        """Pool ``pair`` (True); or close it (False: ``then`` runs once it is closed)."""
        if not pair.reusable or self.max_idle == 0:
            _close_pair(pair, self, then)
            return False
        pair.rtp.attach(None)  # deaf until the next call: arrivals are dropped
        pair.rtcp.attach(None)
        pair.idle_since = now
        self._idle.append(pair)
        while len(self._idle) > self.max_idle:
            _close_pair(self._idle.popleft(), self)
        self.sweep(now)
        return True

    def sweep(self, now: float) -> int:
        """Close the pairs idle for ``idle_timeout`` seconds (call this now and then:
        when the calls stop, their sockets should not stay bound); returns how many."""
        idle, closed = self._idle, 0
        while idle and now - idle[0].idle_since >= self.idle_timeout:
            _close_pair(idle.popleft(), self)
            closed += 1
        return closed

    def close(self) -> None:
        """Close every idle pair (their ports return once the sockets are closed)."""
        while self._idle:
            _close_pair(self._idle.popleft(), self)


def _give_back(pairs: dict[Leg, _Pair], allocator: PortAllocator, pool: RelayPorts | None) -> None:
    """Undo a half-opened session: pooled pairs back to the pool, others closed."""
    for pair in pairs.values():
        if pool is not None and pair.reusable:
            pool._give(pair, pool.clock())
        else:
            _close_pair(pair, allocator)


@dataclass(frozen=True, slots=True)
class HandedLeg:
    """One leg's open sockets as `RelaySession.hand_over` gives them away."""

    leg: Leg
    port: int
    rtp: asyncio.DatagramTransport
    rtcp: asyncio.DatagramTransport
    rtp_latch: Latch
    rtcp_latch: Latch
    remote: Addr | None


class RelaySession:
    """The media anchor of one call: legs A and B, RTP and RTCP, both directions.

    Create with ``await RelaySession.open(address, allocator)``; advertise
    `port` (leg) in each leg's SDP; feed each leg's SDP remote to `set_remote`; end
    with `close` (+ `wait_closed`) or ``async with``. Ports go back to the allocator
    once every socket is really closed, so a reused pair can always be bound again;
    with a `RelayPorts` allocator the pairs go back to its pool instead.
    """

    def __init__(
        self,
        address: str,
        allocator: PortAllocator,
        family: int,
        pairs: dict[Leg, _Pair],
    ) -> None:
        self.address = address
        self.allocator = allocator
        self.family = family
        self._pairs = pairs
        self._ports: dict[Leg, int] = {leg: pair.port for leg, pair in pairs.items()}
        self._rtp: dict[Leg, _Endpoint] = {leg: pair.rtp for leg, pair in pairs.items()}
        self._rtcp: dict[Leg, _Endpoint] = {leg: pair.rtcp for leg, pair in pairs.items()}
        self._remote: dict[Leg, tuple[Addr | None, Addr | None]] = {
            Leg.A: (None, None),
            Leg.B: (None, None),
        }
        a, b = pairs[Leg.A], pairs[Leg.B]
        a.rtp.out, b.rtp.out, a.rtcp.out, b.rtcp.out = b.rtp, a.rtp, b.rtcp, a.rtcp
        self._closing = False
        self._pending = 0  # pairs not yet given back (closed or pooled)
        self._closed: asyncio.Future[None] | None = None

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
        _, version, _ = _ip(address)
        family = socket.AF_INET6 if version == 6 else socket.AF_INET
        pool = allocator if isinstance(allocator, RelayPorts) else None
        pairs: dict[Leg, _Pair] = {}
        if pool is not None:
            now = pool.clock()
            for leg in (Leg.A, Leg.B):
                pair = pool._take(address, dscp, now, relatch_after)
                if pair is not None:
                    pairs[leg] = pair
        # Bind every missing pair before starting any transport, so that running out of
        # ports gives every port back at once.
        bound: dict[Leg, tuple[int, socket.socket, socket.socket]] = {}
        try:
            for leg in (Leg.A, Leg.B):
                if leg not in pairs:
                    bound[leg] = bind_pair(allocator, family, address, dscp)
        except BaseException:
            for port, rtp, rtcp in bound.values():
                rtp.close()
                rtcp.close()
                allocator.release(port)
            _give_back(pairs, allocator, pool)
            raise
        try:
            while bound:
                leg, (port, rtp, rtcp) = next(iter(bound.items()))
                del bound[leg]
                pairs[leg] = await _start_pair(
                    port, (rtp, rtcp), address, dscp, relatch_after, allocator
                )
        except BaseException:
            for port, rtp, rtcp in bound.values():
                rtp.close()
                rtcp.close()
                allocator.release(port)
            _give_back(pairs, allocator, pool)
            raise
        return cls(address, allocator, family, pairs)

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
        return remote_addresses(host, port, rtcp_port, self.family, self.address, self._ports)

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
        """Stop relaying; sockets close (or go back to the pool) and ports return to the
        allocator shortly after."""
        if self._closing:
            return
        self._closing = True
        allocator = self.allocator
        pool = allocator if isinstance(allocator, RelayPorts) else None
        now = pool.clock() if pool is not None else 0.0
        for pair in self._pairs.values():
            self._pending += 1  # until pooled, or closed (the pool may close it too)
            if pool is not None and pair.reusable:
                if pool._give(pair, now, self._pair_done):
                    self._pending -= 1
            else:
                _close_pair(pair, allocator, self._pair_done)

    def hand_over(self) -> list[HandedLeg]:
        """Give this session's bound sockets to another anchor (`MediaBridge.adopt`, when
        a call turns out to need transcoding) and stop relaying: the new owner swaps in
        its own protocols, keeps the latches and closes the sockets in the end (the
        ports go back to `allocator` then, not to the pool)."""
        if self._closing:
            raise RuntimeError("the relay session is closed")
        self._closing = True
        legs = []
        for leg, pair in self._pairs.items():
            rtp, rtcp = pair.rtp.transport, pair.rtcp.transport
            if pair.open != 2 or rtp is None or rtcp is None:
                raise RuntimeError("the relay session's sockets are not open")
            legs.append(
                HandedLeg(
                    leg, pair.port, rtp, rtcp, pair.rtp.latch, pair.rtcp.latch, self._remote[leg][0]
                )
            )
            pair.rtp.on_closed = pair.rtcp.on_closed = _nothing
        return legs

    def _pair_done(self) -> None:
        self._pending -= 1
        if self._pending == 0 and self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    async def wait_closed(self) -> None:
        """Until every socket is closed (or pooled) and the ports are back."""
        if self._closing and self._pending == 0:
            return
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._closed)

    async def __aenter__(self) -> RelaySession:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
        await self.wait_closed()
