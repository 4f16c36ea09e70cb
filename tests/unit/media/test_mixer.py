"""Conference mixer: who hears whom, checked by the spectrum of each member's output."""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping

import numpy as np
import pytest

from firmware.media.mixer import Mixer, MixerError, Role

RATE = 8000
TICKS = 50  # one second: 1 Hz FFT bins
FREQS = {"alice": 300, "bob": 700, "carol": 1100, "boss": 1700}


def tone(freq: int, amplitude: float = 6000.0) -> np.ndarray:
    t = np.arange(TICKS * 160) / RATE
    return np.round(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def run(mixer: Mixer, talkers: Mapping[Hashable, np.ndarray]) -> dict[Hashable, np.ndarray]:
    """Feed each talker's signal frame by frame; return each member's whole output."""
    outputs: dict[Hashable, list[np.ndarray]] = {m: [] for m in mixer.members}
    for i in range(TICKS):
        frames = {m: s[i * 160 : (i + 1) * 160] for m, s in talkers.items()}
        for member, frame in mixer.mix(frames).items():
            assert frame.dtype == np.int16 and frame.shape == (160,)
            outputs[member].append(frame)
    return {m: np.concatenate(f) for m, f in outputs.items()}


def heard(signal: np.ndarray) -> set[int]:
    """Frequencies present: 1 Hz bins whose sine amplitude exceeds 300 (inputs are 6000)."""
    mags = np.abs(np.fft.rfft(signal.astype(np.float64))) / (len(signal) / 2)
    return {int(f) for f in np.nonzero(mags > 300)[0]}


def amplitude_at(signal: np.ndarray, freq: int) -> float:
    return float(np.abs(np.fft.rfft(signal.astype(np.float64)))[freq] / (len(signal) / 2))


def conference(*extra: str) -> Mixer:
    mixer = Mixer()
    for name in ("alice", "bob", "carol", *extra):
        mixer.add(name)
    return mixer


def signals(*names: str) -> dict[Hashable, np.ndarray]:
    return {n: tone(FREQS[n]) for n in names}


def test_three_parties_each_hear_exactly_the_other_two() -> None:
    out = run(conference(), signals("alice", "bob", "carol"))
    assert heard(out["alice"]) == {700, 1100}
    assert heard(out["bob"]) == {300, 1100}
    assert heard(out["carol"]) == {300, 700}
    # Nothing is lost or scaled in the sum.
    assert amplitude_at(out["alice"], 700) == pytest.approx(6000, rel=0.01)


def test_silent_or_missing_inputs_are_silence() -> None:
    mixer = conference()
    frames = mixer.mix({"alice": tone(300)[:160], "bob": None})
    assert not frames["alice"].any()
    assert np.array_equal(frames["bob"], tone(300)[:160])
    assert np.array_equal(frames["carol"], tone(300)[:160])


def test_sums_saturate_instead_of_wrapping() -> None:
    mixer = conference()
    loud = np.full(160, 30000, dtype=np.int16)
    out = mixer.mix({"alice": loud, "bob": loud, "carol": -loud})
    assert (out["carol"] == 32767).all()
    assert (out["alice"] == 0).all()  # 30000 - 30000
    out = mixer.mix({"alice": -loud, "bob": -loud})
    assert (out["carol"] == -32768).all()


def test_mute_and_gain() -> None:
    mixer = conference()
    mixer.set_muted("bob", True)
    mixer.set_gain("carol", 0.5)
    out = run(mixer, signals("alice", "bob", "carol"))
    assert heard(out["alice"]) == {1100}
    assert amplitude_at(out["alice"], 1100) == pytest.approx(3000, rel=0.01)
    assert heard(out["bob"]) == {300, 1100}  # muted still hears
    mixer.set_muted("bob", False)
    mixer.set_gain("carol", 2.0)
    out = run(mixer, signals("alice", "bob", "carol"))
    assert amplitude_at(out["bob"], 1100) == pytest.approx(12000, rel=0.01)
    assert mixer.member("carol").gain == 2.0


def test_supervisor_listen_hears_all_heard_by_none() -> None:
    mixer = conference()
    mixer.add("boss", role=Role.LISTEN)
    out = run(mixer, signals("alice", "bob", "carol", "boss"))
    assert heard(out["boss"]) == {300, 700, 1100}
    assert heard(out["alice"]) == {700, 1100}
    assert heard(out["bob"]) == {300, 1100}
    assert heard(out["carol"]) == {300, 700}


def test_supervisor_whisper_heard_only_by_the_agent() -> None:
    mixer = conference()
    mixer.add("boss", role=Role.WHISPER, target="alice")
    out = run(mixer, signals("alice", "bob", "carol", "boss"))
    assert heard(out["boss"]) == {300, 700, 1100}
    assert heard(out["alice"]) == {700, 1100, 1700}
    assert heard(out["bob"]) == {300, 1100}
    assert heard(out["carol"]) == {300, 700}


def test_supervisor_barge_is_a_full_participant() -> None:
    mixer = conference()
    mixer.add("boss", role=Role.LISTEN)
    mixer.set_role("boss", Role.WHISPER, "bob")
    mixer.set_role("boss", Role.BARGE)
    out = run(mixer, signals("alice", "bob", "carol", "boss"))
    assert heard(out["boss"]) == {300, 700, 1100}
    assert heard(out["alice"]) == {700, 1100, 1700}
    assert heard(out["bob"]) == {300, 1100, 1700}
    assert heard(out["carol"]) == {300, 700, 1700}


def test_whisperer_falls_back_to_listen_when_the_agent_leaves() -> None:
    mixer = conference()
    mixer.add("boss", role=Role.WHISPER, target="alice")
    mixer.remove("alice")
    assert mixer.member("boss").role is Role.LISTEN
    out = run(mixer, signals("bob", "carol", "boss"))
    assert heard(out["bob"]) == {1100}
    assert heard(out["boss"]) == {700, 1100}


def test_two_party_conference_is_a_plain_bridge() -> None:
    mixer = Mixer()
    mixer.add(1)
    mixer.add(2)
    a, b = tone(300)[:160], tone(700)[:160]
    out = mixer.mix({1: a, 2: b})
    assert np.array_equal(out[1], b) and np.array_equal(out[2], a)


def test_errors() -> None:
    mixer = conference()
    with pytest.raises(MixerError, match="already"):
        mixer.add("alice")
    with pytest.raises(MixerError, match="not in the conference"):
        mixer.mix({"mallory": None})
    with pytest.raises(MixerError, match="160 int16"):
        mixer.mix({"alice": np.zeros(80, dtype=np.int16)})
    with pytest.raises(MixerError, match="160 int16"):
        mixer.mix({"alice": np.zeros(160, dtype=np.float32)})
    with pytest.raises(MixerError, match="target"):
        mixer.add("boss", role=Role.WHISPER)
    assert "boss" not in mixer.members  # a failed add leaves nothing behind
    with pytest.raises(MixerError, match="not in the conference"):
        mixer.add("boss", role=Role.WHISPER, target="nobody")
    mixer.add("boss", role=Role.LISTEN)
    with pytest.raises(MixerError, match="not a participant"):
        mixer.add("boss2", role=Role.WHISPER, target="boss")
    with pytest.raises(MixerError, match="only whisper"):
        mixer.set_role("boss", Role.BARGE, "alice")
    with pytest.raises(MixerError, match="gain"):
        mixer.set_gain("alice", -1)
    with pytest.raises(MixerError):
        mixer.remove("nobody")
    assert len(mixer) == 4


@pytest.mark.parametrize("size", [3, 10, 30])
def test_measure_mix_cost(size: int, capsys: pytest.CaptureFixture[str]) -> None:
    """Prints µs per 20 ms tick; asserts only that every member got a frame."""
    mixer = Mixer()
    for member in range(size):
        mixer.add(member)
    frames = {m: tone(300 + 10 * m)[:160] for m in range(size)}
    ticks = 500
    start = time.perf_counter()
    for _ in range(ticks):
        out = mixer.mix(frames)
    elapsed = (time.perf_counter() - start) / ticks * 1e6
    assert len(out) == size
    with capsys.disabled():
        print(
            f"\nmixer {size} parties: {elapsed:.1f} µs per tick ({elapsed / size:.1f} per member)"
        )
