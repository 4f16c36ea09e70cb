"""RTP header parse/serialize (RFC 3550 §5.1): every field, optional parts, bad input."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.media.rtp import RtpError, RtpExtension, RtpPacket, build_rtp, parse_rtp


def test_fixed_header_fields() -> None:
    data = bytes.fromhex("80 88 1234 00010203 deadbeef") + b"\xd5" * 160
    p = parse_rtp(data)
    assert (p.payload_type, p.marker, p.sequence, p.timestamp, p.ssrc) == (
        8,
        True,
        0x1234,
        0x00010203,
        0xDEADBEEF,
    )
    assert p.payload == b"\xd5" * 160
    assert p.csrc == () and p.extension is None and p.padding == 0
    assert p.to_bytes() == data


def test_build_rtp_matches_packet_and_masks_counters() -> None:
    data = build_rtp(0, 65536 + 5, 2**32 + 7, 99, b"\xff" * 4, marker=False)
    p = parse_rtp(data)
    assert (p.sequence, p.timestamp, p.ssrc, p.payload_type, p.marker) == (5, 7, 99, 0, False)
    assert RtpPacket(0, 5, 7, 99, b"\xff" * 4).to_bytes() == data


def test_csrc_extension_padding() -> None:
    header = bytes([0x80 | 0x20 | 0x10 | 2, 101]) + struct.pack("!HII", 7, 160, 0x11)
    csrcs = struct.pack("!II", 0xA, 0xB)
    ext = struct.pack("!HH", 0xBEDE, 1) + b"\x10\xaa\x00\x00"
    payload = b"\x05\x0a\x00\xa0"
    pad = b"\x00\x00\x03"
    p = parse_rtp(header + csrcs + ext + payload + pad)
    assert p.csrc == (0xA, 0xB)
    assert p.extension == RtpExtension(0xBEDE, b"\x10\xaa\x00\x00")
    assert p.payload == payload and p.padding == 3
    assert p.to_bytes() == header + csrcs + ext + payload + pad


def test_replace_validates() -> None:
    p = RtpPacket(8, 1, 2, 3, b"x")
    assert p.replace(sequence=9).sequence == 9
    with pytest.raises(RtpError):
        p.replace(sequence=70000)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x80\x08\x00", "shorter"),
        (bytes.fromhex("40080001000000000000000a"), "version"),
        (bytes.fromhex("83080001000000000000000a") + b"\x00" * 8, "CSRC"),
        (bytes.fromhex("90080001000000000000000a") + b"\xbe\xde", "extension"),
        (bytes.fromhex("90080001000000000000000a") + b"\xbe\xde\x00\x05", "extension"),
        (bytes.fromhex("a0080001000000000000000a") + b"\x00", "padding"),
        (bytes.fromhex("a0080001000000000000000a") + b"\x01\x09", "padding"),
        (bytes.fromhex("81c8000c000000000000000a"), "RTCP"),
    ],
)
def test_malformed_raise_rtp_error(data: bytes, reason: str) -> None:
    with pytest.raises(RtpError, match=reason):
        parse_rtp(data)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"payload_type": 128},
        {"sequence": -1},
        {"timestamp": 2**32},
        {"ssrc": -5},
        {"csrc": tuple(range(16))},
        {"padding": 256},
    ],
)
def test_out_of_range_fields(kwargs: dict[str, int]) -> None:
    base = {"payload_type": 0, "sequence": 0, "timestamp": 0, "ssrc": 0}
    with pytest.raises(RtpError):
        RtpPacket(**(base | kwargs))  # type: ignore[arg-type]


@given(
    pt=st.integers(0, 127).filter(lambda v: not 72 <= v <= 76),
    seq=st.integers(0, 0xFFFF),
    ts=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=200),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
    ext=st.none()
    | st.builds(
        RtpExtension,
        st.integers(0, 0xFFFF),
        st.binary(max_size=12).map(lambda b: b[: len(b) // 4 * 4]),
    ),
    padding=st.integers(0, 255),
)
def test_round_trip(pt, seq, ts, ssrc, payload, marker, csrc, ext, padding) -> None:  # type: ignore[no-untyped-def]
    p = RtpPacket(pt, seq, ts, ssrc, payload, marker, csrc, ext, padding)
    assert parse_rtp(p.to_bytes()) == p


@given(st.binary(max_size=64))
def test_garbage_never_crashes(data: bytes) -> None:
    with contextlib.suppress(RtpError):
        parse_rtp(data)
