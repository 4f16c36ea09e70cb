"""Echo canceller (speexdsp) on a synthetic hybrid echo path: ERLE after convergence."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from firmware.dsp import DspError, EchoCanceller

RATE = 8000


def speech_like(seconds: float, seed: int) -> npt.NDArray[np.float64]:
    """Noise shaped like speech: 300-3400 Hz band, syllable-rate amplitude modulation."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    spec[(f < 300) | (f > 3400)] = 0
    spec /= 1 + f / 1000  # speech falls off with frequency
    x = np.fft.irfft(spec, n)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * np.arange(n) / RATE)
    x = x * envelope
    return x / np.std(x) * 3000  # about -20 dBm0


def echo_path(far: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A hybrid echo: 6 ms bulk delay, a decaying 8 ms impulse response, 12 dB return loss."""
    rng = np.random.default_rng(3)
    taps = rng.standard_normal(64) * np.exp(-np.arange(64) / 12)
    taps *= 10 ** (-12 / 20) / np.sqrt(np.sum(taps**2))
    h = np.concatenate([np.zeros(48), taps])
    return np.convolve(far, h)[: len(far)]


def power_db(x: npt.NDArray[np.generic]) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2) + 1e-9))


def run(
    canceller: EchoCanceller, far: npt.NDArray[np.float64], near: npt.NDArray[np.float64]
) -> npt.NDArray[np.int16]:
    far16 = np.round(far).astype(np.int16)
    near16 = np.clip(np.round(near), -32768, 32767).astype(np.int16)
    out = [
        canceller.process(near16[i : i + 160], far16[i : i + 160])
        for i in range(0, len(far16), 160)
    ]
    return np.concatenate(out)


def test_erle_above_20_db_after_convergence() -> None:
    far = speech_like(20.0, seed=1)
    echo = echo_path(far)
    with EchoCanceller(tail_ms=32) as ec:
        out = run(ec, far, echo)
    tail = slice(10 * RATE, 20 * RATE)  # after 10 s of adaptation
    erle = power_db(echo[tail]) - power_db(out[tail])
    print(f"ERLE {erle:.1f} dB")
    assert erle > 20.0


def test_near_end_speech_passes_while_echo_goes() -> None:
    far = speech_like(16.0, seed=1)
    talker = speech_like(16.0, seed=9) * 0.5
    talker[: 12 * RATE] = 0  # the near end speaks only after convergence
    with EchoCanceller() as ec:
        out = run(ec, far, echo_path(far) + talker).astype(np.float64)
    seg = slice(12 * RATE + 800, 16 * RATE)
    residual = out[seg] - talker[seg]
    # the talker comes through; echo left plus talker distortion stays 6 dB below it
    assert power_db(out[seg]) == pytest.approx(power_db(talker[seg]), abs=3.0)
    assert power_db(talker[seg]) - power_db(residual) > 6.0


def test_frame_size_and_lifecycle() -> None:
    ec = EchoCanceller()
    with pytest.raises(DspError):
        ec.process(np.zeros(80, np.int16), np.zeros(80, np.int16))
    ec.reset()
    silent = ec.process(np.zeros(160, np.int16).tobytes(), np.zeros(160, np.int16))
    assert not silent.any()
    ec.close()
    with pytest.raises(DspError):
        ec.process(np.zeros(160, np.int16), np.zeros(160, np.int16))
    with pytest.raises(DspError):
        EchoCanceller(tail_ms=2000)
