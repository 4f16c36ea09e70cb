"""RTCP (RFC 3550 §6): SR, RR, SDES, BYE compound packets, report blocks, RTT, interval.

API::

    packets = parse_rtcp(data)             # [SenderReport | ReceiverReport | Sdes | Bye | RtcpOther]
    data = build_rtcp([sr, Sdes.cname(ssrc, "box@host")])   # a compound packet
    block = report_block(receiver, lsr=..., dlsr=...)  # from an RtpReceiver
    rtt = round_trip_time(block, arrival_ntp)          # seconds, from LSR/DLSR
    interval = rtcp_interval(rng)                      # seconds until the next report

`RtcpReporter` ties them together for one call leg: it builds the SR/RR+SDES the leg
sends (every `rtcp_interval`), and digests what arrives (remembers the peer's last SR for
LSR/DLSR, reads the peer's report about us: loss seen by the far end and RTT).

Parsing checks what RFC 3550 A.2 asks for (version 2, lengths that add up exactly,
padding only on the last packet) but not that an SR/RR comes first, so reduced-size
RTCP (RFC 5506) and feedback-only packets still parse. Unknown packet types (APP, XR,
feedback) are kept as `RtcpOther`. Bad input raises `RtcpError`.

Times: ``ntp`` values are 64-bit NTP timestamps (`ntp_from_unix`); LSR/DLSR are the
middle 32 bits / units of 1/65536 s as on the wire.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from firmware.media.stream import RtpReceiver, RtpSender

__all__ = [
    "BYE",
    "RR",
    "SDES",
    "SR",
    "Bye",
    "ReceiverReport",
    "ReportBlock",
    "RtcpError",
    "RtcpOther",
    "RtcpPacket",
    "RtcpReporter",
    "Sdes",
    "SdesChunk",
    "SenderReport",
    "build_rtcp",
    "ntp_from_unix",
    "ntp_middle",
    "parse_rtcp",
    "report_block",
    "round_trip_time",
    "rtcp_interval",
    "unix_from_ntp",
]

SR, RR, SDES, BYE, APP = 200, 201, 202, 203, 204
SDES_CNAME = 1
#: Seconds between 1900-01-01 (NTP epoch) and 1970-01-01 (Unix epoch).
NTP_UNIX_OFFSET = 2_208_988_800
#: RFC 3550 §6.2: minimum report interval, halved for the first report.
MIN_INTERVAL = 5.0
#: Compensation for the timer reconsideration algorithm (e - 3/2), RFC 3550 §6.3.1.
_COMPENSATION = math.e - 1.5

_HEADER = struct.Struct("!BBH")
_SENDER_INFO = struct.Struct("!IQIII")
_BLOCK = struct.Struct("!IIIIII")


class RtcpError(ValueError):
    """A datagram that is not well-formed RTCP; the message says why."""


def ntp_from_unix(unix: float) -> int:
    """64-bit NTP timestamp (32.32 fixed point since 1900) of a Unix time."""
    return round((unix + NTP_UNIX_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


def unix_from_ntp(ntp: int) -> float:
    return ntp / (1 << 32) - NTP_UNIX_OFFSET


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp: what LSR carries (units of 1/65536 s)."""
    return (ntp >> 16) & 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report block (RFC 3550 §6.4.1)."""

    ssrc: int
    fraction_lost: int  # 0-255 (lost/expected * 256 over the last interval)
    cumulative_lost: int  # signed 24-bit
    highest_seq: int  # extended highest sequence number received
    jitter: int  # interarrival jitter, timestamp units
    lsr: int = 0  # middle 32 bits of the NTP time of the last SR received from ssrc
    dlsr: int = 0  # delay since that SR, 1/65536 s

    def __post_init__(self) -> None:
        if not 0 <= self.fraction_lost <= 255:
            raise RtcpError("fraction lost out of range")
        if not -0x800000 <= self.cumulative_lost <= 0x7FFFFF:
            raise RtcpError("cumulative lost out of 24-bit range")
        for name in ("ssrc", "highest_seq", "jitter", "lsr", "dlsr"):
            if not 0 <= getattr(self, name) <= 0xFFFFFFFF:
                raise RtcpError(f"{name} out of 32-bit range")

    @property
    def fraction(self) -> float:
        """Fraction lost as a number 0..1."""
        return self.fraction_lost / 256

    def pack(self) -> bytes:
        return _BLOCK.pack(
            self.ssrc,
            (self.fraction_lost << 24) | (self.cumulative_lost & 0xFFFFFF),
            self.highest_seq,
            self.jitter,
            self.lsr,
            self.dlsr,
        )

    @classmethod
    def unpack(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, word, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, offset)
        lost = word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000
        return cls(ssrc, word >> 24, lost, highest, jitter, lsr, dlsr)


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp: int  # 64-bit NTP time of this report
    rtp_timestamp: int  # the RTP timestamp of the same instant
    packet_count: int
    octet_count: int
    blocks: tuple[ReportBlock, ...] = ()
    extension: bytes = b""  # profile-specific extension, kept as is


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    blocks: tuple[ReportBlock, ...] = ()
    extension: bytes = b""


@dataclass(frozen=True, slots=True)
class SdesChunk:
    ssrc: int
    items: tuple[tuple[int, bytes], ...]  # (item type, value): 1 CNAME, 2 NAME, ...

    @property
    def cname(self) -> str | None:
        for kind, value in self.items:
            if kind == SDES_CNAME:
                return value.decode("utf-8", "replace")
        return None


@dataclass(frozen=True, slots=True)
class Sdes:
    chunks: tuple[SdesChunk, ...]

    @classmethod
    def cname(cls, ssrc: int, cname: str) -> Sdes:
        return cls((SdesChunk(ssrc, ((SDES_CNAME, cname.encode()),)),))


@dataclass(frozen=True, slots=True)
class Bye:
    ssrcs: tuple[int, ...]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RtcpOther:
    """A packet type this module does not interpret (APP, RTPFB, PSFB, XR, ...)."""

    packet_type: int
    count: int  # the 5-bit field after the padding bit
    body: bytes = field(repr=False)  # everything after the 4-byte header


RtcpPacket = SenderReport | ReceiverReport | Sdes | Bye | RtcpOther


# --- serialize ---


def _packet(packet_type: int, count: int, body: bytes) -> bytes:
    if len(body) % 4:
        raise RtcpError("RTCP body must be whole 32-bit words")
    return _HEADER.pack(0x80 | count, packet_type, len(body) // 4) + body


def _blocks(blocks: Sequence[ReportBlock]) -> bytes:
    if len(blocks) > 31:
        raise RtcpError("at most 31 report blocks per packet")
    return b"".join(b.pack() for b in blocks)


def _pack_one(packet: RtcpPacket) -> bytes:
    if isinstance(packet, SenderReport):
        info = _SENDER_INFO.pack(
            packet.ssrc,
            packet.ntp,
            packet.rtp_timestamp & 0xFFFFFFFF,
            packet.packet_count & 0xFFFFFFFF,
            packet.octet_count & 0xFFFFFFFF,
        )
        body = info + _blocks(packet.blocks) + packet.extension
        return _packet(SR, len(packet.blocks), body)
    if isinstance(packet, ReceiverReport):
        body = struct.pack("!I", packet.ssrc) + _blocks(packet.blocks) + packet.extension
        return _packet(RR, len(packet.blocks), body)
    if isinstance(packet, Sdes):
        if len(packet.chunks) > 31:
            raise RtcpError("at most 31 SDES chunks")
        parts = []
        for chunk in packet.chunks:
            items = bytearray(struct.pack("!I", chunk.ssrc))
            for kind, value in chunk.items:
                if not 1 <= kind <= 255 or len(value) > 255:
                    raise RtcpError("SDES item type 1-255, value at most 255 bytes")
                items += bytes([kind, len(value)]) + value
            items += b"\x00" * (4 - len(items) % 4)  # end item plus padding to a word
            parts.append(bytes(items))
        return _packet(SDES, len(packet.chunks), b"".join(parts))
    if isinstance(packet, Bye):
        if len(packet.ssrcs) > 31:
            raise RtcpError("at most 31 SSRCs in a BYE")
        body = b"".join(struct.pack("!I", s) for s in packet.ssrcs)
        if packet.reason:
            reason = packet.reason.encode()
            if len(reason) > 255:
                raise RtcpError("BYE reason at most 255 bytes")
            text = bytes([len(reason)]) + reason
            body += text + b"\x00" * (-len(text) % 4)
        return _packet(BYE, len(packet.ssrcs), body)
    if not 0 <= packet.count <= 31:
        raise RtcpError("count field is 5 bits")
    return _packet(packet.packet_type, packet.count, packet.body)


def build_rtcp(packets: Iterable[RtcpPacket]) -> bytes:
    """A compound RTCP packet. RFC 3550 wants SR or RR first, and SDES CNAME in it."""
    data = b"".join(_pack_one(p) for p in packets)
    if not data:
        raise RtcpError("an RTCP compound packet needs at least one packet")
    return data


# --- parse ---


def parse_rtcp(data: bytes | bytearray | memoryview) -> list[RtcpPacket]:
    """Parse a compound RTCP packet into its parts."""
    data = bytes(data)
    if len(data) < 4:
        raise RtcpError(f"{len(data)} bytes is shorter than an RTCP header")
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < len(data):
        if offset + 4 > len(data):
            raise RtcpError("trailing bytes after the last RTCP packet")
        first, packet_type, words = _HEADER.unpack_from(data, offset)
        if first >> 6 != 2:
            raise RtcpError(f"RTCP version {first >> 6}, expected 2")
        end = offset + 4 + 4 * words
        if end > len(data):
            raise RtcpError(f"RTCP packet type {packet_type} overruns the datagram")
        body = data[offset + 4 : end]
        if first & 0x20:
            if end != len(data):
                raise RtcpError("padding is only allowed on the last packet")
            pad = body[-1] if body else 0
            if pad == 0 or pad > len(body):
                raise RtcpError(f"bad RTCP padding length {pad}")
            body = body[:-pad]
        packets.append(_parse_one(packet_type, first & 0x1F, body))
        offset = end
    return packets


def _parse_blocks(body: bytes, offset: int, count: int) -> tuple[ReportBlock, ...]:
    if offset + 24 * count > len(body):
        raise RtcpError(f"{count} report blocks do not fit")
    return tuple(ReportBlock.unpack(body, offset + 24 * i) for i in range(count))


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type == SR:
        if len(body) < 24:
            raise RtcpError("sender report shorter than its sender info")
        ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
        blocks = _parse_blocks(body, 24, count)
        return SenderReport(ssrc, ntp, rtp_ts, packets, octets, blocks, body[24 + 24 * count :])
    if packet_type == RR:
        if len(body) < 4:
            raise RtcpError("receiver report without SSRC")
        (ssrc,) = struct.unpack_from("!I", body)
        return ReceiverReport(ssrc, _parse_blocks(body, 4, count), body[4 + 24 * count :])
    if packet_type == SDES:
        return Sdes(_parse_sdes(body, count))
    if packet_type == BYE:
        if len(body) < 4 * count:
            raise RtcpError(f"BYE with {count} SSRCs is too short")
        ssrcs = struct.unpack_from(f"!{count}I", body)
        reason = ""
        rest = body[4 * count :]
        if rest:
            size = rest[0]
            if 1 + size > len(rest):
                raise RtcpError("BYE reason overruns the packet")
            reason = rest[1 : 1 + size].decode("utf-8", "replace")
        return Bye(tuple(ssrcs), reason)
    return RtcpOther(packet_type, count, body)


def _parse_sdes(body: bytes, count: int) -> tuple[SdesChunk, ...]:
    chunks = []
    offset = 0
    for _ in range(count):
        if offset + 4 > len(body):
            raise RtcpError("SDES chunk truncated")
        (ssrc,) = struct.unpack_from("!I", body, offset)
        offset += 4
        items = []
        while True:
            if offset >= len(body):
                raise RtcpError("SDES chunk without end item")
            kind = body[offset]
            if kind == 0:
                offset = (offset + 4) & ~3  # skip the null octets to the next word
                break
            if offset + 2 > len(body) or offset + 2 + body[offset + 1] > len(body):
                raise RtcpError("SDES item overruns the packet")
            size = body[offset + 1]
            items.append((kind, body[offset + 2 : offset + 2 + size]))
            offset += 2 + size
        chunks.append(SdesChunk(ssrc, tuple(items)))
    return tuple(chunks)


# --- reports, RTT, interval ---


def report_block(receiver: RtpReceiver, lsr: int = 0, dlsr: int = 0) -> ReportBlock | None:
    """The report block about ``receiver``'s source (starts a new loss interval)."""
    figures = receiver.interval_report()
    if figures is None:
        return None
    return ReportBlock(
        figures.ssrc,
        figures.fraction_lost,
        figures.cumulative_lost,
        figures.extended_highest,
        min(figures.jitter, 0xFFFFFFFF),
        lsr,
        dlsr,
    )


