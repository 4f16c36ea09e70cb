"""Audio codecs of the media plane: a registry of formats and one `Codec` per stream.

API::

    info = codec_info("PCMA", 8000)           # CodecInfo: clocks, static PT, framing
    codec = create_codec(info)                # Codec: encode(int16 8 kHz) -> bytes, decode
    alaw_encode / alaw_decode / ulaw_encode / ulaw_decode   # G.711 tables (g711.py)

Supported: PCMA (8), PCMU (0), G722 (9, via firmware.dsp/libspandsp), L16/8000
(dynamic, the box's linear format), telephone-event (registry only; see
firmware.media.telephone_event).
"""

from collections.abc import Callable

from firmware.media.codecs.base import AUDIO_RATE, Codec, CodecError, Int16Array
from firmware.media.codecs.g711 import (
    G711Error,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)
from firmware.media.codecs.g722 import G722Codec
from firmware.media.codecs.pcm import L16Codec, PcmaCodec, PcmuCodec
from firmware.media.codecs.registry import (
    CODECS,
    G722,
    L16,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    CodecInfo,
    UnknownCodecError,
    by_static_payload_type,
    codec_info,
)

__all__ = [
    "AUDIO_RATE",
    "CODECS",
    "G722",
    "L16",
    "PCMA",
    "PCMU",
    "TELEPHONE_EVENT",
    "Codec",
    "CodecError",
    "CodecInfo",
    "G711Error",
    "G722Codec",
    "Int16Array",
    "L16Codec",
    "PcmaCodec",
    "PcmuCodec",
    "UnknownCodecError",
    "alaw_decode",
    "alaw_encode",
    "by_static_payload_type",
    "codec_info",
    "create_codec",
    "ulaw_decode",
    "ulaw_encode",
]


def create_codec(codec: CodecInfo | str) -> Codec:
    """A fresh codec instance (own state) for one stream."""
    info = codec_info(codec) if isinstance(codec, str) else codec
    factory = _FACTORIES.get(info.name.lower())
    if factory is None:
        raise UnknownCodecError(f"{info.name} is not an audio codec the box can encode")
    return factory()


_FACTORIES: dict[str, Callable[[], Codec]] = {
    "pcma": PcmaCodec,
    "pcmu": PcmuCodec,
    "l16": L16Codec,
    "g722": G722Codec,
}
