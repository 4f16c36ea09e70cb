"""DTMF receiver against an ITU-T Q.24 grid of numpy-made signals, and the sender.

The signals come from numpy (tests/unit/dsp/dsp_signals.py), not from spandsp's generator,
so the receiver is not checked against its own library. Every case is tried at four
alignments against the receiver's 102-sample detection blocks.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from unit.dsp.dsp_signals import (
    COLS,
    KEYPAD,
    ROWS,
    dbm0,
    digit_freqs,
    dtmf,
    frames,
    silence,
    sine,
    to_int16,
    white_noise,
)

from firmware.dsp import DspError, DtmfEvent, DtmfReceiver, DtmfSender
from firmware.dsp.dtmf_confirm import PairTest

DIGITS = "".join(KEYPAD)
ALIGNMENTS = (100.0, 103.0, 107.0, 111.0)  # ms of silence before the digit


def detect(signal: npt.NDArray[np.float64], lead_ms: float = 100.0, **kw: object) -> str:
    audio = to_int16(np.concatenate([silence(lead_ms), signal, silence(200)]))
    with DtmfReceiver(**kw) as rx:  # type: ignore[arg-type]
        return "".join(d for frame in frames(audio) for d in rx.feed(frame))


def detected_each(make: object) -> dict[tuple[str, float], str]:
    return {(d, lead): detect(make(d), lead) for d in DIGITS for lead in ALIGNMENTS}  # type: ignore[operator]


def test_all_sixteen_digits_in_sequence() -> None:
    seq = np.concatenate([np.concatenate([dtmf(d, 50), silence(50)]) for d in DIGITS])
    assert detect(seq) == DIGITS


def test_each_digit_alone_at_every_alignment() -> None:
    got = detected_each(lambda d: dtmf(d, 50))
    assert all(got[(d, lead)] == d for d, lead in got)


@pytest.mark.parametrize("offset", [0.015, -0.015])
def test_accepts_either_tone_off_by_1_5_percent(offset: float) -> None:
    for low, high in ((offset, 0.0), (0.0, offset)):
        got = detected_each(lambda d, lo=low, hi=high: dtmf(d, 60, low_offset=lo, high_offset=hi))
        assert [k for k, v in got.items() if v != k[0]] == [], (low, high)


@pytest.mark.parametrize(
    "low,high",
    [(a * s, a * t) for a in (0.01, 0.0125) for s, t in itertools.product((1, -1), (1, -1))],
)
def test_accepts_both_tones_off_by_1_percent(low: float, high: float) -> None:
    # spandsp's own ground, and the overlap with the confirmation path (which starts at 1 %)
    got = detected_each(lambda d: dtmf(d, 60, low_offset=low, high_offset=high))
    assert [k for k, v in got.items() if v != k[0]] == []


@pytest.mark.parametrize("low,high", list(itertools.product((0.015, -0.015), (0.015, -0.015))))
def test_accepts_both_tones_off_by_1_5_percent(low: float, high: float) -> None:
    got = detected_each(lambda d: dtmf(d, 100, low_offset=low, high_offset=high))
    assert [k for k, v in got.items() if v != k[0]] == []


EDGE = list(itertools.product((0.015, -0.015), (0.015, -0.015)))


@pytest.mark.parametrize("low,high", list(itertools.product((1, -1), (1, -1))))
def test_accepts_both_tones_off_by_1_5_percent_plus_2_hz(low: int, high: int) -> None:
    def make(d: str) -> npt.NDArray[np.float64]:
        row, col = digit_freqs(d)
        lo, hi = low * (0.015 + 2.0 / row), high * (0.015 + 2.0 / col)
        return dtmf(d, 60, low_offset=lo, high_offset=hi)

    got = detected_each(make)
    assert [k for k, v in got.items() if v != k[0]] == []


@pytest.mark.parametrize("low,high", EDGE)
def test_detects_40_ms_digits_with_both_tones_1_5_percent_off(low: float, high: float) -> None:
    got = detected_each(lambda d: dtmf(d, 40, low_offset=low, high_offset=high))
    assert [k for k, v in got.items() if v != k[0]] == []


@pytest.mark.parametrize("low,high", EDGE)
def test_edge_of_tolerance_with_twist_and_low_level(low: float, high: float) -> None:
    for levels in ((-6.0, -14.0), (-10.0, -6.0), (-36.0, -36.0)):
        got = detected_each(lambda d, lv=levels: dtmf(d, 60, *lv, low_offset=low, high_offset=high))
        assert [k for k, v in got.items() if v != k[0]] == [], levels


def test_long_off_frequency_digits_are_reported_once_with_their_length() -> None:
    # spandsp drops such tones for two blocks now and then; that must not split the digit
    for low, high in EDGE:
        for d in "369ABCD#":
            events: list[DtmfEvent] = []
            audio = to_int16(
                np.concatenate(
                    [
                        silence(103),
                        dtmf(d, 600, -8.0, low_offset=low, high_offset=high),
                        silence(200),
                    ]
                )
            )
            with DtmfReceiver(on_event=events.append) as rx:
                assert "".join(c for f in frames(audio) for c in rx.feed(f)) == d
            assert [e.digit for e in events] == [d, None]
            assert 570 <= events[1].samples_since_last / 8 <= 610
            assert -10 <= events[0].level_dbm0 <= -2


def test_a_third_tone_spoils_an_off_frequency_digit() -> None:
    # the confirmation path keeps spandsp's energy-concentration test: no tolerance for that
    for third in (1100.0, 1800.0, 500.0):
        got = detected_each(
            lambda d, f=third: (
                dtmf(d, 80, low_offset=0.015, high_offset=-0.015) + sine(f, 80, -10.0)
            )
        )
        assert all(v == "" for v in got.values()), third


def test_single_off_frequency_tones_give_no_digits() -> None:
    for f in ROWS + COLS:
        for offset in (0.015, -0.015):
            assert detect(sine(f * (1 + offset), 300, -6.0)) == ""


@pytest.mark.parametrize("seed", [4, 5])
def test_detects_off_frequency_digits_in_white_noise_at_15_db_snr(seed: int) -> None:
    low, high = EDGE[seed % 4]
    seq = np.concatenate(
        [
            np.concatenate([dtmf(d, 50, -20.0, low_offset=low, high_offset=high), silence(60)])
            for d in DIGITS
        ]
    )
    noise = white_noise(len(seq) + 2400, dbm0(dtmf("5", 1000, -20.0)) - 15.0, seed=seed)
    assert detect(np.concatenate([silence(100), seq, silence(200)]) + noise, lead_ms=0.0) == DIGITS


@pytest.mark.parametrize("offset", [0.035, -0.035, 0.05, -0.05])
def test_rejects_tones_off_by_more_than_3_5_percent(offset: float) -> None:
    for low, high in ((offset, 0.0), (0.0, offset), (offset, offset), (offset, -offset)):
        got = detected_each(lambda d, lo=low, hi=high: dtmf(d, 80, low_offset=lo, high_offset=hi))
        assert [k for k, v in got.items() if v] == [], (low, high)


@pytest.mark.parametrize("twist", [0.0, 4.0, 6.0, 8.0])
def test_accepts_normal_twist_up_to_8_db(twist: float) -> None:
    # Normal twist: the high-group tone weaker than the low-group one.
    got = detected_each(lambda d: dtmf(d, 60, -6.0, -6.0 - twist))
    assert all(v == k[0] for k, v in got.items())


@pytest.mark.parametrize("twist", [2.0, 4.0])
def test_accepts_reverse_twist_up_to_4_db(twist: float) -> None:
    got = detected_each(lambda d: dtmf(d, 60, -6.0 - twist, -6.0))
    assert all(v == k[0] for k, v in got.items())


@pytest.mark.parametrize("normal,reverse", [(10.0, 0.0), (14.0, 0.0), (0.0, 6.0), (0.0, 10.0)])
def test_rejects_twist_beyond_the_limits(normal: float, reverse: float) -> None:
    got = detected_each(lambda d: dtmf(d, 60, -4.0 - reverse, -4.0 - normal))
    assert all(v == "" for v in got.values())


def test_twist_limits_are_configurable() -> None:
    loose = detect(dtmf("5", 60, -4.0, -16.0), normal_twist_db=14)
    strict = detect(dtmf("5", 60, -4.0, -10.0), normal_twist_db=4)
    assert (loose, strict) == ("5", "")


@pytest.mark.parametrize("ms", [40.0, 45.0, 60.0])
def test_detects_digits_of_40_ms_and_more(ms: float) -> None:
    got = detected_each(lambda d: dtmf(d, ms))
    assert all(v == k[0] for k, v in got.items())


@pytest.mark.parametrize("ms", [10.0, 15.0, 20.0])
def test_rejects_much_shorter_bursts(ms: float) -> None:
    got = detected_each(lambda d: dtmf(d, ms))
    assert all(v == "" for v in got.values())


def test_ten_digits_per_second_with_40_ms_tones_and_50_ms_pauses() -> None:
    seq = np.concatenate([np.concatenate([dtmf(d, 40), silence(50)]) for d in DIGITS * 2])
    assert detect(seq) == DIGITS * 2


def test_repeated_digit_needs_the_pause_between() -> None:
    seq = np.concatenate([dtmf("7", 60), silence(50), dtmf("7", 60), dtmf("7", 60)])
    assert detect(seq) == "77"  # the last two touch: one long 7


@pytest.mark.parametrize("level", [-4.0, -16.0, -26.0, -36.0])
def test_detects_levels_down_to_26_db_below_a_minus_10_dbm0_sender(level: float) -> None:
    got = detected_each(lambda d: dtmf(d, 60, level))
    assert all(v == k[0] for k, v in got.items())


@pytest.mark.parametrize("level", [-46.0, -55.0])
def test_rejects_very_low_levels(level: float) -> None:
    got = detected_each(lambda d: dtmf(d, 60, level))
    assert all(v == "" for v in got.values())


def test_detection_threshold_is_configurable() -> None:
    assert detect(dtmf("9", 60, -30.0), threshold_dbm0=-25) == ""
    assert detect(dtmf("9", 60, -30.0), threshold_dbm0=-35) == "9"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_detects_in_white_noise_at_15_db_snr(seed: float) -> None:
    seq = np.concatenate([np.concatenate([dtmf(d, 50, -20.0), silence(60)]) for d in DIGITS])
    signal_power = dbm0(dtmf("5", 1000, -20.0))
    noise = white_noise(len(seq) + 2400, signal_power - 15.0, seed=int(seed))
    noisy = np.concatenate([silence(100), seq, silence(200)]) + noise
    assert abs(dbm0(noise) - (signal_power - 15.0)) < 0.2
    assert detect(noisy, lead_ms=0.0) == DIGITS


def test_noise_alone_and_single_tones_give_no_digits() -> None:
    assert detect(white_noise(8000 * 5, -10.0)) == ""
    for f in (697.0, 941.0, 1209.0, 1633.0, 425.0, 1000.0):
        assert detect(sine(f, 500, -6.0)) == ""


def test_dial_tone_notch_keeps_digits_over_us_dial_tone() -> None:
    dial = sine(350.0, 1500, -10.0) + sine(440.0, 1500, -10.0)
    digits = np.concatenate([np.concatenate([dtmf(d, 60, -20.0), silence(60)]) for d in "159#"])
    mixed = dial.copy()
    mixed[800 : 800 + len(digits)] += digits
    assert detect(mixed, filter_dial_tone=True) == "159#"


def test_events_carry_starts_ends_and_durations() -> None:
    events: list[DtmfEvent] = []
    audio = to_int16(np.concatenate([silence(100), dtmf("4", 100), silence(200)]))
    with DtmfReceiver(on_event=events.append) as rx:
        currents = []
        for frame in frames(audio):
            rx.feed(frame)
            currents.append(rx.current)
    assert [e.digit for e in events] == ["4", None]
    # from detection (two 12.75 ms blocks in) to the end report: ~100 ms digit
    assert 75 <= events[1].samples_since_last / 8 <= 105
    assert "4" in currents and currents[-1] is None
    assert -15 <= events[0].level_dbm0 <= 0


def test_callback_exceptions_come_back_after_the_c_call() -> None:
    def boom(event: DtmfEvent) -> None:
        raise RuntimeError("from the callback")

    audio = to_int16(np.concatenate([dtmf("1", 80), silence(100)]))
    with DtmfReceiver(on_event=boom) as rx:
        with pytest.raises(RuntimeError, match="from the callback"):
            for frame in frames(audio):
                rx.feed(frame)
        rx.feed(np.zeros(160, dtype=np.int16))  # still usable afterwards
        assert rx.feed(np.zeros(0, dtype=np.int16)) == []


def test_bytes_input_and_bad_input() -> None:
    audio = to_int16(np.concatenate([dtmf("8", 80), silence(100)]))
    with DtmfReceiver() as rx:
        assert "".join(d for f in frames(audio) for d in rx.feed(f.tobytes())) == "8"
        with pytest.raises(DspError):
            rx.feed(b"\x00")
        with pytest.raises(DspError):
            rx.feed(np.zeros(160, dtype=np.float64))  # type: ignore[arg-type]
    with pytest.raises(DspError):
        rx.feed(np.zeros(160, dtype=np.int16))  # closed
    with pytest.raises(DspError):
        DtmfReceiver(normal_twist_db=30)


def test_sender_timing_level_and_round_trip() -> None:
    with DtmfSender(level_dbm0=-8, on_ms=70, off_ms=50) as tx:
        out = tx.generate("1")
        assert len(out) == 8 * (70 + 50)
        on = out[: 8 * 70]
        assert np.all(out[8 * 70 :] == 0)
        # two tones at -8 dBm0 each: total power -5 dBm0
        assert dbm0(on) == pytest.approx(-8.0 + 10 * np.log10(2), abs=0.5)
        seq = tx.generate(DIGITS)
    assert detect(seq.astype(np.float64)) == DIGITS


def test_sender_streams_frames_and_rejects_bad_digits() -> None:
    with DtmfSender(on_ms=50, off_ms=50) as tx:
        tx.put("42")
        audio = np.concatenate([tx.read() for _ in range(10)])
        assert np.count_nonzero(audio) > 0 and np.all(audio[-160:] == 0)
        with pytest.raises(DspError):
            tx.put("12E")
    assert detect(audio.astype(np.float64)) == "42"
    with pytest.raises(DspError):
        DtmfSender(level_dbm0=5)


@pytest.mark.parametrize("levels", [(-3.0, -21.0), (-13.0, -3.0)])
def test_wide_twist_limits_hold_at_the_edge_of_tolerance(levels: tuple[float, float]) -> None:
    # the confirmation path's autocorrelation screen is derived for any twist up to 20 dB
    for low, high in EDGE:
        got = {
            d: detect(
                dtmf(d, 60, *levels, low_offset=low, high_offset=high),
                normal_twist_db=20,
                reverse_twist_db=20,
            )
            for d in DIGITS
        }
        assert [d for d, v in got.items() if v != d] == [], (low, high)


def test_confirmation_test_needs_a_full_window() -> None:
    with pytest.raises(DspError):
        PairTest(normal_twist_db=9, reverse_twist_db=5, threshold_dbm0=-42).digit(
            np.zeros(100, dtype=np.int16)
        )
