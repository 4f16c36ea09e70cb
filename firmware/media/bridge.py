"""The media bridge of a call: a relay that can also transcode, convert DTMF, do SRTP and play.

`MediaBridge` has the signalling-side interface of `firmware.media.relay.RelaySession`
(``open``, ``port``, ``ports``, ``set_remote``, ``remote``, ``source``, ``stats``,
``close``, ``wait_closed``), so the B2BUA can use either; on top of it each leg gets
media settings from its SDP with `MediaBridge.configure`. A leg not configured is
treated as "whatever the other leg sends", so an unconfigured bridge is a relay.

The path of an RTP packet from leg X to leg Y (the sans-I/O `BridgeCore`):

1. SRTP-unprotected if X is SRTP (a packet that fails authentication is dropped and
   can never latch: a stranger cannot steal an SRTP leg).
2. Latched like the relay (`firmware.media.latch`), counted in X's receive statistics
   (`RtpReceiver`: loss, RFC 3550 jitter).
3. Audio: passed through untouched when X and Y agree on codec, payload type and
   ptime; else decoded, transcoded and re-encoded by `Transcoder` (ptime mediation).
   RFC 4733 events: the payload type is rewritten between the legs' event types;
   when Y has no telephone-event they are played as in-band DTMF toward Y, and when
   X has none, DTMF tones in X's audio are detected and sent to Y as events.
4. Through Y's `_Outbound`: one continuous stream toward Y (one SSRC, sequence numbers
   without jumps, timestamps following the wall clock) whatever produced the packets
   (X's phone, the transcoder, a player, a DTMF generator). As long as only X's phone
   feeds it, packets leave byte-identical.
5. SRTP-protected if Y is SRTP.

`MediaBridge.play` replaces what a leg hears with a player source (music on hold, an
announcement) until `MediaBridge.stop_play`; synthesized audio is paced by a 20 ms
timer on the loop that runs only while something plays.

RTCP is forwarded (SRTCP converted) while the two legs pass packets through; when they
transcode it is terminated (dropped and counted), since the far end's reports would
describe a stream it never sees. ``stats()`` returns the relay's counters plus a
per-leg ``quality`` dict for the CDR (packets, loss, jitter, E-model R and MOS).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
import struct
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from firmware.media.codecs import (
    AUDIO_RATE,
    Codec,
    CodecError,
    CodecInfo,
    Int16Array,
    UnknownCodecError,
    by_static_payload_type,
    codec_info,
    create_codec,
)
from firmware.media.emodel import estimate
from firmware.media.latch import Addr, Latch, is_rtcp, is_rtp
from firmware.media.player import SILENCE, PlayerError, PlayerHub, Source
from firmware.media.ports import PortAllocator
from firmware.media.relay import (
    DEFAULT_RELATCH_AFTER,
    DSCP_EF,
    FlowStats,
    Leg,
    RelaySession,
    RelayStats,
    bind_pair,
    remote_addresses,
)
from firmware.media.rtp import RtpError, parse_rtp
from firmware.media.srtp import SrtpSession
from firmware.media.stream import RtpReceiver, RtpSender
from firmware.media.telephone_event import (
    DigitStart,
    EventReceiver,
    EventSender,
    EventsToInband,
    InbandToEvents,
    TelephoneEvent,
    TelephoneEventError,
)
from firmware.media.transcode import TranscodeError, Transcoder

__all__ = [
    "TICK",
    "BridgeCore",
    "BridgeError",
    "BridgeStats",
    "LegMedia",
    "MediaBridge",
    "Packetizer",
    "bind_pair",
]

log = logging.getLogger(__name__)

#: Period of synthesized audio (players, DTMF tones): one 8 kHz frame of 160 samples.
TICK = 0.02
FRAME = 160
#: Tick timer this far behind the wall clock restarts its schedule instead of bursting.
MAX_TICK_LAG = 0.1

_HEADER = struct.Struct("!BBHII")
_U32 = 0xFFFFFFFF
Frame = Int16Array


class BridgeError(ValueError):
    """A media setting the bridge cannot use, or play() on a leg without a codec."""


@dataclass(frozen=True, slots=True)
class LegMedia:
    """What one leg's SDP negotiated: codec, its payload type, ptime, events, SRTP."""

    codec: CodecInfo
    payload_type: int
    ptime: int = 20
    event_pt: int | None = None
    srtp: SrtpSession | None = field(default=None, compare=False)

    @classmethod
    def make(
        cls,
        codec: str | int | CodecInfo,
        *,
        payload_type: int | None = None,
        ptime: int = 20,
        telephone_event_pt: int | None = None,
        srtp: SrtpSession | None = None,
    ) -> LegMedia:
        """From SDP terms: ``codec`` is an rtpmap name ("PCMA"), a static payload type
        (8) or a `CodecInfo`; ``payload_type`` is the SDP's number for dynamic ones."""
        if isinstance(codec, int):
            found = by_static_payload_type(codec)
            if found is None:
                raise BridgeError(f"payload type {codec} is not a static codec: give its name")
            payload_type = codec if payload_type is None else payload_type
            info = found
        elif isinstance(codec, str):
            try:
                info = codec_info(codec)
            except UnknownCodecError as exc:
                raise BridgeError(str(exc)) from None
        else:
            info = codec
        if not info.is_audio:
            raise BridgeError(f"{info.name} is not an audio codec")
        pt = info.static_pt if payload_type is None else payload_type
        if pt is None:
            raise BridgeError(f"{info.name} has a dynamic payload type: give the SDP's")
        for value, what in ((pt, "payload type"), (telephone_event_pt, "telephone-event PT")):
            if value is not None and not 0 <= value <= 127:
                raise BridgeError(f"{what} {value} out of range 0-127")
        if telephone_event_pt is not None and telephone_event_pt == pt:
            raise BridgeError("telephone-event and audio cannot share a payload type")
        if ptime not in (10, 20, 30, 40, 50, 60):
            raise BridgeError(f"ptime {ptime} ms: the bridge frames 10-60 ms in 10 ms steps")
        return cls(info, pt, ptime, telephone_event_pt, srtp)


