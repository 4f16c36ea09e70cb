"""What the box knows about each RTP audio format: SDP name, clocks, payload type, framing.

RFC 3551 fixes the static payload types (PCMU 0, PCMA 8, G722 9); the others are
dynamic and get their number from the SDP. G.722 is the famous oddity: its RTP clock
(and SDP rtpmap) says 8000 although the audio is 16 kHz, so ``clock_rate`` (timestamps)
and ``sample_rate`` (audio) are separate fields. L16 here means the box's internal
8 kHz mono linear format (dynamic PT, ``L16/8000``), not RFC 3551's 44.1 kHz PT 10/11.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CODECS",
    "G722",
    "L16",
    "PCMA",
    "PCMU",
    "TELEPHONE_EVENT",
    "CodecInfo",
    "UnknownCodecError",
    "by_static_payload_type",
    "codec_info",
]


class UnknownCodecError(LookupError):
    """A codec name/clock or payload type the box does not implement."""


@dataclass(frozen=True, slots=True)
class CodecInfo:
    name: str  # SDP encoding name as RFC 3551/4733 spell it
    clock_rate: int  # RTP timestamp units per second (what rtpmap says)
    sample_rate: int  # audio samples per second inside the codec
    static_pt: int | None  # RFC 3551 static payload type, None if dynamic
    octets_per_second: int | None  # payload octets per second of audio (None: not audio)
    default_ptime: int = 20  # ms
    channels: int = 1

    @property
    def rtpmap(self) -> str:
        """The SDP rtpmap encoding part, e.g. ``PCMA/8000``."""
        return f"{self.name}/{self.clock_rate}"

    @property
    def is_audio(self) -> bool:
        return self.octets_per_second is not None

    def timestamp_units(self, ptime_ms: int) -> int:
        """RTP timestamp increment of a packet carrying ``ptime_ms`` of audio."""
        return self.clock_rate * ptime_ms // 1000

    def payload_size(self, ptime_ms: int) -> int:
        """Payload octets of a packet carrying ``ptime_ms`` of audio."""
        if self.octets_per_second is None:
            raise UnknownCodecError(f"{self.name} carries no audio frames")
        return self.octets_per_second * ptime_ms // 1000

    def ptime_of(self, payload_size: int) -> float:
        """Milliseconds of audio in a payload of ``payload_size`` octets."""
        if self.octets_per_second is None:
            raise UnknownCodecError(f"{self.name} carries no audio frames")
        return payload_size * 1000 / self.octets_per_second


PCMU = CodecInfo("PCMU", 8000, 8000, 0, 8000)
PCMA = CodecInfo("PCMA", 8000, 8000, 8, 8000)
G722 = CodecInfo("G722", 8000, 16000, 9, 8000)
L16 = CodecInfo("L16", 8000, 8000, None, 16000)
TELEPHONE_EVENT = CodecInfo("telephone-event", 8000, 8000, None, None)

CODECS: dict[str, CodecInfo] = {c.name.lower(): c for c in (PCMA, PCMU, G722, L16, TELEPHONE_EVENT)}
_STATIC = {c.static_pt: c for c in CODECS.values() if c.static_pt is not None}


def codec_info(name: str, clock_rate: int | None = None) -> CodecInfo:
    """The codec an SDP rtpmap names (case-insensitive); the clock must match if given."""
    info = CODECS.get(name.lower())
    if info is None or (clock_rate is not None and clock_rate != info.clock_rate):
        suffix = f"/{clock_rate}" if clock_rate is not None else ""
        raise UnknownCodecError(f"unsupported codec {name}{suffix}")
    return info


def by_static_payload_type(payload_type: int) -> CodecInfo | None:
    """The codec of a static payload type (an m= line without rtpmap), if the box has it."""
    return _STATIC.get(payload_type)
