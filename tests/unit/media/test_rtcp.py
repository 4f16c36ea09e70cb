"""RTCP compound packets, report blocks from receiver stats, RTT, interval, reporter."""

from __future__ import annotations

import contextlib
import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.media.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    RtcpOther,
    RtcpReporter,
    Sdes,
    SdesChunk,
    SenderReport,
    build_rtcp,
    ntp_from_unix,
    ntp_middle,
    parse_rtcp,
    report_block,
    round_trip_time,
    rtcp_interval,
    unix_from_ntp,
)
from firmware.media.rtp import RtpPacket, parse_rtp
from firmware.media.stream import RtpReceiver, RtpSender

BLOCK = ReportBlock(0x1234, 25, -3, 70000, 40, 0xAABBCCDD, 65536)


def test_sender_report_wire_format() -> None:
    sr = SenderReport(0x01020304, ntp_from_unix(0), 160, 2, 320, (BLOCK,))
    data = build_rtcp([sr])
    assert data[:4] == bytes([0x81, 200, 0, 12])  # V=2, RC=1, length 13 words - 1
    assert struct.unpack_from("!Q", data, 8)[0] == 2_208_988_800 << 32
    # Fraction lost and the 24-bit two's complement cumulative loss.
    assert data[32:36] == bytes([25, 0xFF, 0xFF, 0xFD])
    assert parse_rtcp(data) == [sr]


def test_compound_sr_sdes_bye_round_trip() -> None:
    packets = [
        SenderReport(1, ntp_from_unix(1_700_000_000.25), 123456, 10, 1600, ()),
        Sdes((SdesChunk(1, ((1, b"box@skillepunkt"), (2, b"Box"))), SdesChunk(2, ((1, b"x"),)))),
        Bye((1, 2), "call ended"),
    ]
    data = build_rtcp(packets)
    assert len(data) % 4 == 0
    parsed = parse_rtcp(data)
    assert parsed == packets
    assert parsed[1].chunks[0].cname == "box@skillepunkt"  # type: ignore[union-attr]


def test_receiver_report_and_unknown_types_kept() -> None:
    app = RtcpOther(204, 3, b"abcdNAME\x00\x00\x00\x01")
    data = build_rtcp([ReceiverReport(9, (BLOCK, BLOCK)), Sdes.cname(9, "a"), app])
    assert parse_rtcp(data) == [ReceiverReport(9, (BLOCK, BLOCK)), Sdes.cname(9, "a"), app]


def test_padding_on_last_packet_only() -> None:
    rr = build_rtcp([ReceiverReport(5)])
    padded = bytes([rr[0] | 0x20, rr[1], 0, 2]) + rr[4:] + b"\x00\x00\x00\x04"
    assert parse_rtcp(padded) == [ReceiverReport(5)]
    with pytest.raises(RtcpError, match="padding"):
        parse_rtcp(padded + rr)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x81", "shorter"),
        (bytes([0x40, 201, 0, 1, 0, 0, 0, 1]), "version"),
        (bytes([0x81, 201, 0, 1, 0, 0, 0, 1]), "report blocks"),
        (bytes([0x80, 201, 0, 5, 0, 0, 0, 1]), "overruns"),
        (bytes([0x80, 200, 0, 1, 0, 0, 0, 1]), "sender info"),
        (bytes([0x81, 202, 0, 2, 0, 0, 0, 1, 1, 9, 0, 0]), "SDES"),
        (bytes([0x81, 203, 0, 1, 0, 0, 0, 1, 1]), "trailing"),
        (bytes([0x81, 203, 0, 2, 0, 0, 0, 1, 9, 65, 0, 0]), "reason"),
    ],
)
def test_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(RtcpError, match=reason):
        parse_rtcp(data)


@given(st.binary(max_size=80))
def test_garbage_raises_only_rtcp_error(data: bytes) -> None:
    with contextlib.suppress(RtcpError):
        parse_rtcp(data)


def test_ntp_conversions() -> None:
    t = 1_700_000_000.5
    assert unix_from_ntp(ntp_from_unix(t)) == pytest.approx(t, abs=1e-6)
    assert ntp_middle(ntp_from_unix(t)) & 0xFFFF == 0x8000  # .5 s in 1/65536 units