def _rewrite_pt(data: bytes, payload_type: int) -> bytes:
    return data[:1] + bytes(((data[1] & 0x80) | payload_type,)) + data[2:]


class _Outbound:
    """One continuous RTP stream toward a leg, whatever produced its packets.

    The first source's SSRC and numbering are kept as they are (so a plain relayed call
    is untouched). When another source takes over (a player, the DTMF generator, the
    far phone after a re-INVITE), its packets are mapped by fixed offsets onto the
    stream: sequence numbers carry on from the last one sent, the timestamp from the
    last one plus the wall time since it appeared, with the marker bit on the first.
    """

    __slots__ = (
        "_anchor_time",
        "_anchor_ts",
        "_identity",
        "_last_seq",
        "_marker",
        "_seq_offset",
        "_source",
        "_ts_offset",
        "bytes",
        "packets",
        "ssrc",
        "switches",
    )

    def __init__(self) -> None:
        self.ssrc: int | None = None
        self._source: int | None = None
        self._identity = True
        self._seq_offset = 0
        self._ts_offset = 0
        self._last_seq = 0
        self._anchor_ts = 0  # newest timestamp sent, and when it was first sent
        self._anchor_time = 0.0
        self._marker = False
        self.packets = 0
        self.bytes = 0
        self.switches = 0

    def send(self, data: bytes, now: float) -> bytes:
        first, second, seq, ts, ssrc = _HEADER.unpack_from(data)
        if ssrc != self._source:
            self._switch(ssrc, seq, ts, now)
        if self._identity:
            out = data
        else:
            seq = (seq + self._seq_offset) & 0xFFFF
            ts = (ts + self._ts_offset) & _U32
            if self._marker:
                second |= 0x80
                self._marker = False
            out = _HEADER.pack(first, second, seq, ts, self.ssrc) + data[12:]
        if (seq - self._last_seq) & 0xFFFF < 0x8000:
            self._last_seq = seq
        if ts != self._anchor_ts and (ts - self._anchor_ts) & _U32 < 0x80000000:
            self._anchor_ts = ts
            self._anchor_time = now
        self.packets += 1
        self.bytes += len(out)
        return out

    def _switch(self, ssrc: int, seq: int, ts: int, now: float) -> None:
        self._source = ssrc
        if self.ssrc is None:
            self.ssrc = ssrc
            self._last_seq = (seq - 1) & 0xFFFF
            self._anchor_ts, self._anchor_time = ts, now
            return
        self.switches += 1
        elapsed = max(FRAME, round((now - self._anchor_time) * AUDIO_RATE))
        self._seq_offset = (self._last_seq + 1 - seq) & 0xFFFF
        self._ts_offset = (self._anchor_ts + elapsed - ts) & _U32
        self._identity = ssrc == self.ssrc and not self._seq_offset and not self._ts_offset
        self._marker = True


