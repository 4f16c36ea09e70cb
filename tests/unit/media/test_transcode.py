"""Transcoder: pass-through, PCMA<->PCMU<->G722<->L16, ptime mediation, continuity."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from firmware.media.codecs import G722, L16, PCMA, PCMU, create_codec
from firmware.media.rtp import RtpError, parse_rtp
from firmware.media.stream import RtpSender
from firmware.media.transcode import TranscodeError, Transcoder


def tone(freq: float, seconds: float, amplitude: float = 8000) -> np.ndarray:
    t = np.arange(int(seconds * 8000)) / 8000
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def peak_frequency(samples: np.ndarray) -> float:
    x = samples.astype(float) * np.hanning(len(samples))
    return float(np.argmax(np.abs(np.fft.rfft(x))) * 8000 / len(samples))


def packets_of(
    audio: np.ndarray, info, ptime: int = 20, pt: int | None = None, seed: int = 1
) -> list[bytes]:  # type: ignore[no-untyped-def]
    codec = create_codec(info)
    sender = RtpSender(info.static_pt if pt is None else pt, rng=random.Random(seed))
    n = 8 * ptime
    return [sender.send(codec.encode(audio[i : i + n]), n) for i in range(0, len(audio) - n + 1, n)]


def run(t: Transcoder, packets: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for p in packets:
        out += t.process(p)
    return out + t.flush()


def test_passthrough_returns_the_same_packet() -> None:
    t = Transcoder(PCMA, PCMA)
    assert t.passthrough
    data = packets_of(tone(400, 0.02), PCMA)[0]
    assert t.process(data)[0] is data
    assert not Transcoder(PCMA, PCMA, destination_ptime=30).passthrough
    assert not Transcoder(PCMA, PCMA, source_event_pt=101, destination_event_pt=96).passthrough


def test_tone_through_pcma_pcmu_pcma_keeps_its_frequency() -> None:
    audio = tone(1234, 2.0)
    to_u = Transcoder(PCMA, PCMU, rng=random.Random(2))
    to_a = Transcoder(PCMU, PCMA, rng=random.Random(3))
    out = run(to_a, run(to_u, packets_of(audio, PCMA)))
    assert len(out) == 100
    parsed = [parse_rtp(p) for p in out]
    assert {p.payload_type for p in parsed} == {8}
    decoded = np.concatenate([create_codec(PCMA).decode(p.payload) for p in parsed])
    assert peak_frequency(decoded) == pytest.approx(1234, abs=4)
    # Two extra companding steps cost little: SNR stays above 30 dB.
    noise = decoded.astype(float) - audio.astype(float)
    snr = 10 * np.log10(np.mean(audio.astype(float) ** 2) / np.mean(noise**2))
    assert snr > 30


@pytest.mark.parametrize(("src", "dst"), [(PCMA, G722), (G722, PCMU), (PCMU, L16), (L16, PCMA)])
def test_pairs_keep_frequency(src, dst) -> None:  # type: ignore[no-untyped-def]
    audio = tone(850, 1.0)
    t = Transcoder(
        src, dst, source_pt=97 if src is L16 else None, destination_pt=97 if dst is L16 else None
    )
    out = run(t, packets_of(audio, src, pt=97 if src is L16 else None))
    codec = create_codec(dst)
    decoded = np.concatenate([codec.decode(parse_rtp(p).payload) for p in out])
    assert len(decoded) == len(audio)
    assert peak_frequency(decoded[800:]) == pytest.approx(850, abs=4)


def test_same_ptime_maps_sequence_and_timestamp_by_offset() -> None:
    packets = packets_of(tone(500, 0.2), PCMA)
    t = Transcoder(PCMA, PCMU, rng=random.Random(4))
    ins = [parse_rtp(p) for p in packets]
    outs = [parse_rtp(t.process(p)[0]) for p in packets[:3] + packets[4:]]  # one lost
    d_seq = (outs[0].sequence - ins[0].sequence) & 0xFFFF
    d_ts = (outs[0].timestamp - ins[0].timestamp) & 0xFFFFFFFF
    for i, o in zip(ins[:3] + ins[4:], outs, strict=True):
        assert (o.sequence - i.sequence) & 0xFFFF == d_seq  # the far end still sees the loss
        assert (o.timestamp - i.timestamp) & 0xFFFFFFFF == d_ts
        assert o.ssrc == t.ssrc and o.payload_type == 0
    assert outs[0].marker and not any(o.marker for o in outs[1:])


def test_new_input_ssrc_continues_output_stream() -> None:
    t = Transcoder(PCMA, PCMU, rng=random.Random(5))
    first = [parse_rtp(t.process(p)[0]) for p in packets_of(tone(500, 0.1), PCMA, seed=10)]
    second = [parse_rtp(t.process(p)[0]) for p in packets_of(tone(500, 0.1), PCMA, seed=11)]
    assert second[0].ssrc == first[0].ssrc
    assert second[0].sequence == (first[-1].sequence + 1) & 0xFFFF
    assert second[0].timestamp == (first[-1].timestamp + 160) & 0xFFFFFFFF
    assert second[0].marker


@pytest.mark.parametrize(("src_ptime", "dst_ptime"), [(20, 30), (30, 20), (20, 60), (30, 10)])
def test_ptime_mediation(src_ptime: int, dst_ptime: int) -> None:
    audio = tone(700, 1.2)
    t = Transcoder(
        PCMA, PCMU, source_ptime=src_ptime, destination_ptime=dst_ptime, rng=random.Random(6)
    )
    out = [parse_rtp(p) for p in run(t, packets_of(audio, PCMA, src_ptime))]
    n = 8 * dst_ptime
    assert all(len(p.payload) == n for p in out[:-1])
    assert sum(len(p.payload) for p in out) == len(audio)
    for a, b in itertools.pairwise(out):
        assert b.sequence == (a.sequence + 1) & 0xFFFF
        assert b.timestamp == (a.timestamp + len(a.payload)) & 0xFFFFFFFF
    decoded = np.concatenate([create_codec(PCMU).decode(p.payload) for p in out])
    assert np.array_equal(
        decoded,
        create_codec(PCMU).decode(
            create_codec(PCMU).encode(create_codec(PCMA).decode(create_codec(PCMA).encode(audio)))
        ),
    )


def test_reframing_across_a_loss_keeps_real_time() -> None:
    packets = packets_of(tone(700, 0.4), PCMA, 20)  # 20 packets
    t = Transcoder(PCMA, PCMA, source_ptime=20, destination_ptime=30, rng=random.Random(7))
    out = [parse_rtp(p) for p in run(t, packets[:5] + packets[6:])]  # packet 5 lost
    # 100 ms before the gap: 3 full frames + a 10 ms remainder flushed; then 280 ms.
    sizes = [len(p.payload) for p in out]
    assert sizes[:4] == [240, 240, 240, 80]
    assert sum(sizes) == 19 * 160
    gap = (out[4].timestamp - out[3].timestamp) & 0xFFFFFFFF
    assert gap == 80 + 160  # the remainder, then the 20 ms lost
    seqs = [p.sequence for p in out]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))


def test_reframing_drops_late_packets() -> None:
    packets = packets_of(tone(700, 0.2), PCMA, 20)
    t = Transcoder(PCMA, PCMU, source_ptime=20, destination_ptime=30, rng=random.Random(8))
    run(t, [packets[0], packets[2], packets[1], packets[3]])
    assert t.late == 1


def test_events_rewritten_and_numbered_in_the_output_stream() -> None:
    sender = RtpSender(8, rng=random.Random(9))
    codec = create_codec(PCMA)
    t = Transcoder(
        PCMA,
        PCMU,
        source_event_pt=101,
        destination_event_pt=96,
        source_ptime=20,
        destination_ptime=30,
        rng=random.Random(10),
    )
    out = []
    for _ in range(3):
        out += t.process(sender.send(codec.encode(tone(500, 0.02)), 160))
    ts = sender.timestamp
    out += t.process(sender.send_at(bytes([5, 0x0A, 0, 160]), ts, 101, marker=True))
    out += t.process(sender.send_at(bytes([5, 0x8A, 1, 64]), ts, 101))
    parsed = [parse_rtp(p) for p in out]
    events = [p for p in parsed if p.payload_type == 96]
    assert [p.payload for p in events] == [bytes([5, 0x0A, 0, 160]), bytes([5, 0x8A, 1, 64])]
    assert events[0].marker and events[0].timestamp == events[1].timestamp
    assert events[0].timestamp == (parsed[0].timestamp + 480) & 0xFFFFFFFF
    seqs = [p.sequence for p in parsed]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))


def test_other_payload_types_ignored() -> None:
    t = Transcoder(PCMA, PCMU)
    sender = RtpSender(13, rng=random.Random(11))  # comfort noise
    assert t.process(sender.send(b"\x40", 160)) == []
    assert t.ignored == 1


def test_bad_configuration_and_input() -> None:
    with pytest.raises(TranscodeError):
        Transcoder(PCMA, L16)  # L16 is dynamic: needs the SDP's payload type
    with pytest.raises(TranscodeError):
        Transcoder(PCMA, PCMU, destination_ptime=25)
    with pytest.raises(RtpError):
        Transcoder(PCMA, PCMU).process(b"\x00\x01")