def round_trip_time(block: ReportBlock, arrival_ntp: int) -> float | None:
    """RTT in seconds from a block about our stream: arrival - LSR - DLSR (§6.4.1).

    None when the peer has not seen an SR from us yet (LSR 0).
    """
    if block.lsr == 0:
        return None
    units = (ntp_middle(arrival_ntp) - block.lsr - block.dlsr) & 0xFFFFFFFF
    if units >= 0x80000000:  # negative: clocks or the peer are off; report zero
        return 0.0
    return units / 65536


def rtcp_interval(
    rng: random.Random,
    *,
    initial: bool = False,
    members: int = 2,
    senders: int = 2,
    we_sent: bool = True,
    session_bandwidth: float = 64_000 / 8,
    average_size: float = 100.0,
) -> float:
    """Seconds until the next report (RFC 3550 §6.3.1, without reconsideration).

    ``session_bandwidth`` is in octets/s (default: one G.711 stream); RTCP gets 5% of
    it, a quarter of that shared by senders. The deterministic interval is at least 5 s
    (2.5 s for the first report), then randomized to 0.5-1.5 times and compensated.
    """
    rtcp_bw = 0.05 * session_bandwidth
    n = members
    if 0 < senders <= 0.25 * members:
        if we_sent:
            rtcp_bw *= 0.25
            n = senders
        else:
            rtcp_bw *= 0.75
            n = members - senders
    minimum = MIN_INTERVAL / 2 if initial else MIN_INTERVAL
    deterministic = max(minimum, n * average_size / rtcp_bw)
    return deterministic * rng.uniform(0.5, 1.5) / _COMPENSATION