class _Route:
    """The processing of one direction (packets from leg ``src`` to leg ``dst``)."""

    def __init__(self, src: LegMedia | None, dst: LegMedia | None, rng: random.Random) -> None:
        self.audio_in = src.payload_type if src is not None else None
        self.event_in = src.event_pt if src is not None else None
        self.event_out = dst.event_pt if dst is not None else None
        self.transcoder: Transcoder | None = None
        self.passthrough = (
            src is None
            or dst is None
            or (
                src.codec == dst.codec
                and src.payload_type == dst.payload_type
                and src.ptime == dst.ptime
            )
        )
        if src is not None and dst is not None and not self.passthrough:
            try:
                self.transcoder = Transcoder(
                    src.codec,
                    dst.codec,
                    source_pt=src.payload_type,
                    destination_pt=dst.payload_type,
                    source_ptime=src.ptime,
                    destination_ptime=dst.ptime,
                    source_event_pt=src.event_pt,
                    destination_event_pt=dst.event_pt,
                    rng=rng,
                )
            except TranscodeError as exc:
                raise BridgeError(str(exc)) from None
        # RFC 4733 -> in-band: events from src are played as tones toward dst.
        self.events: EventReceiver | None = None
        self.tones: EventsToInband | None = None
        if (
            src is not None
            and dst is not None
            and src.event_pt is not None
            and dst.event_pt is None
        ):
            self.events = EventReceiver(src.event_pt)
            self.tones = EventsToInband()
        # In-band -> RFC 4733: tones in src's audio become events toward dst.
        self.detector: InbandToEvents | None = None
        self.decoder: Codec | None = None
        if (
            src is not None
            and dst is not None
            and src.event_pt is None
            and dst.event_pt is not None
        ):
            sender = RtpSender(dst.event_pt, rng=rng)
            self.detector = InbandToEvents(EventSender(sender, dst.event_pt))
            self.decoder = create_codec(src.codec)
        self.digits: list[str] = []  # digits carried across this direction (either way)

    def process(self, data: bytes, pt: int, now: float) -> list[bytes]:
        """Plain RTP from the source leg -> plain RTP packets for the destination leg."""
        if pt == self.event_in:
            if self.events is not None and self.tones is not None:
                for report in self.events.receive(parse_rtp(data), now):
                    if isinstance(report, DigitStart) and report.digit is not None:
                        self.tones.play(report.digit)
                        self.digits.append(report.digit)
                return []
            if self.transcoder is not None:
                return self.transcoder.process(data)
            if self.event_out is not None and self.event_out != pt:
                return [_rewrite_pt(data, self.event_out)]
            return [data]
        if self.tones is not None and self.tones.active:
            return []  # a DTMF tone owns the stream toward dst (see BridgeCore.tick)
        if self.detector is not None and pt == self.audio_in:
            assert self.decoder is not None
            was_active = self.detector.active
            events = self.detector.feed(self.decoder.decode(parse_rtp(data).payload), now)
            if self.detector.active and not was_active:
                self.digits.append(_digit_of(events))
            if events or self.detector.active:
                return events  # RFC 4733 §2.5.1.4: the events replace the tone's audio
        if self.transcoder is not None:
            return self.transcoder.process(data)
        return [data]

    @property
    def ticking(self) -> bool:
        return self.tones is not None and self.tones.active

    def close(self) -> None:
        if self.tones is not None:
            self.tones.close()
        if self.detector is not None:
            self.detector.close()


def _digit_of(events: list[bytes]) -> str:
    """The digit of the event a detector just started (its last packet)."""
    for data in reversed(events):
        code = TelephoneEvent.parse(parse_rtp(data).payload).event
        return "0123456789*#ABCD"[code] if code < 16 else "?"
    return "?"


class Packetizer:
    """Synthesized audio toward one leg: 8 kHz frames in, RTP of the leg's codec and
    ptime out (its own SSRC and numbering; `_Outbound` maps it onto the leg's stream)."""

    def __init__(self, media: LegMedia, rng: random.Random) -> None:
        self.media = media
        self.codec = create_codec(media.codec)
        self.sender = RtpSender(media.payload_type, rng=rng)
        self.samples = AUDIO_RATE * media.ptime // 1000
        self._pending: list[Frame] = []
        self._buffered = 0

    def reset(self) -> None:
        self._pending, self._buffered = [], 0

    def feed(self, frame: Frame, now: float) -> list[bytes]:
        self._pending.append(frame)
        self._buffered += len(frame)
        out: list[bytes] = []
        while self._buffered >= self.samples:
            audio = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
            chunk, rest = audio[: self.samples], audio[self.samples :]
            out.append(self.sender.send(self.codec.encode(chunk), self.samples, now))
            self._pending = [rest] if len(rest) else []
            self._buffered = len(rest)
        return out


