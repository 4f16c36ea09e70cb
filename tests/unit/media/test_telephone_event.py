"""RFC 4733: payload format, sender redundancy, robust receiver, captured SIPp digits,
and in-band <-> RFC 4733 conversion through firmware.dsp's DTMF receiver/sender."""

from __future__ import annotations

import random

import numpy as np
import pytest

from firmware.media.rtp import parse_rtp
from firmware.media.stream import RtpSender
from firmware.media.telephone_event import (
    DigitEnd,
    DigitStart,
    EventReceiver,
    EventSender,
    EventsToInband,
    InbandToEvents,
    TelephoneEvent,
    TelephoneEventError,
    digit_to_event,
    event_to_digit,
)

from .test_rtp_capture import SIPP, read_pcap_udp


def test_payload_format() -> None:
    e = TelephoneEvent(11, end=True, volume=13, duration=1280)
    assert e.to_bytes() == bytes([11, 0x80 | 13, 0x05, 0x00])
    assert TelephoneEvent.parse(e.to_bytes()) == e
    assert TelephoneEvent.parse(bytes([1, 0x4A, 0, 160])) == TelephoneEvent(1, False, 10, 160)
    with pytest.raises(TelephoneEventError):
        TelephoneEvent.parse(b"\x01\x02")
    with pytest.raises(TelephoneEventError):
        TelephoneEvent(1, volume=64)


def test_digit_codes() -> None:
    assert [digit_to_event(d) for d in "09*#AD"] == [0, 9, 10, 11, 12, 15]
    assert event_to_digit(10) == "*" and event_to_digit(16) is None
    with pytest.raises(TelephoneEventError):
        digit_to_event("x")


def test_sender_packets() -> None:
    rtp = RtpSender(8, rng=random.Random(1))
    ts0, seq0 = rtp.timestamp, rtp.sequence
    sender = EventSender(rtp, 101)
    packets = [parse_rtp(p) for p in sender.digit("7", duration=800)]
    assert len(packets) == 5 + 3
    assert all(p.timestamp == ts0 and p.payload_type == 101 for p in packets)
    assert [p.marker for p in packets] == [True] + [False] * 7
    assert [p.sequence for p in packets] == [(seq0 + i) & 0xFFFF for i in range(8)]
    events = [TelephoneEvent.parse(p.payload) for p in packets]
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800, 800]
    assert [e.end for e in events] == [False] * 5 + [True] * 3
    assert {e.event for e in events} == {7}
    # The audio resumes after the event, as a new talkspurt.
    audio = parse_rtp(rtp.send(b"\xd5" * 160, 160))
    assert audio.timestamp == (ts0 + 800) & 0xFFFFFFFF and audio.marker


def test_sender_refuses_overlapping_events() -> None:
    sender = EventSender(RtpSender(8, rng=random.Random(2)), 101)
    sender.start("1")
    with pytest.raises(TelephoneEventError):
        sender.start("2")
    assert sender.stop() and not sender.active
    assert sender.stop() == [] and sender.tick() == []


def reports(receiver: EventReceiver, packets: list[bytes], t0: float = 0.0) -> list[object]:
    out: list[object] = []
    for i, p in enumerate(packets):
        out += receiver.receive(parse_rtp(p), t0 + i * 0.02)
    return out


def test_receiver_clean_and_duplicates() -> None:
    sender = EventSender(RtpSender(8, rng=random.Random(3)), 101)
    packets = sender.digit("5", 800)
    got = reports(EventReceiver(101), packets + packets[2:4] + packets[-1:])
    assert len(got) == 2
    start, end = got
    assert isinstance(start, DigitStart) and start.digit == "5"
    assert isinstance(end, DigitEnd) and end.duration == 800 and end.complete


def test_receiver_lost_start_and_lost_end() -> None:
    sender = EventSender(RtpSender(8, rng=random.Random(4)), 101)
    first = sender.digit("1", 640)
    second = sender.digit("2", 640)
    # Start of "1" lost; all end packets of "1" lost; "2" intact.
    got = reports(EventReceiver(101), first[2:4] + second)
    assert [(type(r).__name__, r.digit) for r in got] == [  # type: ignore[attr-defined]
        ("DigitStart", "1"),
        ("DigitEnd", "1"),
        ("DigitStart", "2"),
        ("DigitEnd", "2"),
    ]
    assert not got[1].complete and got[1].duration == 640  # type: ignore[attr-defined]
    assert got[3].complete  # type: ignore[attr-defined]


