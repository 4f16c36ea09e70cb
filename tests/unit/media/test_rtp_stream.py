"""RtpSender numbering and RtpReceiver statistics (RFC 3550 A.1, A.3, A.8)."""

from __future__ import annotations

import random

import pytest

from firmware.media.rtp import RtpPacket, parse_rtp
from firmware.media.stream import MAX_DROPOUT, Accept, RtpReceiver, RtpSender


def test_sender_random_start_and_advance() -> None:
    a = RtpSender(8, rng=random.Random(1))
    b = RtpSender(8, rng=random.Random(2))
    assert (a.ssrc, a.sequence, a.timestamp) != (b.ssrc, b.sequence, b.timestamp)
    seq0, ts0 = a.sequence, a.timestamp
    p1 = parse_rtp(a.send(b"\xd5" * 160, 160))
    p2 = parse_rtp(a.send(b"\xd5" * 160, 160))
    assert (p1.sequence, p1.timestamp, p1.marker) == (seq0, ts0, True)
    assert (p2.sequence, p2.timestamp, p2.marker) == (
        (seq0 + 1) & 0xFFFF,
        (ts0 + 160) & 0xFFFFFFFF,
        False,
    )
    assert a.packets_sent == 2 and a.octets_sent == 320


def test_sender_silence_gap_sets_marker_and_advances_time() -> None:
    s = RtpSender(0, ssrc=7, rng=random.Random(3))
    s.send(b"\xff" * 160, 160)
    ts = s.timestamp
    s.skip(800)  # 100 ms of silence not sent
    p = parse_rtp(s.send(b"\xff" * 160, 160))
    assert p.marker and p.timestamp == (ts + 800) & 0xFFFFFFFF and p.ssrc == 7


def test_sender_wraps_sequence_and_timestamp() -> None:
    s = RtpSender(8, rng=random.Random(4))
    s.sequence, s.timestamp = 0xFFFF, 0xFFFFFF60
    s.send(b"x", 160)
    p = parse_rtp(s.send(b"x", 160))
    assert (p.sequence, p.timestamp) == (0, 0)


def test_sender_event_packets_keep_media_time() -> None:
    s = RtpSender(8, rng=random.Random(5))
    ts = s.timestamp
    p = parse_rtp(s.send_at(b"\x05\x0a\x00\xa0", ts, 101, marker=True))
    assert (p.payload_type, p.timestamp, p.marker) == (101, ts, True)
    assert s.timestamp == ts


def test_sender_timestamp_at_extrapolates() -> None:
    s = RtpSender(8, rng=random.Random(6))
    ts = s.timestamp
    s.send(b"x" * 160, 160, now=100.0)
    assert s.timestamp_at(100.5) == (ts + 4000) & 0xFFFFFFFF


def stream(seqs: list[int], ssrc: int = 1, start: float = 0.0) -> list[tuple[RtpPacket, float]]:
    return [
        (RtpPacket(8, s & 0xFFFF, (s * 160) & 0xFFFFFFFF, ssrc), start + i * 0.02)
        for i, s in enumerate(seqs)
    ]


def feed(r: RtpReceiver, packets: list[tuple[RtpPacket, float]]) -> list[Accept]:
    return [r.receive(p, t) for p, t in packets]


def test_probation_then_valid() -> None:
    r = RtpReceiver()
    assert feed(r, stream([10, 11, 12])) == [Accept.PROBATION, Accept.VALID, Accept.VALID]
    assert r.received == 2 and r.expected == 2 and r.lost == 0


def test_probation_restarts_on_out_of_order() -> None:
    r = RtpReceiver()
    assert feed(r, stream([10, 20, 21])) == [Accept.PROBATION, Accept.PROBATION, Accept.VALID]


def test_loss_counted_and_fraction_per_interval() -> None:
    r = RtpReceiver()
    seqs = [s for s in range(100, 200) if s % 10 != 5]  # 10% loss
    feed(r, stream(seqs))
    assert r.lost == 10  # 105, 115, ... 195; counting starts at 101 (100 was probation)
    first = r.interval_report()
    assert first is not None
    assert first.cumulative_lost == r.lost
    assert first.fraction_lost == pytest.approx(256 * r.lost / r.expected, abs=1)
    feed(r, stream(list(range(200, 250)), start=10))
    second = r.interval_report()
    assert second is not None and second.fraction_lost == 0
    assert second.cumulative_lost == first.cumulative_lost


def test_wraparound_extends_sequence() -> None:
    r = RtpReceiver()
    feed(r, stream(list(range(65530, 65536 + 10))))
    assert r.cycles == 1 << 16
    assert r.extended_highest == (1 << 16) + 9
    assert r.lost == 0 and r.received == 15


def test_duplicates_and_reorder_counted_not_lost() -> None:
    r = RtpReceiver()
    feed(r, stream([1, 2, 3, 5, 4, 5, 6]))
    assert r.lost == -1  # one duplicate: RFC 3550 lets cumulative loss go negative
    assert r.duplicates_or_late == 2
    assert r.interval_report().fraction_lost == 0  # type: ignore[union-attr]


def test_big_jump_believed_only_when_repeated() -> None:
    r = RtpReceiver()
    feed(r, stream([1, 2, 3]))
    jump = 3 + MAX_DROPOUT + 500
    assert r.receive(RtpPacket(8, jump, 0, 1), 1.0) is Accept.BAD
    assert r.receive(RtpPacket(8, 4, 0, 1), 1.02) is Accept.VALID
    assert r.receive(RtpPacket(8, jump, 0, 1), 1.04) is Accept.BAD
    assert r.receive(RtpPacket(8, jump + 1, 0, 1), 1.06) is Accept.RESTART
    assert r.max_seq == jump + 1 and r.lost == 0


def test_new_ssrc_restarts_and_keeps_totals() -> None:
    r = RtpReceiver()
    feed(r, stream([1, 2, 3, 5]))  # one lost
    verdicts = feed(r, stream([900, 901, 902], ssrc=2, start=1))
    assert verdicts == [Accept.PROBATION, Accept.RESTART, Accept.VALID]
    assert r.ssrc == 2 and r.restarts == 1
    assert r.total_lost == 1 and r.total_received == 3 + 2


def test_jitter_zero_for_perfect_timing_and_grows_with_variance() -> None:
    steady = RtpReceiver()
    feed(steady, stream(list(range(200))))
    assert steady.jitter == pytest.approx(0, abs=1e-6)

    rng = random.Random(7)
    noisy = RtpReceiver()
    for i in range(2000):
        noisy.receive(RtpPacket(8, i, i * 160, 1), i * 0.02 + rng.uniform(0, 0.010))
    # Uniform 0-10 ms delay: mean |D| = 10/3 ms = 26.7 timestamp units at 8 kHz.
    assert noisy.jitter == pytest.approx(26.7, rel=0.2)
    assert noisy.jitter_seconds == pytest.approx(noisy.jitter / 8000)


def test_jitter_across_timestamp_wrap() -> None:
    r = RtpReceiver()
    for i in range(100):
        r.receive(RtpPacket(8, i, (0xFFFFFF00 + i * 160) & 0xFFFFFFFF, 1), i * 0.02)
    assert r.jitter == pytest.approx(0, abs=1e-6)
