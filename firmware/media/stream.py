"""RTP stream state: what a sender numbers its packets with, what a receiver learns.

`RtpSender` (RFC 3550 §5.1): random initial SSRC, sequence number and timestamp (so
plaintext attacks on SRTP and stale packets of an earlier call get nothing to hold on
to); the timestamp advances by the samples each frame covers, also over silence that is
not sent (``skip``), and the marker bit flags the first packet of each talkspurt.
Telephone events (RFC 4733) share the sequence space but carry their own timestamp:
``send_at``.

`RtpReceiver` keeps the receive statistics of one source as RFC 3550 appendix A does:
A.1 sequence validation (a new source must send ``MIN_SEQUENTIAL`` packets in order
before it counts, big jumps are believed only when repeated), the extended highest
sequence number across wraparound, A.3 expected/lost/fraction lost per report interval,
and A.8 interarrival jitter. A packet with another SSRC starts a new source (the peer
was re-INVITEd or transferred), with the totals of the old one kept.

Both are sans-I/O: arrival times are passed in (seconds on any monotonic clock).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from firmware.media.rtp import RtpPacket, build_rtp

__all__ = [
    "MAX_DROPOUT",
    "MAX_MISORDER",
    "MIN_SEQUENTIAL",
    "Accept",
    "IntervalReport",
    "RtpReceiver",
    "RtpSender",
]

#: RFC 3550 A.1: packets in sequence before a new source is believed.
MIN_SEQUENTIAL = 2
#: Largest forward jump treated as loss rather than a restart.
MAX_DROPOUT = 3000
#: Largest backward step treated as reordering/duplication rather than a restart.
MAX_MISORDER = 100
_SEQ_MOD = 1 << 16


class RtpSender:
    """Numbers the packets of one outgoing stream.

    ``rng`` is injectable for tests; by default the initial values come from
    ``random.SystemRandom`` as RFC 3550 §8.1 asks for unpredictable SSRCs.
    """

    def __init__(
        self,
        payload_type: int,
        clock_rate: int = 8000,
        *,
        ssrc: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 <= payload_type <= 127:
            raise ValueError(f"payload type {payload_type} out of range")
        if clock_rate <= 0:
            raise ValueError("clock rate must be positive")
        rng = rng or random.SystemRandom()
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.ssrc = rng.getrandbits(32) if ssrc is None else ssrc
        self.sequence = rng.getrandbits(16)  # of the next packet
        self.timestamp = rng.getrandbits(32)  # of the next media frame
        self.packets_sent = 0
        self.octets_sent = 0  # payload octets, as the SR counts them
        self._talkspurt = True
        self._last_timestamp: int | None = None
        self._last_time: float | None = None

    def send(self, payload: bytes, samples: int, now: float | None = None) -> bytes:
        """The packet carrying ``payload`` (``samples`` clock ticks long); advances time.

        ``now`` (seconds) lets `timestamp_at` extrapolate for RTCP sender reports.
        """
        data = build_rtp(
            self.payload_type, self.sequence, self.timestamp, self.ssrc, payload, self._talkspurt
        )
        self._sent(len(payload), self.timestamp, now)
        self._talkspurt = False
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        return data

    def send_at(
        self,
        payload: bytes,
        timestamp: int,
        payload_type: int,
        marker: bool = False,
        now: float | None = None,
    ) -> bytes:
        """A packet with an explicit timestamp/payload type (RFC 4733 events); time stays."""
        data = build_rtp(payload_type, self.sequence, timestamp, self.ssrc, payload, marker)
        self._sent(len(payload), timestamp, now)
        return data

    def skip(self, samples: int) -> None:
        """``samples`` of media time pass unsent (silence suppression, an event, hold).

        The next `send` starts a talkspurt and carries the marker bit.
        """
        if samples < 0:
            raise ValueError("cannot skip backwards")
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        self._talkspurt = True

    def timestamp_at(self, now: float) -> int:
        """The RTP timestamp that corresponds to ``now`` (for an SR), from the last send."""
        if self._last_time is None or self._last_timestamp is None:
            return self.timestamp
        elapsed = round((now - self._last_time) * self.clock_rate)
        return (self._last_timestamp + elapsed) & 0xFFFFFFFF

    def _sent(self, octets: int, timestamp: int, now: float | None) -> None:
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.packets_sent += 1
        self.octets_sent += octets
        if now is not None:
            self._last_time = now
            self._last_timestamp = timestamp


class Accept(Enum):
    """What `RtpReceiver.receive` made of a packet."""

    VALID = "valid"  # in sequence (or within the allowed loss/reorder): play it
    PROBATION = "probation"  # a source still proving itself (A.1)
    BAD = "bad"  # a big sequence jump not yet confirmed by the next packet: drop it
    RESTART = "restart"  # a confirmed jump or a new SSRC: the stream restarted, play it


@dataclass(frozen=True, slots=True)
class IntervalReport:
    """The figures of one RTCP report block about a source (RFC 3550 §6.4.1)."""

    ssrc: int
    fraction_lost: int  # 0-255: lost / expected in the interval, times 256
    cumulative_lost: int  # may be negative (duplicates); clamped to 24-bit signed
    extended_highest: int
    jitter: int  # timestamp units


class RtpReceiver:
    """Receive statistics of the incoming stream (RFC 3550 A.1, A.3, A.8)."""

    def __init__(self, clock_rate: int = 8000) -> None:
        if clock_rate <= 0:
            raise ValueError("clock rate must be positive")
        self.clock_rate = clock_rate
        self.ssrc: int | None = None
        self._restart_pending = False
        self.restarts = 0
        # Totals over earlier sources (the CDR wants the whole call).
        self._prior_received = 0
        self._prior_lost = 0
        self._reset_source(None, 0)

    # --- A.1 ---
    def _reset_source(self, ssrc: int | None, seq: int) -> None:
        self.ssrc = ssrc
        self.max_seq = seq
        self.cycles = 0
        self.base_seq = seq
        self.bad_seq = _SEQ_MOD + 1  # cannot match any sequence number
        self.probation = MIN_SEQUENTIAL
        self.received = 0
        self.duplicates_or_late = 0
        self._expected_prior = 0
        self._received_prior = 0
        self._transit: float | None = None
        self.jitter = 0.0  # timestamp units

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = _SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self._expected_prior = 0
        self._received_prior = 0

    def receive(self, packet: RtpPacket, arrival: float) -> Accept:
        """Account for one packet that arrived at ``arrival`` seconds."""
        return self.receive_header(packet.sequence, packet.timestamp, packet.ssrc, arrival)

    def receive_header(self, seq: int, timestamp: int, ssrc: int, arrival: float) -> Accept:
        """Same as `receive`, from the header fields (no packet object needed)."""
        verdict = Accept.VALID
        if ssrc != self.ssrc:
            if self.ssrc is not None:
                self._prior_received += self.received
                self._prior_lost += self.lost
                self.restarts += 1
            self._reset_source(ssrc, seq)
            self.max_seq = (seq - 1) & 0xFFFF
            self._restart_pending = self.restarts > 0
        udelta = (seq - self.max_seq) & 0xFFFF
        if self.probation:
            if seq == (self.max_seq + 1) & 0xFFFF:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    self.received += 1
                    self._jitter(timestamp, arrival)
                    restarted, self._restart_pending = self._restart_pending, False
                    return Accept.RESTART if restarted else Accept.VALID
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return Accept.PROBATION
        if udelta == 0:
            self.duplicates_or_late += 1
        elif udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += _SEQ_MOD  # wrapped
            self.max_seq = seq
        elif udelta <= _SEQ_MOD - MAX_MISORDER:
            # A very large jump: believe it only if the next packet follows on.
            if seq == self.bad_seq:
                self._prior_received += self.received
                self._prior_lost += self.lost
                self._init_seq(seq)
                self._transit = None
                self.restarts += 1
                verdict = Accept.RESTART
            else:
                self.bad_seq = (seq + 1) & 0xFFFF
                return Accept.BAD
        else:
            self.duplicates_or_late += 1  # reordered or duplicated within MAX_MISORDER
        self.received += 1
        self._jitter(timestamp, arrival)
        return verdict

    # --- A.8 ---
    def _jitter(self, timestamp: int, arrival: float) -> None:
        transit = arrival * self.clock_rate - timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            if d < 0x80000000:  # not a timestamp wrap artefact
                self.jitter += (d - self.jitter) / 16.0
            else:
                d = abs(d - 0x100000000)
                self.jitter += (d - self.jitter) / 16.0
        self._transit = transit

    # --- A.3 ---
    @property
    def extended_highest(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        if self.ssrc is None or self.probation:
            return 0
        return self.extended_highest - self.base_seq + 1

    @property
    def lost(self) -> int:
        """Cumulative packets lost of the current source (negative with duplicates)."""
        return self.expected - self.received if self.expected else 0

    @property
    def total_received(self) -> int:
        return self._prior_received + self.received

    @property
    def total_lost(self) -> int:
        return self._prior_lost + self.lost

    @property
    def jitter_seconds(self) -> float:
        return self.jitter / self.clock_rate

    def interval_report(self) -> IntervalReport | None:
        """Figures for a report block, and start a new interval; None before any packet."""
        if self.ssrc is None or self.probation:
            return None
        expected = self.expected
        expected_interval = expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self.received
        lost_interval = expected_interval - received_interval
        if expected_interval <= 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        cumulative = max(-0x800000, min(0x7FFFFF, self.lost))
        return IntervalReport(
            self.ssrc, fraction, cumulative, self.extended_highest & 0xFFFFFFFF, int(self.jitter)
        )
