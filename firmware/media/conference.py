"""An N-party conference on the box: each member an RTP endpoint with its own codec,
mixed every 20 ms by `firmware.media.mixer.Mixer`.

API::

    conf = await Conference.open(address, allocator)
    port = await conf.add("alice", "PCMA")        # advertise port (RTCP +1) in her SDP
    conf.set_remote("alice", host, rtp_port)
    conf.mixer.set_role("sup", Role.WHISPER, target="alice")   # supervisor modes
    conf.quality("alice")                          # CDR figures
    await conf.remove("alice"); conf.close(); await conf.wait_closed()

Each member has its own RTP/RTCP socket pair (latched like the relay, SRTP optional),
a `JitterBuffer` that turns its packets into one 160-sample frame per tick (with
concealment of losses: a member that sends nothing is silence), and a `Packetizer`
for what it hears, in its codec and ptime. Every `TICK` the conference takes one frame
from every member, mixes (each hears the others, by role) and sends each its output.
The conference terminates media, so RTCP from members is read and dropped, and only
the member's audio payload type is mixed (RFC 4733 events and comfort noise are not).
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
from collections.abc import Callable, Hashable
from typing import Any, cast

from firmware.media.bridge import TICK, BridgeError, LegMedia, Packetizer, bind_pair
from firmware.media.codecs import AUDIO_RATE, CodecInfo, create_codec
from firmware.media.emodel import estimate
from firmware.media.jitter import JitterBuffer
from firmware.media.latch import Addr, Latch, is_rtcp, is_rtp
from firmware.media.mixer import Mixer, Role
from firmware.media.ports import PortAllocator
from firmware.media.relay import DEFAULT_RELATCH_AFTER, DSCP_EF
from firmware.media.rtp import RtpError, parse_rtp
from firmware.media.srtp import SrtpSession
from firmware.media.stream import RtpReceiver

__all__ = ["Conference", "ConferenceError"]

#: Tick timer this far behind the wall clock restarts its schedule instead of bursting.
MAX_TICK_LAG = 0.1


class ConferenceError(BridgeError):
    """Unknown or duplicate member, or a media setting the conference cannot use."""


class _Socket(asyncio.DatagramProtocol):
    """A member's RTP (or RTCP) socket: latches, then hands RTP to the member."""

    def __init__(self, member: _Member, rtcp: bool, relatch_after: float) -> None:
        self.member = member
        self.rtcp = rtcp
        self.latch = Latch(relatch_after)
        self.transport: asyncio.DatagramTransport | None = None
        self.sendto: Callable[[bytes, Addr], None] = _drop
        self.received = self.dropped = self.ignored = self.sent = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.sendto = self.transport.sendto

    def connection_lost(self, exc: Exception | None) -> None:
        self.sendto = _drop
        self.member.socket_closed()

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        member = self.member
        if not (is_rtcp(data) if self.rtcp else is_rtp(data)):
            self.dropped += 1
            return
        srtp = member.media.srtp
        if srtp is not None:
            plain = srtp.unprotect_rtcp_or_drop(data) if self.rtcp else srtp.unprotect_or_drop(data)
            if plain is None:
                self.dropped += 1
                return
            data = plain
        now = member.loop.time()
        if addr != self.latch.source and not self.latch.consider(addr, now, self.received):
            self.ignored += 1
            return
        self.received += 1
        if not self.rtcp:
            member.receive(data, now)


def _drop(data: bytes, addr: Addr) -> None:
    """Stand-in ``sendto`` while there is no transport."""


