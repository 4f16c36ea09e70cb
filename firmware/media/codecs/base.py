"""The `Codec` interface: 8 kHz int16 frames in and out, codec payload bytes on the wire.

Every codec takes and returns the box's audio (8 kHz mono int16 numpy arrays, normally
160 samples per 20 ms) whatever its own sample rate, so the jitter buffer, mixer and
transcoder never resample. Instances carry state (G.722's ADPCM predictors), so use one
per stream and direction.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from firmware.media.codecs.registry import CodecInfo

__all__ = ["AUDIO_RATE", "Codec", "CodecError", "Int16Array", "check_frame"]

#: Sample rate of the box's audio.
AUDIO_RATE = 8000

Int16Array = npt.NDArray[np.int16]


class CodecError(ValueError):
    """Audio or payload a codec cannot take (wrong dtype/shape, truncated payload)."""


class Codec(Protocol):
    info: CodecInfo

    def encode(self, frame: Int16Array) -> bytes:
        """8 kHz int16 samples -> payload bytes."""
        ...

    def decode(self, payload: bytes) -> Int16Array:
        """Payload bytes -> 8 kHz int16 samples."""
        ...


def check_frame(frame: object) -> Int16Array:
    """``frame`` as a 1-D int16 array, or `CodecError`."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.int16 or frame.ndim != 1:
        raise CodecError("audio frames are 1-D numpy int16 arrays at 8 kHz")
    return frame