def test_receiver_only_end_packets() -> None:
    sender = EventSender(RtpSender(8, rng=random.Random(5)), 101)
    got = reports(EventReceiver(101), sender.digit("#", 480)[-2:])
    assert [type(r) for r in got] == [DigitStart, DigitEnd]
    assert got[1].digit == "#" and got[1].duration == 480  # type: ignore[attr-defined]


def test_receiver_timeout_and_late_copy() -> None:
    sender = EventSender(RtpSender(8, rng=random.Random(6)), 101)
    packets = sender.digit("9", 800)
    receiver = EventReceiver(101, timeout=0.3)
    got = reports(receiver, packets[:3])  # all later packets lost
    assert receiver.active == "9"
    assert receiver.poll(0.2) == []
    ended = receiver.poll(0.04 + 0.3)
    assert len(ended) == 1 and isinstance(ended[0], DigitEnd) and not ended[0].complete
    assert receiver.active is None
    assert reports(receiver, packets[-3:], t0=1.0) == []  # its end arrives late: ignored
    assert len(got) == 1


def test_receiver_ignores_other_payload_types_and_counts_malformed() -> None:
    rtp = RtpSender(8, rng=random.Random(7))
    receiver = EventReceiver(101)
    assert receiver.receive(parse_rtp(rtp.send(b"\xd5" * 160, 160)), 0) == []
    assert receiver.receive(parse_rtp(rtp.send_at(b"\x01", 0, 101)), 0) == []
    assert receiver.malformed == 1


needs_sipp = pytest.mark.skipif(not SIPP.exists(), reason="sip-tester pcaps")


@needs_sipp
@pytest.mark.parametrize(
    ("name", "digit"),
    [
        ("dtmf_2833_0.pcap", "0"),
        ("dtmf_2833_5.pcap", "5"),
        ("dtmf_2833_9.pcap", "9"),
        ("dtmf_2833_star.pcap", "*"),
        ("dtmf_2833_pound.pcap", "#"),
    ],
)
def test_sipp_captured_digit(name: str, digit: str) -> None:
    datagrams = read_pcap_udp(SIPP / name)
    receiver = EventReceiver(101)
    got = []
    for d in datagrams:
        got += receiver.receive(parse_rtp(d.payload), d.time)
    assert len(got) == 2
    assert isinstance(got[0], DigitStart) and got[0].digit == digit
    assert isinstance(got[1], DigitEnd) and got[1].complete and got[1].duration == 2240


@needs_sipp
def test_sipp_captured_digits_in_sequence_with_loss() -> None:
    """All twelve captures as one stream, every 3rd packet lost: still twelve digits."""
    names = [f"dtmf_2833_{d}.pcap" for d in "0123456789"] + [
        "dtmf_2833_star.pcap",
        "dtmf_2833_pound.pcap",
    ]
    receiver = EventReceiver(101)
    digits = []
    t = 0.0
    for n, name in enumerate(names):
        for i, d in enumerate(read_pcap_udp(SIPP / name)):
            t += 0.02
            packet = parse_rtp(d.payload).replace(timestamp=n * 8000 + 100)
            if i % 3 == 1:
                continue
            for r in receiver.receive(packet, t):
                if isinstance(r, DigitStart):
                    digits.append(r.digit)
    assert "".join(digits) == "0123456789*#"


def test_inband_tones_become_events() -> None:
    from firmware.dsp.dtmf import DtmfSender

    audio = DtmfSender(on_ms=100, off_ms=100).generate("3*8")
    audio = np.concatenate([audio, np.zeros(1600, dtype=np.int16)])
    rtp = RtpSender(8, rng=random.Random(8))
    converter = InbandToEvents(EventSender(rtp, 101))
    packets: list[bytes] = []
    for i in range(0, len(audio) - 159, 160):
        packets += converter.feed(audio[i : i + 160])
        if not converter.active:
            rtp.skip(160)  # the caller would send the audio frame here
    got = reports(EventReceiver(101), packets)
    starts = [r.digit for r in got if isinstance(r, DigitStart)]
    ends = [r for r in got if isinstance(r, DigitEnd)]
    assert starts == ["3", "*", "8"]
    assert all(e.complete and 480 <= e.duration <= 1120 for e in ends)
    converter.close()


def test_events_become_inband_tones() -> None:
    from firmware.dsp.dtmf import DtmfReceiver

    player = EventsToInband()
    detector = DtmfReceiver()
    heard: list[str] = []
    silence = np.zeros(160, dtype=np.int16)
    plan = {5: "4", 20: "#"}  # frame index -> digit start received
    for i in range(40):
        if i in plan:
            player.play(plan[i])
        heard += detector.feed(player.frame(silence))
    assert heard == ["4", "#"]
    assert not player.active
    player.close()
