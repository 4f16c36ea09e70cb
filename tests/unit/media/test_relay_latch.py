"""The latching rule as a pure decision, with a hand-moved clock."""

from __future__ import annotations

from firmware.media.latch import Latch, is_rtcp, is_rtp

SDP = ("192.168.1.20", 4000)
NAT = ("203.0.113.9", 61000)
STRANGER = ("198.51.100.66", 5555)


def test_packet_checks() -> None:
    assert is_rtp(b"\x80" + bytes(11))
    assert not is_rtp(b"\x80" + bytes(10))  # shorter than the fixed header
    assert not is_rtp(b"\x40" + bytes(20))  # version 1
    assert not is_rtp(b"\xc0" + bytes(20))  # version 3
    assert is_rtcp(b"\x80\xc8" + bytes(6))  # sender report
    assert not is_rtcp(b"\x80\x08" + bytes(10))  # RTP payload type, not RTCP
    assert not is_rtcp(b"\x80\xc9\x00")
    assert not is_rtcp(b"")


def test_first_packet_latches_even_from_behind_nat() -> None:
    latch = Latch()
    latch.reset(SDP)
    assert latch.target == SDP
    assert latch.consider(NAT, now=0.0, latched_count=0)
    assert latch.source == NAT and latch.target == NAT


def test_latched_stream_cannot_be_hijacked_while_talking() -> None:
    latch = Latch(relatch_after=2.0)
    latch.reset(SDP)
    latch.consider(NAT, 0.0, 0)
    count = 0
    for step in range(1, 100):  # the phone keeps sending, a stranger keeps knocking
        count += 5
        assert not latch.consider(STRANGER, step * 0.1, count)
    assert latch.source == NAT


def test_relatch_after_silence() -> None:
    latch = Latch(relatch_after=2.0)
    latch.consider(NAT, 0.0, 0)
    assert not latch.consider(STRANGER, 10.0, 50)  # it spoke since we last looked
    assert not latch.consider(STRANGER, 11.9, 50)  # silent, but not long enough yet
    assert latch.consider(STRANGER, 12.0, 50)  # silent for 2 s: the new mapping wins
    assert latch.source == STRANGER


def test_sdp_address_always_wins() -> None:
    latch = Latch()
    latch.reset(SDP)
    latch.consider(STRANGER, 0.0, 0)
    assert latch.consider(SDP, 0.1, 10)
    assert latch.source == SDP


def test_new_sdp_remote_clears_the_latch() -> None:
    latch = Latch()
    latch.reset(SDP)
    latch.consider(NAT, 0.0, 0)
    moved = ("192.168.1.20", 4010)
    latch.reset(moved)
    assert latch.source is None and latch.target == moved
    assert latch.consider(("203.0.113.9", 61010), 0.1, 3)


def test_nowhere_until_sdp_or_packet() -> None:
    latch = Latch()
    assert latch.target is None
    latch.reset(None)
    assert latch.target is None


def test_first_sdp_after_media_keeps_the_latch() -> None:
    latch = Latch()
    latch.consider(NAT, 0.0, 0)  # the callee's RTP overtook its 200 OK
    latch.reset(SDP)
    assert latch.source == NAT and latch.target == NAT
