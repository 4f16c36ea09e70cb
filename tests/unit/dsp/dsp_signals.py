"""Test signals made with numpy alone, so the DSP tests do not check spandsp against itself.

Levels are dBm0 per the G.711 convention spandsp uses: a sine of 0 dBm0 has an RMS of
32768 * 10**(-3.14/20) / sqrt(2)... expressed as its peak: 0 dBm0 = 3.14 dB below full scale.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

RATE = 8000
DBM0_MAX_SINE = 3.14  # a full-scale sine is +3.14 dBm0 (G.711 A-law convention, as spandsp)

ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")


def amplitude(dbm0: float) -> float:
    """Peak amplitude of a sine at ``dbm0``."""
    return 32768.0 * 10 ** ((dbm0 - DBM0_MAX_SINE) / 20.0)


def dbm0(samples: npt.NDArray[np.generic]) -> float:
    """The power of ``samples`` in dBm0 (the level a sine of the same RMS would have)."""
    rms = float(np.sqrt(np.mean(np.asarray(samples, dtype=np.float64) ** 2)))
    if rms == 0.0:
        return -200.0
    return 20 * np.log10(rms * np.sqrt(2) / 32768.0) + DBM0_MAX_SINE


def silence(ms: float) -> npt.NDArray[np.float64]:
    return np.zeros(round(ms * RATE / 1000))


def sine(freq: float, ms: float, level: float, phase: float = 0.0) -> npt.NDArray[np.float64]:
    n = round(ms * RATE / 1000)
    t = np.arange(n) / RATE
    return amplitude(level) * np.sin(2 * np.pi * freq * t + phase)


def digit_freqs(digit: str) -> tuple[float, float]:
    for r, row in enumerate(KEYPAD):
        if digit in row:
            return ROWS[r], COLS[row.index(digit)]
    raise ValueError(digit)


def dtmf(
    digit: str,
    ms: float = 50,
    low_level: float = -10.0,
    high_level: float | None = None,
    low_offset: float = 0.0,
    high_offset: float = 0.0,
) -> npt.NDArray[np.float64]:
    """One DTMF digit; offsets are relative frequency deviations (0.015 = +1.5%)."""
    low, high = digit_freqs(digit)
    high_level = low_level if high_level is None else high_level
    return sine(low * (1 + low_offset), ms, low_level, 0.3) + sine(
        high * (1 + high_offset), ms, high_level, 1.1
    )


def to_int16(x: npt.NDArray[np.float64]) -> npt.NDArray[np.int16]:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def white_noise(n: int, level: float, seed: int = 1) -> npt.NDArray[np.float64]:
    """Gaussian white noise of ``level`` dBm0 total power."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n) * amplitude(level) / np.sqrt(2)


def frames(x: npt.NDArray[np.int16], size: int = 160) -> list[npt.NDArray[np.int16]]:
    pad = (-len(x)) % size
    x = np.concatenate([x, np.zeros(pad, dtype=np.int16)])
    return [x[i : i + size] for i in range(0, len(x), size)]


def peak_frequency(x: npt.NDArray[np.generic], rate: int = RATE) -> float:
    """The strongest frequency of ``x`` (Hann window, parabolic interpolation, zero padding)."""
    xf = np.asarray(x, dtype=np.float64)
    n = max(len(xf), rate)  # >= 1 Hz bins before interpolation
    spec = np.abs(np.fft.rfft(xf * np.hanning(len(xf)), n=4 * n))
    k = int(np.argmax(spec[1:-1])) + 1
    a, b, c = np.log(spec[k - 1 : k + 2] + 1e-12)
    delta = 0.5 * (a - c) / (a - 2 * b + c)
    return float((k + delta) * rate / (4 * n))
