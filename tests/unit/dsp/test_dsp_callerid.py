"""Caller ID round trips (ETSI FSK V.23, Bell 202 CLASS, DTMF CLIP) and independent checks of
the audio: FSK tones by numpy spectra, DTMF CLIP by the DTMF receiver."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt
import pytest
from unit.dsp.dsp_signals import frames, peak_frequency, white_noise

from firmware.dsp import DspError, DtmfReceiver, DtmfSender, load_profile
from firmware.dsp.callerid import (
    METHODS,
    QUIET_SETTLE,
    CallerId,
    CallerIdReceiver,
    CallerIdSender,
)
from firmware.media.codecs.g711 import alaw_decode, alaw_encode

WHEN = datetime(2031, 12, 24, 18, 5)


def receive(method: str, audio: npt.NDArray[np.int16]) -> list[CallerId]:
    padded = np.concatenate([np.zeros(1600, np.int16), audio, np.zeros(8000, np.int16)])
    out: list[CallerId] = []
    with CallerIdReceiver(method, clock=lambda: datetime(2031, 1, 1)) as rx:  # type: ignore[arg-type]
        for frame in frames(padded):
            out.extend(rx.feed(frame))
    return out


@pytest.mark.parametrize("method", ["fsk_v23", "fsk_bell202"])
def test_fsk_round_trip_number_name_and_date(method: str) -> None:
    audio = CallerIdSender(method).generate("4533221100", "Søren Ærø", WHEN)  # type: ignore[arg-type]
    assert receive(method, audio) == [CallerId("4533221100", "Søren Ærø", WHEN)]


@pytest.mark.parametrize("end", ["#", "C"])
def test_dtmf_clip_round_trip(end: str) -> None:
    audio = CallerIdSender("dtmf", dtmf_end=end).generate("33221100")  # type: ignore[arg-type]
    assert receive("dtmf", audio) == [CallerId("33221100")]


def test_danish_dtmf_clip_is_a_number_hash_with_the_profile_timing() -> None:
    cid = load_profile("dk").caller_id
    sender = CallerIdSender(
        "dtmf", dtmf_end=cid.dtmf_end, dtmf_on_ms=cid.dtmf_on_ms, dtmf_off_ms=cid.dtmf_off_ms
    )
    audio = sender.generate("4512345678")
    assert len(audio) == 12 * 8 * (cid.dtmf_on_ms + cid.dtmf_off_ms)
    with DtmfReceiver() as rx:
        digits = "".join(d for f in frames(audio) for d in rx.feed(f))
    assert digits == "A4512345678#"


@pytest.mark.parametrize(
    "method,mark,space", [("fsk_v23", 1300.0, 2100.0), ("fsk_bell202", 1200.0, 2200.0)]
)
def test_fsk_mark_hold_is_on_the_standard_mark_frequency(
    method: str, mark: float, space: float
) -> None:
    audio = CallerIdSender(method).generate("12345", "X", WHEN)  # type: ignore[arg-type]
    # Dominant frequency of each 5 ms window (data windows mix several 0.83 ms bits);
    peaks = np.array(
        [
            np.argmax(np.abs(np.fft.rfft(audio[i : i + 40].astype(np.float64), n=8000)))
            for i in range(0, len(audio) - 40, 40)
        ]
    )
    near_mark = np.abs(peaks - mark) < 150
    # the mark hold before the data (>= 55 bits) sits on the mark frequency.
    runs = np.flatnonzero(np.diff(np.concatenate([[0], near_mark.astype(int), [0]])))
    starts, ends = runs[::2], runs[1::2]
    longest = int(np.argmax(ends - starts))
    a, b = starts[longest] * 40, ends[longest] * 40
    assert (b - a) / 8 >= 40
    assert peak_frequency(audio[a:b]) == pytest.approx(mark, abs=0.01 * mark)


def test_alerting_tone_precedes_fsk_and_is_dual_tone() -> None:
    plain = CallerIdSender("fsk_v23").generate("5551234", None, WHEN)
    alerted = CallerIdSender("fsk_v23").generate("5551234", None, WHEN, alert=True)
    head = alerted[: len(alerted) - len(plain)]
    assert 0.08 <= len(head) / 8000 <= 0.2  # DT-AS is 100 ms (+ a short gap)
    spec = np.abs(np.fft.rfft(head.astype(np.float64), n=8000))
    top = sorted(int(i) for i in np.argsort(spec)[-2:])
    assert abs(top[0] - 2130) <= 10 and abs(top[1] - 2750) <= 10
    assert receive("fsk_v23", alerted) == [CallerId("5551234", None, WHEN)]


@pytest.mark.parametrize("method", METHODS)
def test_round_trip_through_line_noise(method: str) -> None:
    audio = CallerIdSender(method).generate("87654321", "Line Noise", WHEN)  # type: ignore[arg-type]
    noisy = np.clip(audio + white_noise(len(audio), -40.0, seed=7), -32768, 32767)
    got = receive(method, noisy.astype(np.int16))
    assert [g.number for g in got] == ["87654321"]


def test_bad_input() -> None:
    with pytest.raises(DspError):
        CallerIdSender("pulse")  # type: ignore[arg-type]
    with pytest.raises(DspError):
        CallerIdSender("fsk_v23").generate("12ab")
    with pytest.raises(DspError):
        CallerIdSender("fsk_v23").generate("123", "x" * 60)
    with pytest.raises(DspError):
        CallerIdReceiver("fsk")  # type: ignore[arg-type]


# --- the idle pattern is skipped without changing what is decoded --------------------------

IDLE_FRAME = bytes([0xD5]) * 160  # A-law digital silence, as an idle PCM timeslot carries
IDLE = alaw_decode(IDLE_FRAME)
IDLE.flags.writeable = False


def over_the_line(*parts: npt.NDArray[np.int16] | float) -> list[bytes]:
    """A-law frames of ``parts``: audio, or seconds of silence (any length, so signals
    start at every offset within a frame and within the detectors' blocks)."""
    chunks = [np.zeros(round(p * 8000), np.int16) if isinstance(p, float) else p for p in parts]
    audio = np.concatenate(chunks)
    audio = np.concatenate([audio, np.zeros(-len(audio) % 160, np.int16)])
    return [alaw_encode(audio[i : i + 160]) for i in range(0, len(audio), 160)]


def decode_both(method: str, line: list[bytes]) -> tuple[list[tuple[int, CallerId]], int]:
    """What a receiver fed every frame decodes, asserting that one given the idle frames by
    ``feed_quiet`` decodes the same in the same frames; returns it and the frames skipped."""
    got: dict[bool, list[tuple[int, CallerId]]] = {False: [], True: []}
    skipped = 0
    when = lambda: datetime(2031, 1, 1)  # noqa: E731
    with (
        CallerIdReceiver(method, clock=when) as plain,  # type: ignore[arg-type]
        CallerIdReceiver(method, clock=when) as quiet,  # type: ignore[arg-type]
    ):
        for n, frame in enumerate(line):
            got[False] += [(n, c) for c in plain.feed(alaw_decode(frame))]
            if frame == IDLE_FRAME:
                skipped += quiet.skipping
                got[True] += [(n, c) for c in quiet.feed_quiet(IDLE)]
            else:
                got[True] += [(n, c) for c in quiet.feed(alaw_decode(frame))]
    assert got[True] == got[False]
    return got[False], skipped


@pytest.mark.parametrize("method", METHODS)
def test_skipping_the_idle_pattern_decodes_the_same_messages(method: str) -> None:
    sender = CallerIdSender(method)  # type: ignore[arg-type]
    settle = QUIET_SETTLE / 8000
    parts: list[npt.NDArray[np.int16] | float] = [settle + 1.0]
    for n, lead in enumerate((0.0, 0.00625, 0.0123, 0.0191, 0.0377)):
        parts += [lead, sender.generate(f"4512{n}", "Idle Line", WHEN), settle + 0.5 + lead]
    got, skipped = decode_both(method, over_the_line(*parts))
    assert [c.number for _, c in got] == [f"4512{n}" for n in range(5)]
    assert skipped > 5 * 20  # it did skip: after every message, once settled


def test_skipping_keeps_dtmf_clip_gaps_and_the_stale_message_timeout() -> None:
    with DtmfSender(on_ms=70, off_ms=70) as keys:
        partial, rest, whole = keys.generate("A12"), keys.generate("34#"), keys.generate("A5#")
    settle = QUIET_SETTLE / 8000
    line = over_the_line(
        settle + 0.3,
        partial,
        2.0,  # a long pause inside a message: it still completes
        rest,
        settle + 0.01,
        partial,
        12.0,  # no terminator within 10 s: the receiver drops "A12" ...
        rest,  # ... and takes "34#" alone
        settle + 0.2,
        whole,
        0.5,
    )
    got, skipped = decode_both("dtmf", line)
    assert [c.number for _, c in got] == ["1234", "34", "5"]
    assert skipped > 0


def test_feed_quiet_takes_only_digital_silence() -> None:
    with CallerIdReceiver("dtmf") as rx:
        with pytest.raises(DspError):
            rx.feed_quiet(np.full(160, 1000, np.int16))
        with pytest.raises(DspError):
            rx.feed_quiet(np.arange(160, dtype=np.int16))
        assert rx.feed_quiet(IDLE) == []
        for _ in range(QUIET_SETTLE // len(IDLE)):
            rx.feed_quiet(IDLE)
        assert rx.skipping
    with pytest.raises(DspError):
        rx.feed_quiet(IDLE)  # closed, skipping or not