class _Play:
    """What plays toward a leg: a `Source` read here, or a `PlayerHub` source (its
    owner ticks the hub every 20 ms; this reads the hub's current frame)."""

    def __init__(self, source: Source | PlayerHub, name: str | None, key: Hashable) -> None:
        self.source = source
        self.key = key
        if isinstance(source, PlayerHub):
            if name is None:
                raise BridgeError("playing from a PlayerHub needs the source name")
            try:
                source.join(key, name)
            except PlayerError as exc:
                raise BridgeError(str(exc)) from None
        elif name is not None:
            raise BridgeError("a source name goes with a PlayerHub only")

    def read(self) -> Frame | None:
        if isinstance(self.source, PlayerHub):
            return self.source.frame(self.key)
        return self.source.read()

    def close(self) -> None:
        if isinstance(self.source, PlayerHub):
            self.source.leave(self.key)


@dataclass(slots=True)
class _LegCounters:
    packets: int = 0  # RTP accepted from the leg (RtpReceiver leaves out its probation)
    rejected: int = 0  # SRTP failures, unparsable payloads
    rtcp_terminated: int = 0
    max_jitter: float = 0.0  # timestamp units
    last_pt: int | None = None


class BridgeCore:
    """The sans-I/O media path between legs A and B (see the module docstring).

    ``unprotect`` then ``route_rtp`` per received RTP packet (the adapter latches in
    between), ``route_rtcp`` per RTCP packet, ``tick`` every `TICK` while ``ticking``.
    Each returns the packets to send on the other leg (or per leg, for ``tick``).
    """

    def __init__(self, *, rng: random.Random | None = None, key: Hashable = None) -> None:
        self._rng = rng or random.SystemRandom()
        self._key = key if key is not None else id(self)
        self._media: dict[Leg, LegMedia | None] = {Leg.A: None, Leg.B: None}
        self._out = {Leg.A: _Outbound(), Leg.B: _Outbound()}
        self._receivers = {Leg.A: RtpReceiver(), Leg.B: RtpReceiver()}
        self._counters = {Leg.A: _LegCounters(), Leg.B: _LegCounters()}
        self._plays: dict[Leg, _Play] = {}
        self._injectors: dict[Leg, Packetizer] = {}
        self._routes: dict[Leg, _Route] = {}
        self._digits: dict[Leg, list[str]] = {Leg.A: [], Leg.B: []}
        self._rebuild()

    # -- configuration

    def configure(self, side: Leg, media: LegMedia | None) -> None:
        """Set (or clear, None) a leg's media; both directions are rebuilt."""
        side = Leg(side)
        if self._media[side] == media and (media is None or media.srtp is self._srtp(side)):
            return
        self._media[side] = media
        self._injectors.pop(side, None)
        if media is None and side in self._plays:
            self.stop_play(side)
        self._rebuild()

    def media(self, side: Leg) -> LegMedia | None:
        return self._media[Leg(side)]

    def _srtp(self, side: Leg) -> SrtpSession | None:
        media = self._media[side]
        return media.srtp if media is not None else None

    def _rebuild(self) -> None:
        for route in self._routes.values():
            route.close()
        for side in (Leg.A, Leg.B):
            if side in self._routes:
                self._digits[side.other] += self._routes[side].digits
        a, b = self._media[Leg.A], self._media[Leg.B]
        self._routes = {Leg.A: _Route(a, b, self._rng), Leg.B: _Route(b, a, self._rng)}

    def passthrough(self, source: Leg) -> bool:
        """Whether audio from ``source`` leaves for the other leg as it came."""
        return self._routes[Leg(source)].passthrough

    # -- per packet

    def unprotect(self, side: Leg, data: bytes) -> bytes | None:
        """Plain RTP of a packet from ``side``; None when SRTP rejects it."""
        media = self._media[side]
        if media is None or media.srtp is None:
            return data
        plain = media.srtp.unprotect_or_drop(data)
        if plain is None:
            self._counters[side].rejected += 1
        return plain

    def route_rtp(self, side: Leg, data: bytes, now: float) -> list[bytes]:
        """An accepted plain RTP packet from ``side`` -> packets to send to the other."""
        _, second, seq, ts, ssrc = _HEADER.unpack_from(data)
        pt = second & 0x7F
        route = self._routes[side]
        counters = self._counters[side]
        counters.packets += 1
        try:
            if pt == route.event_in:
                # An event's media time is its start plus its duration so far.
                ts += TelephoneEvent.parse(parse_rtp(data).payload).duration
            else:
                counters.last_pt = pt
            receiver = self._receivers[side]
            receiver.receive_header(seq, ts & _U32, ssrc, now)
            if receiver.jitter > counters.max_jitter:
                counters.max_jitter = receiver.jitter
            other = side.other
            if other in self._plays:
                return []  # what plays replaces this leg's audio
            packets = route.process(data, pt, now)
        except (RtpError, CodecError, TelephoneEventError) as exc:
            counters.rejected += 1
            log.debug("bridge dropped a packet", extra={"leg": str(side), "reason": str(exc)})
            return []
        return self._deliver(other, packets, now) if packets else packets

    def route_rtcp(self, side: Leg, data: bytes) -> bytes | None:
        """An RTCP packet from ``side`` -> what to send to the other leg, or None."""
        media = self._media[side]
        if media is not None and media.srtp is not None:
            plain = media.srtp.unprotect_rtcp_or_drop(data)
            if plain is None:
                self._counters[side].rejected += 1
                return None
            data = plain
        if not (self._routes[side].passthrough and self._routes[side.other].passthrough):
            self._counters[side].rtcp_terminated += 1
            return None
        srtp = self._srtp(side.other)
        return data if srtp is None else srtp.protect_rtcp_or_drop(data)

    def _deliver(self, to: Leg, packets: list[bytes], now: float) -> list[bytes]:
        outbound = self._out[to]
        srtp = self._srtp(to)
        out: list[bytes] = []
        for packet in packets:
            data: bytes | None = outbound.send(packet, now)
            if srtp is not None:
                data = srtp.protect_or_drop(cast(bytes, data))
            if data is not None:
                out.append(data)
        return out

    # -- synthesized audio

    def play(self, side: Leg, source: Source | PlayerHub, *, name: str | None = None) -> None:
        """Replace what ``side`` hears with ``source`` until `stop_play` (or its end)."""
        side = Leg(side)
        if self._media[side] is None:
            raise BridgeError(f"leg {side}: configure its codec before playing to it")
        play = _Play(source, name, (self._key, side))
        self.stop_play(side)
        self._plays[side] = play

    def stop_play(self, side: Leg) -> None:
        """Back to the other leg's audio (a no-op when nothing plays)."""
        play = self._plays.pop(Leg(side), None)
        if play is not None:
            play.close()

    def playing(self, side: Leg) -> bool:
        return Leg(side) in self._plays

    @property
    def ticking(self) -> bool:
        """Whether something synthesized is due every `TICK`."""
        return bool(self._plays) or self._routes[Leg.A].ticking or self._routes[Leg.B].ticking

    def tick(self, now: float) -> dict[Leg, list[bytes]]:
        """One 20 ms frame of whatever plays (or DTMF tone) toward each leg."""
        out: dict[Leg, list[bytes]] = {}
        for to in (Leg.A, Leg.B):
            route = self._routes[to.other]
            play = self._plays.get(to)
            frame: Frame | None = None
            if play is not None:
                frame = play.read()
                if frame is None:
                    self.stop_play(to)  # the source ended: back to the other leg
            elif route.tones is not None and route.tones.active:
                frame = route.tones.frame(SILENCE)
            media = self._media[to]
            if frame is None or media is None:
                if to in self._injectors:
                    self._injectors[to].reset()  # a part-frame must not open the next play
                continue
            injector = self._injectors.get(to)
            if injector is None:
                injector = self._injectors[to] = Packetizer(media, self._rng)
            packets = injector.feed(frame, now)
            if packets:
                out[to] = self._deliver(to, packets, now)
        return out

    # -- figures

    def digits(self, side: Leg) -> str:
        """DTMF digits converted toward ``side`` (in-band <-> RFC 4733), in order."""
        side = Leg(side)
        return "".join(self._digits[side] + self._routes[side.other].digits)

    def quality(self, side: Leg, *, network_delay_ms: float = 0.0) -> dict[str, Any]:
        """What the box received from ``side`` and sent to it, for the CDR.

        The E-model's one-way delay is estimated as the packetization time plus a jitter
        buffer of twice the measured jitter plus ``network_delay_ms`` (not measured here).
        """
        side = Leg(side)
        media = self._media[side]
        receiver = self._receivers[side]
        counters = self._counters[side]
        codec = media.codec if media is not None else None
        if codec is None and counters.last_pt is not None:
            codec = by_static_payload_type(counters.last_pt)
        received = counters.packets
        lost = max(0, receiver.total_lost)
        loss = 100.0 * lost / (received + lost) if received + lost else 0.0
        jitter_ms = 1000.0 * receiver.jitter / AUDIO_RATE
        ptime = media.ptime if media is not None else 20
        r: float | None = None
        mos: float | None = None
        if codec is not None and received:
            delay = ptime + 2 * jitter_ms + network_delay_ms
            q = estimate(codec.name, min(loss, 100.0), delay)
            r, mos = q.r, q.mos
        srtp = media.srtp if media is not None else None
        return {
            "codec": codec.name if codec is not None else None,
            "payload_type": media.payload_type if media is not None else counters.last_pt,
            "ptime": ptime,
            "telephone_event_pt": media.event_pt if media is not None else None,
            "srtp": srtp is not None,
            "transcoded": not self._routes[side].passthrough,
            "packets_received": received,
            "packets_lost": lost,
            "loss_percent": round(loss, 3),
            "jitter_ms": round(jitter_ms, 2),
            "max_jitter_ms": round(1000.0 * counters.max_jitter / AUDIO_RATE, 2),
            "packets_sent": self._out[side].packets,
            "rejected": counters.rejected + (srtp.stats.rejected if srtp is not None else 0),
            "rtcp_terminated": counters.rtcp_terminated,
            "digits_to_leg": self.digits(side),
            "r_factor": r,
            "mos": mos,
        }

    def close(self) -> None:
        for side in list(self._plays):
            self.stop_play(side)
        for route in self._routes.values():
            route.close()


