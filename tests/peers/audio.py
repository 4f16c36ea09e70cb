"""Test audio for calls between peers: a tone to play, and what frequency was heard."""

from __future__ import annotations

import itertools
import math
import struct
import wave
from pathlib import Path


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
