"""Talk-off: more than 10 minutes of synthetic speech in several voices and languages must
produce no digit, while digits mixed into the same speech are still found."""

from __future__ import annotations

import numpy as np
import pytest
from unit.dsp.dsp_signals import dbm0, dtmf, to_int16, white_noise
from unit.dsp.speech import speech_8k

from firmware.dsp import DtmfReceiver

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    try:
        return speech_8k()
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"cannot make talk-off speech: {exc}")


def run(audio: np.ndarray) -> list[tuple[float, str]]:
    hits = []
    with DtmfReceiver() as rx:
        for i in range(0, len(audio) - 159, 160):
            for d in rx.feed(audio[i : i + 160]):
                hits.append((i / 8000, d))
    return hits


def test_ten_minutes_of_speech_give_no_digits(speech: np.ndarray) -> None:
    assert len(speech) / 8000 >= 600
    active = speech[np.abs(speech) > 300]
    assert dbm0(active) > -20  # loud speech, the hard case
    assert run(speech) == []
    assert run((speech.astype(np.float64) * 0.25).astype(np.int16)) == []  # and 12 dB down


def test_digits_mixed_into_the_speech_are_found(speech: np.ndarray) -> None:
    part = speech[: 8000 * 60].astype(np.float64) * 0.1  # speech 20 dB down
    digits = "0123456789*#ABCD" * 2
    for n, d in enumerate(digits):
        at = 8000 + n * 8000 * 55 // len(digits)
        part[at : at + 480] += dtmf(d, 60, -8.0)
    assert "".join(d for _, d in run(to_int16(part))) == digits


def chord_sweep(seconds: float, level_dbm0: float) -> np.ndarray:
    """Music-like tones: major triads whose notes carry 2nd and 3rd harmonics, the root
    gliding from 300 Hz to 1.2 kHz (quasi-steady chords at every pitch on the way), then held
    major and minor triads on every semitone from 220 Hz to 880 Hz, 200 ms each."""
    n = int(8000 * seconds)
    t = np.arange(n) / 8000
    root = 300.0 * 4.0 ** (t / seconds)  # two octaves up
    phase = 2 * np.pi * np.cumsum(root) / 8000
    glide = np.zeros(n)
    for ratio in (1.0, 2 ** (4 / 12), 2 ** (7 / 12)):
        for harmonic, gain in ((1, 1.0), (2, 0.5), (3, 0.3)):
            glide += gain * np.sin(harmonic * ratio * phase + ratio)
    held = []
    tt = np.arange(1600) / 8000
    for semitone in range(25):
        f0 = 220.0 * 2 ** (semitone / 12)
        for third in (3, 4):
            chord = np.zeros(len(tt))
            for step in (0, third, 7):
                for harmonic, gain in ((1, 1.0), (2, 0.5), (3, 0.3)):
                    chord += gain * np.sin(2 * np.pi * harmonic * f0 * 2 ** (step / 12) * tt)
            held.append(chord * np.hanning(len(tt)) ** 0.25)
    music = np.concatenate([glide, *held])
    return music * 10 ** ((level_dbm0 - dbm0(music)) / 20)


def test_speech_in_white_noise_gives_no_digits(speech: np.ndarray) -> None:
    noise = white_noise(len(speech), -20.0, seed=7)
    assert abs(dbm0(noise) + 20.0) < 0.1
    assert run(to_int16(speech.astype(np.float64) + noise)) == []


def test_music_like_chords_give_no_digits(speech: np.ndarray) -> None:
    music = chord_sweep(60.0, -8.0)
    assert run(to_int16(music)) == []
    mixed = speech[: len(music)].astype(np.float64) * 0.5 + music * 10 ** (-6 / 20)
    assert run(to_int16(mixed)) == []