@dataclass(frozen=True, slots=True)
class BridgeStats(RelayStats):
    """`RelayStats` (what the B2BUA reads of any anchor) plus per-leg quality for the CDR:
    ``quality["a"]`` / ``quality["b"]`` (see `BridgeCore.quality`)."""

    quality: dict[str, dict[str, Any]] = field(default_factory=dict)


# ---------------------------------------------------------------------------- asyncio


class _Endpoint(asyncio.DatagramProtocol):
    """One socket of a leg (RTP, or RTCP on the port above)."""

    def __init__(self, bridge: MediaBridge, side: Leg, rtcp: bool, relatch_after: float) -> None:
        self.bridge = bridge
        self.side = side
        self.rtcp = rtcp
        self.latch = Latch(relatch_after)
        self.transport: asyncio.DatagramTransport | None = None
        self.sendto: Callable[[bytes, Addr], None] = _drop
        self.received = 0  # accepted from the latched source
        self.dropped = 0  # malformed or rejected by SRTP
        self.ignored = 0  # from another source than the latched one
        self.sent = 0  # sent out of this socket toward this leg
        self.sent_bytes = 0
        self.unroutable = 0  # for this leg, with nowhere to send yet
        self.send_errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop: duck type
        self.sendto = self.transport.sendto

    def connection_lost(self, exc: Exception | None) -> None:
        self.sendto = _drop
        self.bridge._socket_closed()

    def error_received(self, exc: Exception) -> None:
        self.send_errors += 1

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        bridge = self.bridge
        core = bridge.core
        side = self.side
        if not (is_rtcp(data) if self.rtcp else is_rtp(data)):
            self.dropped += 1
            return
        if not self.rtcp:
            plain = core.unprotect(side, data)
            if plain is None:
                self.dropped += 1
                return
            data = plain
        now = bridge.loop.time()
        if addr != self.latch.source and not self.latch.consider(addr, now, self.received):
            self.ignored += 1
            return
        self.received += 1
        if self.rtcp:
            out = core.route_rtcp(side, data)
            if out is not None:
                bridge._send(side.other, True, [out])
            return
        packets = core.route_rtp(side, data, now)
        if packets:
            bridge._send(side.other, False, packets)
        if bridge._timer is None and core.ticking:
            bridge._start_ticking()

    @property
    def port(self) -> int:
        if self.transport is None:
            return 0
        return int(self.transport.get_extra_info("sockname")[1])


