"""G.711 tables: published code points, the digital milliwatt, round trips, monotonicity."""

from __future__ import annotations

import numpy as np
import pytest

from firmware.media.codecs.g711 import (
    G711Error,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)

ALL = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
CODES = bytes(range(256))


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xD5, 8), (0x55, -8), (0xD4, 24), (0xAA, 32256), (0x2A, -32256), (0xFA, 1008)],
)
def test_alaw_decode_code_points(code: int, value: int) -> None:
    assert int(alaw_decode(bytes([code]))[0]) == value


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xFF, 0), (0x7F, 0), (0xFE, 8), (0x80, 32124), (0x00, -32124), (0xEF, 132)],
)
def test_ulaw_decode_code_points(code: int, value: int) -> None:
    assert int(ulaw_decode(bytes([code]))[0]) == value


def test_silence_and_extremes_encode() -> None:
    assert alaw_encode(np.array([0, -1, 32767, -32768], dtype=np.int16)) == bytes(
        [0xD5, 0x55, 0xAA, 0x2A]
    )
    assert ulaw_encode(np.array([0, -1, 32767, -32768], dtype=np.int16)) == bytes(
        [0xFF, 0x7F, 0x80, 0x00]
    )


@pytest.mark.parametrize(
    ("decode", "encode", "dmw"),
    [
        (alaw_decode, alaw_encode, bytes([0x34, 0x21, 0x21, 0x34, 0xB4, 0xA1, 0xA1, 0xB4])),
        (ulaw_decode, ulaw_encode, bytes([0x1E, 0x0B, 0x0B, 0x1E, 0x9E, 0x8B, 0x8B, 0x9E])),
    ],
)
def test_digital_milliwatt(decode, encode, dmw: bytes) -> None:  # type: ignore[no-untyped-def]
    """The G.711 digital milliwatt (1 kHz at 8 kHz, phase pi/8) decodes to that sine."""
    x = decode(dmw * 100).astype(float)
    spectrum = np.abs(np.fft.rfft(x))
    assert np.argmax(spectrum) * 8000 / len(x) == pytest.approx(1000)
    ratio = abs(x[1] / x[0])
    assert ratio == pytest.approx(np.sin(3 * np.pi / 8) / np.sin(np.pi / 8), rel=0.03)
    assert encode(decode(dmw)) == dmw


@pytest.mark.parametrize(
    ("decode", "encode", "max_error"),
    [(alaw_decode, alaw_encode, 512), (ulaw_decode, ulaw_encode, 644)],
)
def test_every_sample_round_trips_within_a_step(decode, encode, max_error: int) -> None:  # type: ignore[no-untyped-def]
    y = decode(encode(ALL)).astype(np.int32)
    x = ALL.astype(np.int32)
    assert np.all(np.diff(y) >= 0), "companding must be monotonic"
    err = np.abs(y - x)
    assert err.max() <= max_error
    # Relative error stays small above the linear segments (log companding).
    big = np.abs(x) > 1024
    assert np.max(err[big] / np.abs(x[big])) < 0.07
    # Symmetric (one's complement folding): x and -1-x mirror each other.
    assert np.array_equal(decode(encode(ALL[::-1])), -decode(encode(ALL)))


def test_every_code_round_trips() -> None:
    assert alaw_encode(alaw_decode(CODES)) == CODES
    # µ-law has two zeros (0xFF and 0x7F); 0 encodes as the positive one.
    expected = bytearray(CODES)
    expected[0x7F] = 0xFF
    assert ulaw_encode(ulaw_decode(CODES)) == bytes(expected)


def test_bytes_input_is_s16le() -> None:
    samples = np.array([0, 1000, -1000, 32767], dtype=np.int16)
    assert alaw_encode(samples.astype("<i2").tobytes()) == alaw_encode(samples)
    assert ulaw_encode(samples.astype("<i2").tobytes()) == ulaw_encode(samples)


def test_other_integer_dtypes_accepted_in_range() -> None:
    samples = np.array([0, 1000, -1000], dtype=np.int32)
    assert alaw_encode(samples) == alaw_encode(samples.astype(np.int16))


def test_frame_shape_and_dtype() -> None:
    frame = alaw_decode(b"\xd5" * 160)
    assert frame.dtype == np.int16 and frame.shape == (160,)
    frame[0] = 1  # a copy, not a view of the table
    assert int(alaw_decode(b"\xd5")[0]) == 8


@pytest.mark.parametrize(
    "bad",
    [b"\x00\x01\x02", np.array([0.5]), np.array([40000], dtype=np.int32), "text"],
)
def test_bad_input_raises(bad: object) -> None:
    with pytest.raises(G711Error):
        alaw_encode(bad)  # type: ignore[arg-type]
    with pytest.raises(G711Error):
        ulaw_encode(bad)  # type: ignore[arg-type]


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(G711Error):
        alaw_decode([1, 2, 3])  # type: ignore[arg-type]
