"""Test audio for calls between peers: a tone to play, and what frequency was heard."""

from __future__ import annotations

import itertools
import math
import struct
import wave
from pathlib import Path

import numpy as np


def tone_wav(path: Path, freq: float = 1000.0, seconds: float = 4.0) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        n = int(8000 * seconds)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / 8000)))
                for i in range(n)
            )
        )


def dominant_frequency(path: Path) -> tuple[float, int]:
    """(frequency estimated from zero crossings of the loud part, peak level)."""
    with wave.open(str(path)) as w:
        data = w.readframes(w.getnframes())
    samples = struct.unpack(f"<{len(data) // 2}h", data)
    loud = [s for s in samples if abs(s) > 200]
    peak = max((abs(s) for s in samples), default=0)
    if len(loud) < 800:
        return 0.0, peak
    start = samples.index(loud[0])
    seg = samples[start : start + 8000]
    crossings = sum(1 for a, b in itertools.pairwise(seg) if (a < 0) != (b < 0))
    return crossings / 2 / (len(seg) / 8000), peak


def frequencies_heard(path: Path, window: float = 0.5) -> list[float]:
    """The strongest frequency of each ``window`` of a recording (0 for silence)."""
    with wave.open(str(path)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
    n = int(8000 * window)
    out = []
    for start in range(0, len(samples) - n + 1, n):
        chunk = samples[start : start + n]
        if np.abs(chunk).max() < 500:
            out.append(0.0)
            continue
        spectrum = np.abs(np.fft.rfft(chunk * np.hanning(n)))
        out.append(float(np.argmax(spectrum)) * 8000 / n)
    return out
