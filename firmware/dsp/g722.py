"""G.722 wideband codec (spandsp): 64 kbit/s, 16 kHz linear samples <-> G.722 octets.

One octet carries two 16 kHz samples, so a 20 ms frame is 320 samples <-> 160 octets.
(RTP still advertises G.722 with an 8000 Hz clock, RFC 3551 §4.5.2.)
"""

from __future__ import annotations

import numpy as np

from firmware.dsp._audio import AudioInput, Samples, as_samples, in_ptr, out_ptr
from firmware.dsp._lib import check_ptr, ffi, spandsp
from firmware.dsp._state import CState
from firmware.dsp.errors import DspError

G722_SAMPLE_RATE = 16000
_RATE = 64000
_G722_SAMPLE_RATE_8000 = 0x0001


class G722Encoder(CState):
    """Encodes 16 kHz samples (or 8 kHz with ``sample_rate=8000``) to G.722 at 64 kbit/s."""

    def __init__(self, sample_rate: int = G722_SAMPLE_RATE) -> None:
        self._samples_per_octet = _samples_per_octet(sample_rate)
        options = _G722_SAMPLE_RATE_8000 if sample_rate == 8000 else 0
        lib = spandsp()
        self._lib = lib
        self._st = check_ptr(lib.g722_encode_init(ffi.NULL, _RATE, options), "g722_encode_init")
        self._own([(lib.g722_encode_free, self._st)])

    def encode(self, audio: AudioInput) -> bytes:
        """Encode a block of samples (its length a multiple of 2 at 16 kHz) to G.722 octets."""
        self._check_open()
        samples = as_samples(audio)
        if len(samples) % self._samples_per_octet:
            raise DspError(f"G.722 needs whole octets: {len(samples)} samples")
        out = ffi.new("uint8_t[]", max(1, len(samples) // self._samples_per_octet))
        n = self._lib.g722_encode(self._st, out, in_ptr(samples), len(samples))
        return bytes(ffi.buffer(out, n))


class G722Decoder(CState):
    """Decodes G.722 octets at 64 kbit/s to 16 kHz samples (or 8 kHz with ``sample_rate``)."""

    def __init__(self, sample_rate: int = G722_SAMPLE_RATE) -> None:
        self._samples_per_octet = _samples_per_octet(sample_rate)
        options = _G722_SAMPLE_RATE_8000 if sample_rate == 8000 else 0
        lib = spandsp()
        self._lib = lib
        self._st = check_ptr(lib.g722_decode_init(ffi.NULL, _RATE, options), "g722_decode_init")
        self._own([(lib.g722_decode_free, self._st)])

    def decode(self, data: bytes) -> Samples:
        """Decode G.722 octets to int16 samples."""
        self._check_open()
        if not isinstance(data, bytes | bytearray | memoryview):
            raise DspError(f"G.722 data must be bytes, not {type(data).__name__}")
        raw = bytes(data)
        out = np.empty(len(raw) * self._samples_per_octet, dtype=np.int16)
        if not raw:
            return out
        n = self._lib.g722_decode(self._st, out_ptr(out), raw, len(raw))
        return out[:n]


def _samples_per_octet(sample_rate: int) -> int:
    if sample_rate == G722_SAMPLE_RATE:
        return 2
    if sample_rate == 8000:
        return 1
    raise DspError(f"G.722 sample rate must be 16000 or 8000, not {sample_rate}")