def _drop(data: bytes, addr: Addr) -> None:
    """Stand-in ``sendto`` while there is no transport."""


class MediaBridge:
    """The media anchor of one call, with per-leg codecs, DTMF, SRTP and playback.

    Create with ``await MediaBridge.open(address, allocator)``; advertise ``port(leg)``
    in each leg's SDP; feed each leg's SDP remote to `set_remote` and its negotiated
    media to `configure`; end with `close` (+ `wait_closed`) or ``async with``.
    """

    def __init__(
        self,
        address: str,
        allocator: PortAllocator,
        family: int,
        ports: dict[Leg, int],
        *,
        relatch_after: float,
        rng: random.Random | None,
    ) -> None:
        self.address = address
        self.allocator = allocator
        self.family = family
        self.loop = asyncio.get_running_loop()
        self.core = BridgeCore(rng=rng)
        self._ports = ports
        self._rtp = {leg: _Endpoint(self, leg, False, relatch_after) for leg in (Leg.A, Leg.B)}
        self._rtcp = {leg: _Endpoint(self, leg, True, relatch_after) for leg in (Leg.A, Leg.B)}
        self._remote: dict[Leg, Addr | None] = {Leg.A: None, Leg.B: None}
        self._timer: asyncio.TimerHandle | None = None
        self._next_tick = 0.0
        self._open_sockets = 0
        self._released = False
        self._closing = False
        self._closed: asyncio.Future[None] | None = None

    @classmethod
    async def open(
        cls,
        address: str,
        allocator: PortAllocator,
        *,
        relatch_after: float = DEFAULT_RELATCH_AFTER,
        dscp: int | None = DSCP_EF,
        rng: random.Random | None = None,
    ) -> MediaBridge:
        """Bind both legs' socket pairs on ``address`` (an IP literal) and start.

        Raises `PortsExhaustedError` when the range is full, OSError when binding fails.
        """
        version = ipaddress.ip_address(address).version
        family = socket.AF_INET6 if version == 6 else socket.AF_INET
        bound: dict[Leg, tuple[int, socket.socket, socket.socket]] = {}
        try:
            for leg in (Leg.A, Leg.B):
                bound[leg] = bind_pair(allocator, family, address, dscp)
        except BaseException:
            for port, rtp, rtcp in bound.values():
                rtp.close()
                rtcp.close()
                allocator.release(port)
            raise
        bridge = cls(
            address,
            allocator,
            family,
            {leg: port for leg, (port, _, _) in bound.items()},
            relatch_after=relatch_after,
            rng=rng,
        )
        loop = bridge.loop
        pending = [
            (endpoint, sock)
            for leg, (_, rtp, rtcp) in bound.items()
            for endpoint, sock in ((bridge._rtp[leg], rtp), (bridge._rtcp[leg], rtcp))
        ]
        try:
            while pending:
                endpoint, sock = pending[0]
                await loop.create_datagram_endpoint(_constant(endpoint), sock=sock)
                pending.pop(0)
                bridge._open_sockets += 1
        except BaseException:
            for _, sock in pending:
                sock.close()
            bridge._closing = True
            bridge._close_sockets()
            raise
        return bridge

    @classmethod
    def adopt(cls, relay: RelaySession, *, rng: random.Random | None = None) -> MediaBridge:
        """Take over a pass-through relay's sockets, ports, latches and remotes, for a
        call that turns out to need the bridge (the callee answered a codec the caller
        did not offer): the SDP already sent stays true, no socket is rebound. The
        relay is closed by this; packets it counted stay in its own statistics."""
        handed = relay.hand_over()
        bridge = cls(
            relay.address,
            relay.allocator,
            relay.family,
            {h.leg: h.port for h in handed},
            relatch_after=DEFAULT_RELATCH_AFTER,
            rng=rng,
        )
        for h in handed:
            bridge._remote[h.leg] = h.remote
            for endpoint, transport, latch in (
                (bridge._rtp[h.leg], h.rtp, h.rtp_latch),
                (bridge._rtcp[h.leg], h.rtcp, h.rtcp_latch),
            ):
                endpoint.latch = latch
                transport.set_protocol(endpoint)
                endpoint.connection_made(transport)
                bridge._open_sockets += 1
        return bridge

    # ------------------------------------------------------------------ signalling side

    def port(self, leg: Leg) -> int:
        """The RTP port to advertise to ``leg`` (its RTCP port is this + 1)."""
        return self._ports[Leg(leg)]

    @property
    def ports(self) -> tuple[int, int]:
        return self._ports[Leg.A], self._ports[Leg.B]

    def set_remote(
        self, leg: Leg, host: str | None, port: int, rtcp_port: int | None = None
    ) -> None:
        """Where ``leg``'s phone said (in SDP) it receives media; same rules as
        `RelaySession.set_remote` (None/0.0.0.0/port 0: nowhere; a new address clears
        the latch; a name or the bridge's own port is a ValueError)."""
        leg = Leg(leg)
        rtp, rtcp = self._addresses(host, port, rtcp_port)
        if rtp == self._remote[leg]:
            return
        self._remote[leg] = rtp
        self._rtp[leg].latch.reset(rtp)
        self._rtcp[leg].latch.reset(rtcp)

    def _addresses(
        self, host: str | None, port: int, rtcp_port: int | None
    ) -> tuple[Addr | None, Addr | None]:
        return remote_addresses(host, port, rtcp_port, self.family, self.address, self._ports)

    def remote(self, leg: Leg) -> Addr | None:
        """The RTP address ``leg``'s SDP announced (None until set)."""
        return self._remote[Leg(leg)]

    def source(self, leg: Leg) -> Addr | None:
        """The address ``leg``'s RTP is latched to (None before its first packet)."""
        return self._rtp[Leg(leg)].latch.source

    # ------------------------------------------------------------------ media side

    def configure(
        self,
        leg: Leg,
        codec: str | int | CodecInfo | None,
        *,
        ptime: int = 20,
        telephone_event_pt: int | None = None,
        srtp: SrtpSession | None = None,
        payload_type: int | None = None,
    ) -> None:
        """The media ``leg`` negotiated (codec None: unknown, relay what comes).

        ``codec``: rtpmap name ("PCMA"), static payload type (8) or `CodecInfo`;
        ``payload_type`` for a dynamic codec; ``srtp``: the `SrtpSession` toward that
        leg's peer (from `SrtpSession.from_sdes`). `BridgeError` on what cannot work.
        """
        media = None
        if codec is not None:
            media = LegMedia.make(
                codec,
                payload_type=payload_type,
                ptime=ptime,
                telephone_event_pt=telephone_event_pt,
                srtp=srtp,
            )
        elif srtp is not None:
            raise BridgeError("SRTP needs the leg's codec too")
        self.core.configure(Leg(leg), media)

    def play(self, leg: Leg, source: Source | PlayerHub, *, name: str | None = None) -> None:
        """What ``leg`` hears is ``source`` (a player `Source`, or source ``name`` of a
        `PlayerHub` ticked by its owner) instead of the other leg, until `stop_play`."""
        self.core.play(Leg(leg), source, name=name)
        if self._timer is None and not self._closing:
            self._start_ticking()

    def stop_play(self, leg: Leg) -> None:
        self.core.stop_play(Leg(leg))

    def playing(self, leg: Leg) -> bool:
        return self.core.playing(Leg(leg))

    def _start_ticking(self) -> None:
        self._next_tick = self.loop.time()
        self._on_tick()

    def _on_tick(self) -> None:
        self._timer = None
        if self._closing:
            return
        now = self.loop.time()
        for leg, packets in self.core.tick(now).items():
            self._send(leg, False, packets)
        if not self.core.ticking:
            return
        self._next_tick += TICK
        if self._next_tick < now - MAX_TICK_LAG:
            self._next_tick = now + TICK
        self._timer = self.loop.call_at(self._next_tick, self._on_tick)

    def _send(self, to: Leg, rtcp: bool, packets: list[bytes]) -> None:
        endpoint = self._rtcp[to] if rtcp else self._rtp[to]
        dest = endpoint.latch.target
        if dest is None:
            endpoint.unroutable += len(packets)
            return
        for packet in packets:
            endpoint.sendto(packet, dest)
            endpoint.sent += 1
            endpoint.sent_bytes += len(packet)

    # ------------------------------------------------------------------ figures

    def quality(self, *, network_delay_ms: float = 0.0) -> dict[str, dict[str, Any]]:
        """Per-leg figures for the CDR: ``{"a": {...}, "b": {...}}``."""
        return {
            str(leg): self.core.quality(leg, network_delay_ms=network_delay_ms)
            for leg in (Leg.A, Leg.B)
        }

    def stats(self) -> BridgeStats:
        a, b = self._rtp[Leg.A], self._rtp[Leg.B]
        ca, cb = self._rtcp[Leg.A], self._rtcp[Leg.B]
        return BridgeStats(
            _flow(a, b),
            _flow(b, a),
            _flow(ca, cb),
            _flow(cb, ca),
            a.latch.source,
            b.latch.source,
            self.quality(),
        )

    # ------------------------------------------------------------------ lifetime

    @property
    def closed(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop; sockets close and ports return to the allocator shortly after."""
        if self._closing:
            return
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.core.close()
        self._close_sockets()

    def _close_sockets(self) -> None:
        endpoints = [*self._rtp.values(), *self._rtcp.values()]
        if self._open_sockets == 0:
            self._release()
        for endpoint in endpoints:
            if endpoint.transport is not None and not endpoint.transport.is_closing():
                endpoint.transport.close()

    def _socket_closed(self) -> None:
        self._open_sockets -= 1
        if self._open_sockets == 0:
            self._release()

    def _release(self) -> None:
        if not self._released:
            self._released = True
            for port in self._ports.values():
                self.allocator.release(port)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    async def wait_closed(self) -> None:
        """Until every socket is closed and the ports are back."""
        if self._closing and self._open_sockets == 0:
            return
        if self._closed is None:
            self._closed = self.loop.create_future()
        await asyncio.shield(self._closed)

    async def __aenter__(self) -> MediaBridge:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
        await self.wait_closed()


def _flow(inbound: _Endpoint, outbound: _Endpoint) -> FlowStats:
    """One direction: what ``inbound``'s leg sent us and ``outbound``'s leg got."""
    return FlowStats(
        outbound.sent,
        outbound.sent_bytes,
        inbound.dropped,
        inbound.ignored,
        outbound.unroutable,
        outbound.send_errors,
    )


def _constant(endpoint: _Endpoint) -> Callable[[], _Endpoint]:
    return lambda: endpoint
