"""Talk-off: more than 10 minutes of synthetic speech in several voices and languages must
produce no digit, while digits mixed into the same speech are still found."""

from __future__ import annotations

import numpy as np
import pytest
from unit.dsp.dsp_signals import dbm0, dtmf, to_int16
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
