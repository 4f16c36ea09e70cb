"""Stateless sample codecs: PCMA/PCMU (G.711 tables) and L16 (big-endian linear)."""

from __future__ import annotations

import numpy as np

from firmware.media.codecs.base import CodecError, Int16Array, check_frame
from firmware.media.codecs.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from firmware.media.codecs.registry import L16, PCMA, PCMU, CodecInfo

__all__ = ["L16Codec", "PcmaCodec", "PcmuCodec"]


class PcmaCodec:
    info: CodecInfo = PCMA

    def encode(self, frame: Int16Array) -> bytes:
        return alaw_encode(check_frame(frame))

    def decode(self, payload: bytes) -> Int16Array:
        return alaw_decode(payload)


class PcmuCodec:
    info: CodecInfo = PCMU

    def encode(self, frame: Int16Array) -> bytes:
        return ulaw_encode(check_frame(frame))

    def decode(self, payload: bytes) -> Int16Array:
        return ulaw_decode(payload)


class L16Codec:
    """Linear 16-bit in network byte order (RFC 3551 §4.5.11), 8 kHz mono."""

    info: CodecInfo = L16

    def encode(self, frame: Int16Array) -> bytes:
        return check_frame(frame).astype(">i2").tobytes()

    def decode(self, payload: bytes) -> Int16Array:
        if len(payload) % 2:
            raise CodecError(f"L16 payload of {len(payload)} bytes is not whole samples")
        return np.frombuffer(payload, dtype=">i2").astype(np.int16)
