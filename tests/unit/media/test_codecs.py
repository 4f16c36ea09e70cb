"""Codec registry and the per-stream codecs (PCMA, PCMU, L16, G.722 via firmware.dsp)."""

from __future__ import annotations

import numpy as np
import pytest

from firmware.media.codecs import (
    G722,
    L16,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    CodecError,
    UnknownCodecError,
    by_static_payload_type,
    codec_info,
    create_codec,
)


def tone(freq: float, seconds: float, rate: int = 8000, amplitude: float = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def peak_frequency(samples: np.ndarray, rate: int = 8000) -> float:
    x = samples.astype(float) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.argmax(spectrum) * rate / len(samples))


def test_registry() -> None:
    assert codec_info("pcma", 8000) is PCMA
    assert codec_info("PCMU") is PCMU
    assert codec_info("G722", 8000).sample_rate == 16000
    assert codec_info("telephone-event", 8000) is TELEPHONE_EVENT
    assert by_static_payload_type(8) is PCMA and by_static_payload_type(9) is G722
    assert by_static_payload_type(18) is None
    assert PCMA.rtpmap == "PCMA/8000" and G722.rtpmap == "G722/8000"
    assert PCMA.timestamp_units(30) == 240 and G722.timestamp_units(20) == 160
    assert PCMU.payload_size(20) == 160 and L16.payload_size(20) == 320
    assert G722.payload_size(20) == 160 and PCMA.ptime_of(240) == 30
    with pytest.raises(UnknownCodecError):
        codec_info("G729")
    with pytest.raises(UnknownCodecError):
        codec_info("PCMA", 16000)
    with pytest.raises(UnknownCodecError):
        TELEPHONE_EVENT.payload_size(20)
    with pytest.raises(UnknownCodecError):
        create_codec(TELEPHONE_EVENT)


@pytest.mark.parametrize("info", [PCMA, PCMU, L16, G722])
def test_frame_sizes_and_tone(info) -> None:  # type: ignore[no-untyped-def]
    codec = create_codec(info)
    audio = tone(1000, 1.0)
    out = []
    for i in range(0, len(audio), 160):
        payload = codec.encode(audio[i : i + 160])
        assert len(payload) == info.payload_size(20)
        decoded = codec.decode(payload)
        assert decoded.dtype == np.int16 and len(decoded) == 160
        out.append(decoded)
    y = np.concatenate(out)[800:]  # past G.722's start-up
    assert peak_frequency(y) == pytest.approx(1000, abs=5)
    level = np.sqrt(np.mean(y.astype(float) ** 2)) * np.sqrt(2)
    assert level == pytest.approx(8000, rel=0.05)


def test_l16_is_network_order() -> None:
    codec = create_codec(L16)
    assert codec.encode(np.array([1, -2], dtype=np.int16)) == b"\x00\x01\xff\xfe"
    assert list(codec.decode(b"\x01\x00\x80\x00")) == [256, -32768]
    with pytest.raises(CodecError):
        codec.decode(b"\x00")


def test_g722_talks_to_a_16khz_peer() -> None:
    """Our 8 kHz-presented G.722 against spandsp's full 16 kHz codec on the far side."""
    from firmware.dsp import G722Decoder, G722Encoder

    ours = create_codec(G722)
    peer_enc, peer_dec = G722Encoder(16000), G722Decoder(16000)
    # Peer -> us: a 16 kHz 700 Hz tone is heard at 700 Hz, right level.
    peer_audio = tone(700, 1.0, rate=16000)
    heard = np.concatenate(
        [ours.decode(peer_enc.encode(peer_audio[i : i + 320])) for i in range(0, 16000, 320)]
    )
    assert len(heard) == 8000
    assert peak_frequency(heard[1600:]) == pytest.approx(700, abs=5)
    # Us -> peer: our 8 kHz 1500 Hz tone decodes at 16 kHz to 1500 Hz.
    our_audio = tone(1500, 1.0)
    played = np.concatenate(
        [peer_dec.decode(ours.encode(our_audio[i : i + 160])) for i in range(0, 8000, 160)]
    )
    assert len(played) == 16000
    assert peak_frequency(played[3200:], rate=16000) == pytest.approx(1500, abs=5)


@pytest.mark.parametrize("info", [PCMA, PCMU, L16, G722])
def test_bad_frames_rejected(info) -> None:  # type: ignore[no-untyped-def]
    codec = create_codec(info)
    with pytest.raises((CodecError, ValueError)):
        codec.encode(np.zeros(160, dtype=np.float32))
    with pytest.raises((CodecError, ValueError)):
        codec.encode(np.zeros((2, 80), dtype=np.int16))
