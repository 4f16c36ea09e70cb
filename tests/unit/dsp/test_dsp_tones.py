"""Every tone of every country profile, as the box plays it, checked by numpy spectral and
timing analysis against the profile; the tone detector against generated and numpy signals."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from unit.dsp.dsp_signals import dbm0, frames, peak_frequency, sine, to_int16

from firmware.dsp import DspError, ToneDetector, ToneEvent, ToneGenerator
from firmware.dsp.country import TONE_NAMES, ToneSpec, available, load_profile

CASES = [(code, name) for code in available() for name in TONE_NAMES]


def play(spec: ToneSpec, seconds: float) -> npt.NDArray[np.int16]:
    with ToneGenerator(spec) as gen:
        return gen.read(round(seconds * 8000))


def active_runs(x: npt.NDArray[np.int16]) -> list[tuple[int, int]]:
    """(start, end) sample spans where the signal is on: |x| above a -40 dBm0 sine's peak,
    gaps under 3 ms (zero crossings, beat nulls of two-frequency tones) bridged."""
    on = np.abs(x.astype(np.float64)) > 32768 * 10 ** ((-40 - 3.14) / 20)
    idx = np.flatnonzero(on)
    if len(idx):
        for a, b in itertools.pairwise(idx):
            if 1 < b - a <= 24:
                on[a:b] = True
    edges = np.flatnonzero(np.diff(on.astype(np.int8)))
    bounds = [0, *(edges + 1).tolist(), len(x)]
    return [(a, b) for a, b in itertools.pairwise(bounds) if on[a]]


def split_by_frequency(x: npt.NDArray[np.int16], a: int, b: int) -> list[tuple[int, int]]:
    """Split an active span where its dominant frequency changes (10 ms windows, 1 ms hop)."""
    track = []
    for s in range(a, b - 80, 8):
        spec = np.abs(np.fft.rfft(x[s : s + 80].astype(np.float64), n=800))
        track.append(int(np.argmax(spec)) * 10)
    cuts = [a]
    # change points: where the track jumps by more than 150 Hz
    t = np.array(track)
    jumps = np.flatnonzero(np.abs(np.diff(t)) > 150)
    merged: list[int] = []
    for j in jumps:
        if not merged or j - merged[-1] > 10:
            merged.append(int(j))
    for j in merged:
        cuts.append(a + j * 8 + 40 + 8)  # centre of the window pair straddling the change
    cuts.append(b)
    return list(itertools.pairwise(cuts))


def two_peaks(x: npt.NDArray[np.int16]) -> list[float]:
    first = peak_frequency(x)
    n = len(x)
    t = np.arange(n) / 8000
    # remove the first tone by least squares, then find the second
    basis = np.stack([np.sin(2 * np.pi * first * t), np.cos(2 * np.pi * first * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, x.astype(np.float64), rcond=None)
    rest = x.astype(np.float64) - basis @ coef
    return sorted([first, peak_frequency(rest)])


@pytest.mark.parametrize("code,name", CASES)
def test_played_tone_matches_its_profile(code: str, name: str) -> None:
    spec = load_profile(code).tone(name)
    periods = 1 if spec.continuous else (3 if spec.repeat else 1)
    seconds = 12.0 if spec.continuous else periods * spec.period_ms / 1000
    x = play(spec, seconds)
    runs = active_runs(x)
    if spec.continuous:
        assert runs == [(0, len(x))] or (len(runs) == 1 and runs[0][0] <= 8)
        segments = [(8, len(x))]
        expected_bursts = [(spec.frequencies, len(x) // 8, 0)]
    else:
        if spec.sequential:
            runs = [piece for a, b in runs for piece in split_by_frequency(x, a, b)]
        expected_bursts = spec.bursts() * periods
        assert len(runs) == len(expected_bursts), runs
        segments = runs
        # timing: every burst and every pause within ±5 ms of the profile
        for i, ((a, b), (_, on_ms, off_ms)) in enumerate(zip(runs, expected_bursts, strict=True)):
            assert abs((b - a) / 8 - on_ms) <= 5, (i, (b - a) / 8, on_ms)
            if i + 1 < len(runs):
                gap = (runs[i + 1][0] - b) / 8
                assert abs(gap - off_ms) <= 5, (i, gap, off_ms)
        if not spec.repeat:
            assert np.all(x[runs[-1][1] + 8 :] == 0)  # played once, then silence
    # spectrum and level of every burst
    for (a, b), (freqs, _, _) in zip(segments, expected_bursts, strict=True):
        body = x[a + 40 : b - 40]
        measured = [peak_frequency(body)] if len(freqs) == 1 else two_peaks(body)
        for got, want in zip(measured, sorted(freqs), strict=True):
            assert abs(got - want) <= min(2.0, 0.01 * want), (measured, freqs)
        want_level = spec.level_dbm0 + 10 * np.log10(len(freqs))
        assert dbm0(body) == pytest.approx(want_level, abs=0.5)


def test_generator_reads_any_block_size_and_resets() -> None:
    spec = load_profile("dk").tones.busy
    with ToneGenerator(spec) as gen:
        blocks = np.concatenate([gen.read(n) for n in (1, 7, 160, 333, 0, 8000)])
        gen.reset()
        again = gen.read(len(blocks))
    assert np.array_equal(blocks, again)
    with pytest.raises(DspError):
        gen.read(160)


def events_for(code: str, audio: npt.NDArray[np.int16]) -> list[tuple[str | None, float]]:
    seen: list[ToneEvent] = []
    with ToneDetector(load_profile(code)) as det:
        for frame in frames(audio):
            seen.extend(det.feed(frame))
    return [(e.tone, e.sample / 8000) for e in seen]


def settled(events: list[tuple[str | None, float]], at: float) -> str | None:
    """The tone reported as present at time ``at`` (seconds)."""
    current = None
    for tone, t in events:
        if t <= at:
            current = tone
    return current


DETECTED = ("dial", "ringback", "busy", "congestion", "special_information")


@pytest.mark.parametrize("code", available())
@pytest.mark.parametrize("name", DETECTED)
def test_detector_recognizes_the_tones_the_box_plays(code: str, name: str) -> None:
    spec = load_profile(code).tone(name)
    seconds = 8.0 if spec.continuous else max(3 * spec.period_ms / 1000, 3.0)
    x = np.concatenate([play(spec, seconds), np.zeros(8000 * 3, dtype=np.int16)])
    events = events_for(code, x)
    if spec.repeat or spec.continuous:
        # From the end of the second period on, the right tone is present until it stops.
        assert settled(events, seconds - 0.05) == name, events
        calm_from = max(2 * spec.period_ms / 1000, 2.5)
        assert [t for t, s in events if calm_from < s < seconds] == []
    else:
        assert name in [t for t, _ in events], events
    assert settled(events, seconds + 2.9) is None, events  # and it is seen to end


def numpy_tone(
    freqs: tuple[float, ...], level: float, cadence: list[tuple[int, int]], seconds: float
) -> npt.NDArray[np.int16]:
    out: list[npt.NDArray[np.float64]] = []
    total = 0.0
    while total < seconds * 1000:
        for on, off in cadence or [(int(seconds * 1000), 0)]:
            burst = sum(sine(f, on, level, phase=0.7 * i) for i, f in enumerate(freqs))
            out += [np.asarray(burst), np.zeros(round(off * 8))]
            total += on + off
    return to_int16(np.concatenate(out))


@pytest.mark.parametrize(
    "code,name,freqs,cadence",
    [
        ("dk", "busy", (425.0,), [(500, 500)]),
        ("dk", "congestion", (425.0,), [(200, 200)]),
        ("dk", "ringback", (425.0,), [(1000, 4000)]),
        ("dk", "dial", (425.0,), []),
        ("se", "congestion", (425.0,), [(250, 750)]),
        ("de", "busy", (425.0,), [(480, 480)]),
        ("gb", "ringback", (400.0, 450.0), [(400, 200), (400, 2000)]),
        ("us", "busy", (480.0, 620.0), [(500, 500)]),
        ("us", "dial", (350.0, 440.0), []),
        ("us", "ringback", (440.0, 480.0), [(2000, 4000)]),
    ],
)
def test_detector_recognizes_numpy_tones_off_nominal(
    code: str, name: str, freqs: tuple[float, ...], cadence: list[tuple[int, int]]
) -> None:
    # 1% off frequency, 8% long cadence, 12 dB below the box's level: another exchange.
    skewed = [(round(on * 1.08), round(off * 1.08)) for on, off in cadence]
    seconds = 12.0 if cadence and sum(map(sum, cadence)) > 3000 else 6.0
    x = numpy_tone(tuple(f * 1.01 for f in freqs), -22.0, skewed, seconds)
    events = events_for(code, np.concatenate([x, np.zeros(8000 * 3, dtype=np.int16)]))
    assert settled(events, len(x) / 8000 - 0.1) == name, events


def test_us_detector_follows_dial_then_ringback_then_busy() -> None:
    # 350+440, 440+480 and 480+620 Hz share detectors; one country's descriptor keeps them
    # apart (mixing 425 Hz countries into it would not: spandsp's 128-sample blocks).
    us = load_profile("us")
    x = np.concatenate([play(us.tones.dial, 4.0), play(us.tones.ringback, 12.0)])
    x = np.concatenate([x, play(us.tones.busy, 4.0)])
    events = events_for("us", x)
    assert settled(events, 3.9) == "dial"
    assert settled(events, 15.9) == "ringback"
    assert settled(events, 19.9) == "busy"


def test_speech_like_noise_is_no_tone() -> None:
    rng = np.random.default_rng(5)
    noise = to_int16(rng.standard_normal(8000 * 6) * 3000)
    assert events_for("dk", noise) == []
