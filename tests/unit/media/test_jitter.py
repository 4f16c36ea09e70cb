"""Jitter buffer under simulated networks: steady frames, adaptation, loss, reorder,
duplicates, clock drift, resync. Time is simulated; nothing sleeps."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import pytest

from firmware.media.codecs import PCMA, create_codec
from firmware.media.jitter import JitterBuffer, RepeatFade

CODEC = create_codec(PCMA)
Jitter = Callable[[int, random.Random], float]


def make_audio(
    seconds: float, talk: tuple[float, float] | None = None, freq: float = 440
) -> np.ndarray:
    t = np.arange(int(seconds * 8000)) / 8000
    audio = 8000 * np.sin(2 * np.pi * freq * t)
    if talk:  # (period, on): talkspurts with silence between
        audio = np.where((t % talk[0]) < talk[1], audio, 0)
    return audio.astype(np.int16)


def simulate(
    audio: np.ndarray,
    jb: JitterBuffer,
    *,
    jitter: Jitter = lambda i, rng: 0.0,
    loss: float = 0.0,
    dup: float = 0.0,
    drift: float = 0.0,
    seed: int = 1,
    ssrc_at: int | None = None,
    ts_jump_at: int | None = None,
    tick_phase: float = 0.0137,
    dtx: bool = False,
) -> tuple[np.ndarray, list[float], list[float]]:
    """Send 20 ms packets (sender clock ``drift`` fast), deliver through the network, tick."""
    rng = random.Random(seed)
    n = len(audio) // 160
    arrivals = []
    for i in range(n):
        if rng.random() < loss or (dtx and not audio[i * 160 : (i + 1) * 160].any()):
            continue
        sent = 0.5 + i * 0.02 * (1 - drift)
        at = sent + 0.03 + jitter(i, rng)
        payload = CODEC.encode(audio[i * 160 : (i + 1) * 160])
        silent_before = i > 0 and not audio[(i - 1) * 160 : i * 160].any()
        arrivals.append(
            (at, i, payload, i == 0 or (silent_before and audio[i * 160 : (i + 1) * 160].any()))
        )
        if rng.random() < dup:
            arrivals.append((at + 0.002, i, payload, False))
    arrivals.sort(key=lambda a: a[0])
    out, delays, targets = [], [], []
    k = 0
    now = tick_phase
    end = 0.5 + n * 0.02 + 0.6
    while now < end:
        while k < len(arrivals) and arrivals[k][0] <= now:
            at, i, payload, marker = arrivals[k]
            ssrc = 2 if ssrc_at is not None and i >= ssrc_at else 1
            ts = 1000 + 160 * i + (8000 * 30 if ts_jump_at is not None and i >= ts_jump_at else 0)
            jb.put((65500 + i) & 0xFFFF, ts & 0xFFFFFFFF, payload, at, ssrc=ssrc, marker=marker)
            k += 1
        frame = jb.get(now)
        assert frame.dtype == np.int16 and frame.shape == (160,)
        out.append(frame)
        delays.append(jb.current_delay)
        targets.append(jb.target)
        now += 0.02
    return np.concatenate(out), delays, targets


def reference(audio: np.ndarray) -> np.ndarray:
    return CODEC.decode(CODEC.encode(audio))


def aligned(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    start = int(np.flatnonzero(out)[0])
    return out[start : start + len(ref)]


@pytest.fixture(params=["spandsp", "repeat"])
def jb(request: pytest.FixtureRequest) -> JitterBuffer:
    plc = None if request.param == "spandsp" else RepeatFade()
    buffer = JitterBuffer(CODEC.decode, plc=plc)
    yield buffer  # type: ignore[misc]
    buffer.close()


def test_clean_network_plays_every_sample_exactly(jb: JitterBuffer) -> None:
    audio = make_audio(4)
    out, delays, _ = simulate(audio, jb)
    assert np.array_equal(aligned(out, audio), reference(audio))
    s = jb.stats
    assert (s.received, s.played, s.late, s.duplicates, s.resyncs) == (200, 200, 0, 0, 0)
    assert s.target_delay == pytest.approx(jb.min_delay)
    # Continuous talk is never cut to shrink the start-up delay (two frames) to the target.
    assert max(delays[20:200]) < 0.04 + 0.021


def test_reorder_and_duplicates_still_bit_exact(jb: JitterBuffer) -> None:
    audio = make_audio(6)
    # Every 7th packet overtaken by the next one (10 ms extra), 10 % duplicates.
    swap: Jitter = lambda i, rng: 0.012 if i % 7 == 3 else 0.0  # noqa: E731
    out, _, _ = simulate(audio, jb, jitter=swap, dup=0.1)
    assert np.array_equal(aligned(out, audio), reference(audio))
    assert jb.stats.duplicates > 10 and jb.stats.late == 0


def test_jitter_adapts_target_and_keeps_late_packets_rare(jb: JitterBuffer) -> None:
    audio = make_audio(20)
    out, delays, _targets = simulate(audio, jb, jitter=lambda i, rng: rng.uniform(0, 0.08))
    s = jb.stats
    assert 0.07 < s.target_delay < 0.1
    assert s.late + s.concealed - 30 < 0.02 * 1000  # < 2 % of frames lost to lateness
    assert max(delays[100:1000]) < s.target_delay + 0.025
    # The tone is intact: its frequency dominates the output.
    spectrum = np.abs(np.fft.rfft(out.astype(float)))
    assert np.argmax(spectrum) * 8000 / len(out) == pytest.approx(440, abs=2)


def test_target_rises_with_jitter_and_falls_when_it_calms(jb: JitterBuffer) -> None:
    audio = make_audio(24, talk=(1.0, 0.7))

    def calm_then_rough_then_calm(i, rng):
        return rng.uniform(0, 0.1) if 300 <= i < 700 else rng.uniform(0, 0.004)

    _, delays, targets = simulate(audio, jb, jitter=calm_then_rough_then_calm)
    tick = lambda t: int((t - 0.0137) / 0.02)  # noqa: E731
    assert targets[tick(6.4)] < 0.03  # calm
    assert targets[tick(14.4)] > 0.08  # rough
    assert targets[tick(24.4)] < 0.03  # calm again: the window forgot
    assert delays[tick(24.4)] < 0.06  # and the delay came down in the silences
    assert jb.stats.dropped >= 2


def test_loss_is_concealed_one_frame_per_lost_packet(jb: JitterBuffer) -> None:
    audio = make_audio(20)
    out, _, _ = simulate(audio, jb, loss=0.05, jitter=lambda i, rng: rng.uniform(0, 0.01))
    s = jb.stats
    lost = 1000 - s.received
    assert 30 < lost < 70
    tail = 30  # ticks after the stream ended, concealed then silent
    assert s.concealed - tail == pytest.approx(lost, abs=3)
    assert s.late == 0
    assert len(out) % 160 == 0


@pytest.mark.parametrize("drift", [0.005, -0.005])
def test_clock_drift_is_absorbed_in_silences(jb: JitterBuffer, drift: float) -> None:
    audio = make_audio(30, talk=(2.0, 1.2))
    _, delays, _ = simulate(audio, jb, drift=drift)
    s = jb.stats
    # 0.5 % of 30 s is 150 ms, taken out (fast sender) or added (slow) in the silences:
    # whole frames dropped or held, and the cursor placed afresh at talkspurt starts.
    added = (s.held - s.dropped) * 0.02 + s.realigned
    assert added == pytest.approx(-drift * 30, abs=0.045)
    # Nothing concealed but the tail after the stream ended (which a fast sender reaches
    # 150 ms early).
    assert s.concealed <= 31 + max(drift, 0) * 30 / 0.02
    assert max(delays[50:1500]) < 0.065 and s.late == 0


@pytest.mark.parametrize("drift", [0.0, 0.005, -0.005])
def test_silence_suppression_talkspurts_replaced(jb: JitterBuffer, drift: float) -> None:
    """DTX: nothing is sent in silences; each talkspurt (marker) is placed afresh."""
    audio = make_audio(30, talk=(2.0, 1.2))
    out, delays, _ = simulate(
        audio, jb, drift=drift, dtx=True, jitter=lambda i, rng: rng.uniform(0, 0.01)
    )
    s = jb.stats
    assert s.received == 15 * 60 and s.late == 0
    assert max(d for d in delays[50:1500] if d) < 0.07
    # Every talkspurt is played whole: the tone's energy matches what was sent.
    sent = np.sum(reference(audio).astype(float) ** 2)
    assert np.sum(out.astype(float) ** 2) == pytest.approx(sent, rel=0.02)
    if drift:
        # Slack: the start-up target (40 ms) settles to 20 ms, placement sees 0-10 ms jitter.
        assert abs(s.realigned + (s.held - s.dropped) * 0.02 + drift * 30) < 0.06


def test_new_ssrc_and_timestamp_jump_resync(jb: JitterBuffer) -> None:
    audio = make_audio(6)
    out, _delays, _ = simulate(audio, jb, ssrc_at=100)
    assert jb.stats.resyncs == 1 and jb.stats.late == 0
    jb2 = JitterBuffer(CODEC.decode, plc=RepeatFade())
    out2, delays2, _ = simulate(audio, jb2, ts_jump_at=150)
    assert jb2.stats.resyncs == 1
    assert max(delays2[160:300]) < 0.05
    # Audio keeps flowing after the restart: the last second is the tone, not silence.
    for o in (out, out2):
        assert np.mean(np.abs(o[-8000 - 30 * 160 : -30 * 160].astype(int))) > 3000


def test_before_any_packet_silence() -> None:
    jb = JitterBuffer(CODEC.decode, plc=RepeatFade())
    assert not jb.get(0.0).any() and len(jb.get(0.02)) == 160


def test_bad_bounds() -> None:
    with pytest.raises(ValueError):
        JitterBuffer(CODEC.decode, plc=RepeatFade(), min_delay=0.2, max_delay=0.1)
