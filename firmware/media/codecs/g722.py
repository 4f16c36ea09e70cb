"""G.722 (64 kbit/s) through firmware.dsp (libspandsp), presented as 8 kHz audio.

Rate conversion is spandsp's 8 kHz mode, which is the simplest correct one for G.722:
the codec's QMF splits 16 kHz audio into a 0-4 kHz and a 4-8 kHz sub-band, each at
8 kHz. Encoding box audio feeds it straight into the low sub-band (the high band gets
silence); decoding keeps only the low sub-band. No extra filter or resampler is needed,
a 16 kHz peer hears the narrowband audio at the right pitch and level, and we hear the
peer's 0-4 kHz band; only the wideband part (4-7 kHz) is dropped, which the box's
8 kHz audio could not carry anyway. One payload octet is one 8 kHz sample period, so a
20 ms frame is 160 samples <-> 160 octets, matching the 8000 Hz RTP clock.
"""

from __future__ import annotations

from firmware.dsp import G722Decoder, G722Encoder
from firmware.media.codecs.base import AUDIO_RATE, Int16Array, check_frame
from firmware.media.codecs.registry import G722, CodecInfo

__all__ = ["G722Codec"]


class G722Codec:
    """One G.722 stream (encoder and decoder state); ``close`` frees the C state."""

    info: CodecInfo = G722

    def __init__(self) -> None:
        self._encoder = G722Encoder(AUDIO_RATE)
        self._decoder = G722Decoder(AUDIO_RATE)

    def encode(self, frame: Int16Array) -> bytes:
        return self._encoder.encode(check_frame(frame))

    def decode(self, payload: bytes) -> Int16Array:
        return self._decoder.decode(payload)

    def close(self) -> None:
        self._encoder.close()
        self._decoder.close()
