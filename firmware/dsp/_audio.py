"""The box's audio convention: signed 16-bit linear samples as numpy int16 arrays (or bytes)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from firmware.dsp._lib import ffi
from firmware.dsp.errors import DspError

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz

Samples = npt.NDArray[np.int16]
AudioInput = npt.NDArray[np.int16] | bytes | bytearray | memoryview


def as_samples(audio: AudioInput) -> Samples:
    """Return ``audio`` as a C-contiguous int16 array (bytes are little-endian s16)."""
    if isinstance(audio, bytes | bytearray | memoryview):
        raw = bytes(audio)
        if len(raw) % 2:
            raise DspError(f"audio bytes must be whole 16-bit samples, got {len(raw)} bytes")
        return np.frombuffer(raw, dtype="<i2").astype(np.int16, copy=False)
    if not isinstance(audio, np.ndarray):
        raise DspError(f"audio must be a numpy int16 array or bytes, not {type(audio).__name__}")
    if audio.dtype != np.int16:
        raise DspError(f"audio must be int16 samples, not {audio.dtype}")
    if audio.ndim != 1:
        raise DspError(f"audio must be one-dimensional (mono), got shape {audio.shape}")
    return np.ascontiguousarray(audio)


def in_ptr(samples: Samples) -> Any:
    """A read-only ``int16_t *`` view of ``samples`` for the duration of one C call."""
    return ffi.from_buffer("int16_t[]", samples)


def out_ptr(samples: Samples) -> Any:
    """A writable ``int16_t *`` view of ``samples`` (which must be a writable array)."""
    return ffi.from_buffer("int16_t[]", samples, require_writable=True)