def test_report_block_from_receiver() -> None:
    receiver = RtpReceiver()
    for seq in range(1, 101):
        if seq % 4:
            receiver.receive(RtpPacket(0, seq, seq * 160, 77), seq * 0.02)
    block = report_block(receiver, lsr=5, dlsr=6)
    assert block is not None
    assert block.ssrc == 77 and block.highest_seq == 99
    assert block.cumulative_lost == receiver.lost == 24
    assert block.fraction == pytest.approx(24 / 98, abs=1 / 256)
    assert (block.lsr, block.dlsr) == (5, 6)
    assert report_block(RtpReceiver()) is None


def test_round_trip_time() -> None:
    sent = 1000.0
    lsr = ntp_middle(ntp_from_unix(sent))
    block = ReportBlock(1, 0, 0, 0, 0, lsr, int(0.25 * 65536))  # peer held it 250 ms
    assert round_trip_time(block, ntp_from_unix(sent + 0.31)) == pytest.approx(0.06, abs=1e-4)
    assert round_trip_time(ReportBlock(1, 0, 0, 0, 0), ntp_from_unix(sent)) is None


def test_interval_minimum_and_randomized() -> None:
    rng = random.Random(1)
    values = [rtcp_interval(rng) for _ in range(500)]
    assert min(values) >= 5 * 0.5 / 1.21828 - 1e-9
    assert max(values) <= 5 * 1.5 / 1.21828 + 1e-9
    assert len(set(values)) == 500
    assert sum(values) / 500 == pytest.approx(5 / 1.21828, rel=0.05)
    assert max(rtcp_interval(rng, initial=True) for _ in range(100)) <= 2.5 * 1.5 / 1.21828
    # A big conference: the interval grows with the members.
    assert rtcp_interval(rng, members=500, senders=2) > 5 * 0.5 / 1.21828


def test_reporters_exchange_loss_jitter_and_rtt() -> None:
    """Two legs talking RTP and RTCP through a lossy 40 ms one-way path."""
    rng = random.Random(3)
    sa, sb = RtpSender(8, rng=rng), RtpSender(8, rng=rng)
    ra, rb = RtpReceiver(), RtpReceiver()
    a = RtcpReporter("a@test", sa, ra, rng=rng)
    b = RtcpReporter("b@test", sb, rb, rng=rng)
    t0 = 1_700_000_000.0
    delay = 0.040
    for i in range(500):
        now = t0 + i * 0.02
        pa = sa.send(b"\xd5" * 160, 160, now)
        pb = sb.send(b"\xd5" * 160, 160, now)
        if i % 20 != 7:  # 5% of A's packets lost on the way to B
            rb.receive(parse_rtp(pa), now + delay)
        ra.receive(parse_rtp(pb), now + delay)
    now = t0 + 10
    sr_a = a.report(now)
    assert isinstance(parse_rtcp(sr_a)[0], SenderReport)
    b.receive(sr_a, now + delay)
    rr_b = b.report(now + 0.5)  # B answers 0.5 s later, with a block about A
    a.receive(rr_b, now + 0.5 + delay)
    assert a.peer_cname == "b@test"
    assert a.remote is not None
    assert a.remote.fraction_lost == pytest.approx(0.05, abs=0.01)
    assert a.remote.cumulative_lost == 25
    assert a.remote.rtt == pytest.approx(2 * delay, abs=1e-3)
    bye = a.bye("done")
    b.receive(bye, now + 1)
    assert b.peer_bye


def test_reporter_schedule() -> None:
    r = RtcpReporter("x", None, RtpReceiver(), rng=random.Random(9))
    assert not r.due(100.0)
    assert r.next_report_at is not None and 100 + 1 < r.next_report_at < 100 + 3.1
    assert r.due(r.next_report_at)
    data = r.report(r.next_report_at)
    packets = parse_rtcp(data)
    assert isinstance(packets[0], ReceiverReport) and packets[0].blocks == ()
    assert isinstance(packets[1], Sdes)
    assert r.next_report_at > 100 + 4
