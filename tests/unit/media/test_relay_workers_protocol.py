"""The relay workers' command codec (sans-I/O): frames, chunking, refusals, counters."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.media.relay import FlowStats, RelayStats
from firmware.media.relay_protocol import (
    EMPTY_STATS,
    MAX_FRAME,
    SNAPSHOT,
    Close,
    Closed,
    Done,
    Failed,
    FailureKind,
    FrameDecoder,
    Message,
    Open,
    Opened,
    ProtocolError,
    Ready,
    SetRemote,
    Snapshots,
    decode,
    decode_snapshot,
    encode,
    encode_snapshot,
    snapshot_session,
)

STATS = RelayStats(
    FlowStats(1, 172, 2, 3, 4, 5),
    FlowStats(2**40, 7, 0, 0, 0, 0),
    FlowStats(9, 10, 11, 12, 13, 14),
    FlowStats(0, 0, 0, 0, 0, 1),
    ("192.0.2.7", 40000),
    ("2001:db8::1", 5004, 0, 0),
)

MESSAGES: list[Message] = [
    Open(1, "127.0.0.1", 2.0, 46),
    Open(2, "2001:db8::5", 0.5, None),
    SetRemote(3, 7, 0, "192.0.2.1", 4000, None),
    SetRemote(4, 7, 1, None, 0, None),
    SetRemote(5, 8, 1, "2001:db8::1", 5004, 6000),
    Close(6, 7),
    Ready(1234, 10_000, 14_999),
    Opened(1, 7, 10_002, 10_004),
    Done(3),
    Closed(6, 7, encode_snapshot(7, STATS)),
    Failed(2, FailureKind.OS, "address in use", 98),
    Failed(9, FailureKind.EXHAUSTED, "no free pair ✗"),
    Snapshots(encode_snapshot(1, STATS) + encode_snapshot(2, EMPTY_STATS)),
    Snapshots(b""),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message: Message) -> None:
    assert FrameDecoder().feed(encode(message)) == [message]


@given(st.lists(st.integers(min_value=1, max_value=64), max_size=200))
def test_any_chunking_gives_the_same_messages(cuts: list[int]) -> None:
    stream = b"".join(encode(m) for m in MESSAGES)
    decoder, got, at = FrameDecoder(), [], 0
    for n in cuts:
        got += decoder.feed(stream[at : at + n])
        at += n
    got += decoder.feed(stream[at:])
    assert got == MESSAGES


def test_counters_round_trip() -> None:
    record = encode_snapshot(42, STATS)
    assert len(record) == SNAPSHOT.size
    assert snapshot_session(record) == 42
    assert decode_snapshot(record) == STATS
    assert decode_snapshot(encode_snapshot(0, EMPTY_STATS)) == EMPTY_STATS


def _frame(body: bytes) -> bytes:
    return struct.pack("!I", len(body)) + body


@pytest.mark.parametrize(
    "frame",
    [
        _frame(b"\x63" + b"\x00" * 4),  # unknown kind
        _frame(b"\x0c\x00\x00\x00\x01" + b"x"),  # Done with a stray byte
        _frame(b"\x0b\x00\x00\x00\x01\x00"),  # Opened cut short
        _frame(b"\x0f\x00\x00\x00\x00" + b"\x00" * (SNAPSHOT.size - 1)),  # partial record
        _frame(b"\x02\x00\x00\x00\x01" + struct.pack("!IBHi", 1, 2, 4000, -1)),  # leg 2
        _frame(b"\x01\x00\x00\x00\x01" + struct.pack("!dh", 2.0, -1) + b"\x00\x05ab"),
        _frame(b"\x01\x00\x00\x00\x01" + struct.pack("!dh", 2.0, -1) + b"\x00\x02\xff\xfe"),
        struct.pack("!I", MAX_FRAME + 1),  # refused before it is buffered
    ],
)
def test_bad_frames_are_refused(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        FrameDecoder().feed(frame)


def test_an_unknown_failure_kind_is_refused() -> None:
    body = encode(Failed(1, FailureKind.VALUE, "x"))[4:]
    with pytest.raises(ProtocolError):
        decode(body[:5] + b"\x63" + body[6:])


def test_oversized_messages_are_not_sent() -> None:
    with pytest.raises(ProtocolError):
        encode(Snapshots(b"\x00" * (MAX_FRAME // SNAPSHOT.size + 1) * SNAPSHOT.size))
    with pytest.raises(ProtocolError):
        encode(Open(1, "x" * 70_000, 2.0, None))