class _Member:
    def __init__(
        self,
        conference: Conference,
        key: Hashable,
        media: LegMedia,
        port: int,
        relatch_after: float,
        rng: random.Random,
    ) -> None:
        self.conference = conference
        self.loop = conference.loop
        self.key = key
        self.media = media
        self.port = port
        self.codec = create_codec(media.codec)
        self.jitter = JitterBuffer(self.codec.decode)
        self.packetizer = Packetizer(media, rng)
        self.receiver = RtpReceiver()
        self.packets = 0  # RTP accepted from the member
        self.rtp = _Socket(self, False, relatch_after)
        self.rtcp = _Socket(self, True, relatch_after)
        self.remote: Addr | None = None
        self.open_sockets = 0
        self.released = False
        self.closed: asyncio.Future[None] = self.loop.create_future()

    def receive(self, data: bytes, now: float) -> None:
        try:
            packet = parse_rtp(data)
        except RtpError:
            self.rtp.dropped += 1
            return
        self.packets += 1
        self.receiver.receive(packet, now)
        if packet.payload_type == self.media.payload_type:
            self.jitter.put_packet(packet, now)

    def send(self, frame: Any, now: float) -> None:
        target = self.rtp.latch.target
        packets = self.packetizer.feed(frame, now)
        if target is None:
            return
        srtp = self.media.srtp
        for packet in packets:
            data = packet if srtp is None else srtp.protect_or_drop(packet)
            if data is not None:
                self.rtp.sendto(data, target)
                self.rtp.sent += 1

    def close(self) -> None:
        self.jitter.close()
        if self.open_sockets == 0:
            self.release()
        for sock in (self.rtp, self.rtcp):
            if sock.transport is not None and not sock.transport.is_closing():
                sock.transport.close()

    def socket_closed(self) -> None:
        self.open_sockets -= 1
        if self.open_sockets == 0:
            self.release()

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.conference.allocator.release(self.port)
            if not self.closed.done():
                self.closed.set_result(None)