# --- one leg's reporter ---


@dataclass(slots=True)
class RemoteReport:
    """What the peer last told us about our stream."""

    fraction_lost: float
    cumulative_lost: int
    jitter: int  # timestamp units
    rtt: float | None  # seconds


class RtcpReporter:
    """RTCP of one leg: builds our reports, digests the peer's.

    ``now`` arguments are Unix wall-clock seconds (NTP time goes on the wire); give the
    same clock to `RtpSender.send` so the SR's RTP timestamp lines up.
    """

    def __init__(
        self,
        cname: str,
        sender: RtpSender | None,
        receiver: RtpReceiver,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.cname = cname
        self.sender = sender
        self.receiver = receiver
        self.ssrc = sender.ssrc if sender else random.SystemRandom().getrandbits(32)
        self.rng = rng or random.Random()
        self._last_sr_ntp: int | None = None  # middle 32 bits of the peer's last SR
        self._last_sr_at = 0.0
        self._sent_packets_at_last_report = -1
        self.remote: RemoteReport | None = None
        self.peer_cname: str | None = None
        self.peer_bye = False
        self.next_report_at: float | None = None

    def due(self, now: float) -> bool:
        """True when a report should go out now (schedules the first on first call)."""
        if self.next_report_at is None:
            self.next_report_at = now + rtcp_interval(self.rng, initial=True)
        return now >= self.next_report_at

    def report(self, now: float) -> bytes:
        """SR (if we sent since the last report) or RR, plus SDES CNAME; reschedules."""
        lsr, dlsr = 0, 0
        if self._last_sr_ntp is not None:
            lsr = self._last_sr_ntp
            dlsr = min(0xFFFFFFFF, int((now - self._last_sr_at) * 65536))
        block = report_block(self.receiver, lsr, dlsr)
        blocks = (block,) if block else ()
        sender = self.sender
        first: RtcpPacket
        if sender is not None and sender.packets_sent != self._sent_packets_at_last_report:
            first = SenderReport(
                self.ssrc,
                ntp_from_unix(now),
                sender.timestamp_at(now),
                sender.packets_sent,
                sender.octets_sent,
                blocks,
            )
            self._sent_packets_at_last_report = sender.packets_sent
        else:
            first = ReceiverReport(self.ssrc, blocks)
        self.next_report_at = now + rtcp_interval(self.rng, we_sent=isinstance(first, SenderReport))
        return build_rtcp([first, Sdes.cname(self.ssrc, self.cname)])

    def bye(self, reason: str = "") -> bytes:
        """The final compound packet of the leg: RR + SDES + BYE."""
        return build_rtcp(
            [
                ReceiverReport(self.ssrc),
                Sdes.cname(self.ssrc, self.cname),
                Bye((self.ssrc,), reason),
            ]
        )

    def receive(self, data: bytes, now: float) -> list[RtcpPacket]:
        """Digest a compound packet from the peer (raises `RtcpError` if malformed)."""
        packets = parse_rtcp(data)
        for packet in packets:
            if isinstance(packet, SenderReport):
                if packet.ssrc == self.receiver.ssrc or self.receiver.ssrc is None:
                    self._last_sr_ntp = ntp_middle(packet.ntp)
                    self._last_sr_at = now
                self._about_us(packet.blocks, now)
            elif isinstance(packet, ReceiverReport):
                self._about_us(packet.blocks, now)
            elif isinstance(packet, Sdes):
                for chunk in packet.chunks:
                    if chunk.ssrc != self.ssrc and chunk.cname is not None:
                        self.peer_cname = chunk.cname
            elif isinstance(packet, Bye):
                self.peer_bye = True
        return packets

    def _about_us(self, blocks: tuple[ReportBlock, ...], now: float) -> None:
        for block in blocks:
            if block.ssrc == self.ssrc:
                self.remote = RemoteReport(
                    block.fraction,
                    block.cumulative_lost,
                    block.jitter,
                    round_trip_time(block, ntp_from_unix(now)),
                )
