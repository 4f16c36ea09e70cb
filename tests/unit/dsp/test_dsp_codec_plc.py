"""G.722 and packet loss concealment through the spandsp binding."""

from __future__ import annotations

import numpy as np
import pytest
from unit.dsp.dsp_signals import peak_frequency

from firmware.dsp import DspError, G722Decoder, G722Encoder, Plc


def tone16k(freq: float, seconds: float, amp: float = 8000.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return np.round(amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def test_g722_round_trip_keeps_a_1khz_tone() -> None:
    x = tone16k(1000.0, 1.0)
    with G722Encoder() as enc, G722Decoder() as dec:
        out = []
        for i in range(0, len(x), 320):  # 20 ms frames
            data = enc.encode(x[i : i + 320])
            assert len(data) == 160  # 64 kbit/s
            out.append(dec.decode(data))
    y = np.concatenate(out)
    assert len(y) == len(x)
    steady = y[1600:]
    assert peak_frequency(steady, 16000) == pytest.approx(1000.0, abs=2.0)
    # Level kept within 1 dB, and the error is small (a real codec, not silence).
    ratio = np.std(steady.astype(float)) / np.std(x[1600:].astype(float))
    assert 0.89 < ratio < 1.12


def test_g722_wideband_tone_above_4khz_survives() -> None:
    x = tone16k(6000.0, 0.5)
    with G722Encoder() as enc, G722Decoder() as dec:
        y = dec.decode(enc.encode(x))
    assert peak_frequency(y[800:], 16000) == pytest.approx(6000.0, abs=3.0)


def test_g722_rejects_odd_sample_counts_and_closed_use() -> None:
    enc = G722Encoder()
    with pytest.raises(DspError):
        enc.encode(np.zeros(3, dtype=np.int16))
    with pytest.raises(DspError):
        enc.encode(np.zeros(4, dtype=np.float32))  # type: ignore[arg-type]
    enc.close()
    enc.close()
    with pytest.raises(DspError):
        enc.encode(np.zeros(4, dtype=np.int16))


def test_g722_accepts_bytes() -> None:
    x = tone16k(1000.0, 0.02)
    with G722Encoder() as a, G722Encoder() as b:
        assert a.encode(x.tobytes()) == b.encode(x)


def test_plc_fills_a_gap_with_the_voice_pitch() -> None:
    t = np.arange(8000) / 8000
    voice = np.round(6000 * np.sin(2 * np.pi * 200 * t)).astype(np.int16)
    with Plc() as plc:
        for i in range(0, 1600, 160):
            got = plc.rx(voice[i : i + 160])
            assert np.array_equal(got, voice[i : i + 160])  # nothing lost: untouched
        filled = np.concatenate([plc.fillin(160), plc.fillin(160)])
        after = plc.rx(voice[1920:2080])
    # The gap is not silence and keeps the 200 Hz pitch ...
    assert np.std(filled[:160].astype(float)) > 1000
    assert peak_frequency(filled[:160]) == pytest.approx(200.0, abs=10.0)
    # ... and fades out as it goes on (PLC must not repeat forever at full level).
    with Plc() as long_gap:
        long_gap.rx(voice[:1600])
        tail = np.concatenate([long_gap.fillin(160) for _ in range(10)])
    assert np.std(tail[-160:].astype(float)) < 0.5 * np.std(tail[:160].astype(float))
    assert len(after) == 160


def test_plc_rejects_negative_lengths() -> None:
    with Plc() as plc, pytest.raises(DspError):
        plc.fillin(-1)