class Conference:
    """Members by any hashable id; see the module docstring."""

    def __init__(
        self,
        address: str,
        allocator: PortAllocator,
        *,
        relatch_after: float,
        dscp: int | None,
        rng: random.Random | None,
    ) -> None:
        ip = ipaddress.ip_address(address)
        self.address = ip.compressed
        self.family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        self.allocator = allocator
        self.loop = asyncio.get_running_loop()
        self.mixer = Mixer()
        self.relatch_after = relatch_after
        self.dscp = dscp
        self._rng = rng or random.SystemRandom()
        self._members: dict[Hashable, _Member] = {}
        self._leaving: list[_Member] = []
        self._timer: asyncio.TimerHandle | None = None
        self._next_tick = 0.0
        self._closing = False
        self.ticks = 0

    @classmethod
    async def open(
        cls,
        address: str,
        allocator: PortAllocator,
        *,
        relatch_after: float = DEFAULT_RELATCH_AFTER,
        dscp: int | None = DSCP_EF,
        rng: random.Random | None = None,
    ) -> Conference:
        """A conference with no members yet; its 20 ms clock starts with the first."""
        return cls(address, allocator, relatch_after=relatch_after, dscp=dscp, rng=rng)

    # -- members

    async def add(
        self,
        member: Hashable,
        codec: str | int | CodecInfo = "PCMA",
        *,
        payload_type: int | None = None,
        ptime: int = 20,
        srtp: SrtpSession | None = None,
        role: Role = Role.PARTICIPANT,
        target: Hashable | None = None,
    ) -> int:
        """Bind ``member``'s port pair and join it to the mix; the RTP port to advertise."""
        if self._closing:
            raise ConferenceError("the conference is closed")
        if member in self._members:
            raise ConferenceError(f"{member!r} is already in the conference")
        media = LegMedia.make(codec, payload_type=payload_type, ptime=ptime, srtp=srtp)
        port, rtp_sock, rtcp_sock = bind_pair(self.allocator, self.family, self.address, self.dscp)
        state = _Member(self, member, media, port, self.relatch_after, self._rng)
        pending = [(state.rtp, rtp_sock), (state.rtcp, rtcp_sock)]
        try:
            while pending:
                endpoint, sock = pending[0]
                await self.loop.create_datagram_endpoint(_constant(endpoint), sock=sock)
                pending.pop(0)
                state.open_sockets += 1
            if member in self._members or self._closing:
                raise ConferenceError(f"{member!r} joined meanwhile, or the conference closed")
            self.mixer.add(member, role=role, target=target)  # joins the mix last
        except BaseException as exc:
            for _, sock in pending:
                sock.close()
            state.close()
            if isinstance(exc, ValueError) and not isinstance(exc, ConferenceError):
                raise ConferenceError(str(exc)) from None
            raise
        self._members[member] = state
        if self._timer is None:
            self._next_tick = self.loop.time()
            self._timer = self.loop.call_at(self._next_tick, self._on_tick)
        return port

    def port(self, member: Hashable) -> int:
        return self._get(member).port

    def set_remote(self, member: Hashable, host: str | None, port: int) -> None:
        """Where ``member``'s SDP says it receives RTP (RTCP: port + 1); None or port 0:
        nowhere until it sends and is latched."""
        state = self._get(member)
        remote: Addr | None = None
        rtcp: Addr | None = None
        if host is not None and port:
            ip = ipaddress.ip_address(host)
            if (ip.version == 6) != (self.family == socket.AF_INET6):
                raise ValueError(f"remote {host} is not in the conference's address family")
            if not 0 < port < 65_535:
                raise ValueError(f"bad remote port {port}")
            if not ip.is_unspecified:
                remote, rtcp = (ip.compressed, port), (ip.compressed, port + 1)
        if remote == state.remote:
            return
        state.remote = remote
        state.rtp.latch.reset(remote)
        state.rtcp.latch.reset(rtcp)

    def source(self, member: Hashable) -> Addr | None:
        return self._get(member).rtp.latch.source

    def remove(self, member: Hashable) -> None:
        """``member`` leaves: out of the mix, its sockets closed, its port released."""
        state = self._members.pop(member, None)
        if state is None:
            raise ConferenceError(f"{member!r} is not in the conference")
        self.mixer.remove(member)
        state.close()
        self._leaving.append(state)

    @property
    def members(self) -> list[Hashable]:
        return list(self._members)

    def _get(self, member: Hashable) -> _Member:
        try:
            return self._members[member]
        except KeyError:
            raise ConferenceError(f"{member!r} is not in the conference") from None

    # -- the clock

    def _on_tick(self) -> None:
        self._timer = None
        if self._closing or not self._members:
            return
        now = self.loop.time()
        self.ticks += 1
        inputs = {key: state.jitter.get(now) for key, state in self._members.items()}
        for key, frame in self.mixer.mix(inputs).items():
            self._members[key].send(frame, now)
        self._next_tick += TICK
        if self._next_tick < now - MAX_TICK_LAG:
            self._next_tick = now + TICK
        self._timer = self.loop.call_at(self._next_tick, self._on_tick)

    # -- figures

    def quality(self, member: Hashable) -> dict[str, Any]:
        """What the box received from ``member`` and sent to it, for the CDR."""
        state = self._get(member)
        receiver = state.receiver
        lost = max(0, receiver.total_lost)
        loss = 100.0 * lost / (state.packets + lost) if state.packets + lost else 0.0
        jitter_ms = 1000.0 * receiver.jitter / AUDIO_RATE
        mos = r = None
        if state.packets:
            q = estimate(state.media.codec.name, loss, state.media.ptime + 2 * jitter_ms)
            r, mos = q.r, q.mos
        return {
            "codec": state.media.codec.name,
            "ptime": state.media.ptime,
            "srtp": state.media.srtp is not None,
            "role": str(self.mixer.member(member).role),
            "packets_received": state.packets,
            "packets_lost": lost,
            "loss_percent": round(loss, 3),
            "jitter_ms": round(jitter_ms, 2),
            "packets_sent": state.rtp.sent,
            "concealed_frames": state.jitter.stats.concealed,
            "r_factor": r,
            "mos": mos,
        }

    # -- lifetime

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for member in list(self._members):
            self.remove(member)

    async def wait_closed(self) -> None:
        """Until every member's sockets are closed and their ports are back."""
        for state in self._leaving:
            await asyncio.shield(state.closed)
        self._leaving = [s for s in self._leaving if not s.closed.done()]

    async def __aenter__(self) -> Conference:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
        await self.wait_closed()


def _constant(endpoint: _Socket) -> Callable[[], _Socket]:
    return lambda: endpoint
