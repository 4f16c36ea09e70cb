"""Audio plumbing shared by the virtual devices: a send queue and an earpiece recorder.

Devices think in 8 kHz int16 samples; the line carries 20 ms A-law frames. The queue
turns whatever a device says (DTMF, tones, caller ID) into frames; the recorder keeps
the last minutes of what a device heard, with the time each frame arrived.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

from firmware.media.codecs.g711 import alaw_decode, alaw_encode

FRAME = 160
Samples = npt.NDArray[np.int16]
SILENT_FRAME = alaw_encode(np.zeros(FRAME, dtype=np.int16))
SILENT_SAMPLES = alaw_decode(SILENT_FRAME)  # what a silent frame decodes to (never changed)
SILENT_SAMPLES.flags.writeable = False


class SendQueue:
    """Samples waiting to go out, cut into A-law frames (silence when empty)."""

    def __init__(self) -> None:
        self._chunks: deque[Samples] = deque()
        self._pending = 0

    def put(self, samples: Samples) -> None:
        if samples.dtype != np.int16 or samples.ndim != 1:
            raise ValueError("device audio must be one-dimensional int16 samples")
        if len(samples):
            self._chunks.append(samples)
            self._pending += len(samples)

    def clear(self) -> None:
        self._chunks.clear()
        self._pending = 0

    @property
    def pending_samples(self) -> int:
        return self._pending

    def next_frame(self) -> bytes:
        if not self._pending:
            return SILENT_FRAME
        out = np.zeros(FRAME, dtype=np.int16)
        filled = 0
        while filled < FRAME and self._chunks:
            chunk = self._chunks[0]
            take = min(FRAME - filled, len(chunk))
            out[filled : filled + take] = chunk[:take]
            filled += take
            if take == len(chunk):
                self._chunks.popleft()
            else:
                self._chunks[0] = chunk[take:]
        self._pending -= filled
        return alaw_encode(out)


class Recorder:
    """The last ``max_frames`` frames heard, each with its arrival time."""

    def __init__(self, max_frames: int = 3000) -> None:
        self._frames: deque[tuple[float, bytes]] = deque(maxlen=max_frames)

    def add(self, at: float, frame: bytes) -> None:
        self._frames.append((at, frame))

    def clear(self) -> None:
        self._frames.clear()

    def samples(self, since: float = float("-inf"), until: float = float("inf")) -> Samples:
        """Linear audio of the frames that arrived in [since, until]."""
        chosen = [f for t, f in self._frames if since <= t <= until]
        if not chosen:
            return np.zeros(0, dtype=np.int16)
        return alaw_decode(b"".join(chosen))
