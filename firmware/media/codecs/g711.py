"""G.711 A-law and µ-law companding (ITU-T G.711) with numpy lookup tables.

Why tables: a 20 ms frame is 160 samples and the box converts thousands of frames per
second, so each direction is one fancy-index into a precomputed table (65,536 entries
for encoding, indexed by the int16 sample seen as uint16; 256 for decoding). The tables
are computed once at import from the G.711 segment/mantissa rules below, not copied.
``audioop`` is not used: it is deprecated and gone in Python 3.13.

Audio convention of the box: 8 kHz mono int16 numpy arrays, 160 samples per 20 ms frame.
``bytes`` given to the encoders are little-endian signed 16-bit PCM (s16le).

Negative inputs are folded with one's complement (``~x``) as in the ITU-T G.191
reference, so both laws are symmetric: ``encode(-1 - x)`` mirrors ``encode(x)``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "G711Error",
    "alaw_decode",
    "alaw_encode",
    "ulaw_decode",
    "ulaw_encode",
]

Int16Array = npt.NDArray[np.int16]

#: The A-law and µ-law code of a zero sample (what silence sounds like on the wire).
ALAW_SILENCE = 0xD5
ULAW_SILENCE = 0xFF


class G711Error(ValueError):
    """Input that is not 16-bit PCM (odd byte count, wrong dtype, out-of-range values)."""


def _all_int16() -> npt.NDArray[np.int32]:
    """Every int16 value, ordered by its uint16 bit pattern (0, 1, ..., 32767, -32768, ..., -1)."""
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


def _bit_length(values: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    """Number of significant bits of non-negative integers (0 -> 0)."""
    out = np.zeros(values.shape, dtype=np.int32)
    v = values.copy()
    while np.any(v):
        nz = v > 0
        out[nz] += 1
        v >>= 1
    return out


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    x = _all_int16()
    magnitude = np.where(x < 0, ~x, x) >> 3  # 12-bit magnitude of the 13-bit A-law input
    segment = np.clip(_bit_length(magnitude) - 5, 0, 7)  # segments end at 0x1F, 0x3F, ... 0xFFF
    shift = np.where(segment < 2, 1, segment)
    mantissa = (magnitude >> shift) & 0x0F
    code = (segment << 4) | mantissa
    # Even bits are inverted on the line (0x55); the sign bit is set for positive samples.
    return (code ^ np.where(x >= 0, 0xD5, 0x55)).astype(np.uint8)


def _build_alaw_decode() -> Int16Array:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (code >> 4) & 0x07
    mantissa = code & 0x0F
    # Reconstruct at the middle of the quantisation interval.
    linear = np.where(
        segment == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(segment - 1, 0),
    )
    return np.where(code & 0x80, linear, -linear).astype(np.int16)


_ULAW_BIAS = 33  # 0x84 >> 2: makes the segment boundaries powers of two
_ULAW_TOP = 0x1FFF  # largest biased magnitude: the top of segment 7


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    x = _all_int16()
    # Clipped so the top code (segment 7, mantissa 15) absorbs everything above 8158.
    magnitude: npt.NDArray[np.int32] = np.minimum(
        (np.where(x < 0, ~x, x) >> 2) + _ULAW_BIAS, _ULAW_TOP
    )
    segment = np.clip(_bit_length(magnitude) - 6, 0, 7)  # segments end at 0x3F, 0x7F, ... 0x1FFF
    mantissa = (magnitude >> (segment + 1)) & 0x0F
    code = (segment << 4) | mantissa
    # All bits are inverted on the line; the sign bit is set for positive samples.
    return (code ^ np.where(x >= 0, 0xFF, 0x7F)).astype(np.uint8)


def _build_ulaw_decode() -> Int16Array:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    segment = (code >> 4) & 0x07
    mantissa = code & 0x0F
    linear = (((mantissa << 3) + 0x84) << segment) - 0x84
    return np.where(code & 0x80, -linear, linear).astype(np.int16)


_ALAW_ENCODE = _build_alaw_encode()
_ALAW_DECODE = _build_alaw_decode()
_ULAW_ENCODE = _build_ulaw_encode()
_ULAW_DECODE = _build_ulaw_decode()
for _table in (_ALAW_ENCODE, _ALAW_DECODE, _ULAW_ENCODE, _ULAW_DECODE):
    _table.flags.writeable = False


def _as_index(
    samples: npt.NDArray[np.generic] | bytes | bytearray | memoryview,
) -> npt.NDArray[np.uint16]:
    """The samples as uint16 bit patterns, ready to index a 65,536-entry table."""
    if isinstance(samples, bytes | bytearray | memoryview):
        raw = bytes(samples)
        if len(raw) % 2:
            raise G711Error(f"16-bit PCM needs an even number of bytes, got {len(raw)}")
        return np.frombuffer(raw, dtype="<u2")
    if not isinstance(samples, np.ndarray):
        raise G711Error(f"expected an int16 numpy array or bytes, got {type(samples).__name__}")
    if samples.dtype == np.int16:
        return samples.reshape(-1).view(np.uint16)
    if samples.dtype.kind not in "iu":
        raise G711Error(f"expected integer samples, got dtype {samples.dtype}")
    if samples.size and (samples.min() < -32768 or samples.max() > 32767):
        raise G711Error("sample values outside the int16 range")
    return samples.reshape(-1).astype(np.int16).view(np.uint16)


def _codes(data: bytes | bytearray | memoryview) -> npt.NDArray[np.uint8]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise G711Error(f"expected G.711 bytes, got {type(data).__name__}")
    return np.frombuffer(data, dtype=np.uint8)


def alaw_encode(samples: npt.NDArray[np.generic] | bytes) -> bytes:
    """Linear 16-bit samples -> A-law bytes (one byte per sample)."""
    return _ALAW_ENCODE[_as_index(samples)].tobytes()


def alaw_decode(data: bytes) -> Int16Array:
    """A-law bytes -> int16 samples (a new, writable array)."""
    return _ALAW_DECODE[_codes(data)]


def ulaw_encode(samples: npt.NDArray[np.generic] | bytes) -> bytes:
    """Linear 16-bit samples -> µ-law bytes (one byte per sample)."""
    return _ULAW_ENCODE[_as_index(samples)].tobytes()


def ulaw_decode(data: bytes) -> Int16Array:
    """µ-law bytes -> int16 samples (a new, writable array)."""
    return _ULAW_DECODE[_codes(data)]
