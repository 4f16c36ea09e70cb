"""Players: seamless looping, announcements with an end event, shared MOH, tones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from firmware.media.codecs.g711 import alaw_encode
from firmware.media.player import (
    FRAME_SAMPLES,
    SILENCE,
    AudioLibrary,
    BufferSource,
    FileSource,
    PlayerError,
    PlayerHub,
    Source,
    ToneSource,
    ToneSpec,
)
from firmware.media.wav import load_audio, write_alaw, write_wav


def ramp(n: int, start: int = 0) -> np.ndarray:
    """Distinct samples, so any gap, repeat or shift shows."""
    return ((np.arange(n) + start) % 30000).astype(np.int16)


def play(source: Source, frames: int) -> list[np.ndarray | None]:
    return [source.read() for _ in range(frames)]


def spectrum_peaks(samples: np.ndarray, threshold: float = 0.1) -> set[int]:
    """Frequencies (Hz, 1 Hz bins over 1 s) holding > threshold of the strongest bin."""
    mags = np.abs(np.fft.rfft(samples[:8000].astype(np.float64)))
    return {int(f) for f in np.nonzero(mags > threshold * mags.max())[0]}


@pytest.mark.parametrize("length", [1234, 160, 100, 480, 7])
def test_loop_is_seamless(length: int) -> None:
    samples = ramp(length, 1)
    source = BufferSource(samples, loop=True)
    frames = play(source, 25)
    assert all(f is not None and f.shape == (FRAME_SAMPLES,) for f in frames)
    out = np.concatenate([f for f in frames if f is not None])
    expected = np.tile(samples, 25 * FRAME_SAMPLES // length + 1)[: len(out)]
    assert np.array_equal(out, expected)  # no gap, no repeat at the loop point
    assert not source.ended


def test_once_pads_last_frame_and_fires_end_event_once() -> None:
    source = BufferSource(ramp(550, 1))
    ended: list[Source] = []
    source.on_end(ended.append)
    frames = play(source, 6)
    assert [f is None for f in frames] == [False] * 4 + [True] * 2
    out = np.concatenate([f for f in frames if f is not None])
    assert np.array_equal(out[:550], ramp(550, 1)) and not out[550:].any()
    assert ended == [source] and source.ended
    late: list[Source] = []
    source.on_end(late.append)  # registering after the end still gets told
    assert late == [source]


def test_once_exact_multiple_ends_on_the_last_full_frame() -> None:
    source = BufferSource(ramp(320))
    ended: list[Source] = []
    source.on_end(ended.append)
    assert source.read() is not None and not ended
    assert source.read() is not None and ended == [source]
    assert source.read() is None


def test_stop_ends_early() -> None:
    source = BufferSource(ramp(1600), loop=True)
    ended: list[Source] = []
    source.on_end(ended.append)
    source.read()
    source.stop()
    assert source.read() is None and ended == [source]


def test_file_list_plays_back_to_back(tmp_path: Path) -> None:
    a, b = ramp(300, 1), ramp(250, 5000)
    write_wav(tmp_path / "a.wav", a)
    write_alaw(tmp_path / "b.alaw", b)
    source = FileSource([tmp_path / "a.wav", tmp_path / "b.alaw"], loop=True)
    out = np.concatenate([f for f in play(source, 14) if f is not None])
    one_pass = np.concatenate([a, load_audio(tmp_path / "b.alaw")])
    assert np.array_equal(out, np.tile(one_pass, 5)[: len(out)])


def test_frames_are_read_only() -> None:
    source = BufferSource(ramp(1000), loop=True)
    for frame in play(source, 10):
        assert frame is not None
        with pytest.raises(ValueError):
            frame[0] = 1
    assert not SILENCE.flags.writeable


def test_bad_input() -> None:
    with pytest.raises(PlayerError, match="no audio"):
        BufferSource(np.zeros(0, dtype=np.int16))
    with pytest.raises(PlayerError, match="int16"):
        BufferSource(np.zeros(10, dtype=np.float32))
    with pytest.raises(PlayerError, match="mono"):
        BufferSource(np.zeros((10, 2), dtype=np.int16))
    with pytest.raises(PlayerError, match="no files"):
        FileSource([])


# --------------------------------------------------------------------------- hot swap


def test_hot_swap_now_and_at_loop() -> None:
    old, new = ramp(400, 1), ramp(320, 10_000)
    source = BufferSource(old, loop=True)
    source.read()
    source.set_samples(new)
    first = source.read()
    assert first is not None and np.array_equal(first, new[:160])

    source = BufferSource(old, loop=True)
    source.read()
    source.set_samples(new, at_loop=True)
    out = np.concatenate([f for f in play(source, 5) if f is not None])
    # 240 samples of the old piece remain, then the new one starts with no gap.
    assert np.array_equal(out, np.concatenate([old[160:], new, new])[:800])


def test_file_source_replace_checks_files_first(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", ramp(800, 1))
    write_wav(tmp_path / "b.wav", ramp(800, 9000))
    source = FileSource([tmp_path / "a.wav"], loop=True)
    with pytest.raises(Exception, match="missing"):
        source.replace([tmp_path / "b.wav", tmp_path / "missing.wav"])
    frame = source.read()
    assert frame is not None and frame[0] == 1  # unchanged
    assert not source.replace([tmp_path / "a.wav"], force=False)
    assert source.replace([tmp_path / "b.wav"])
    frame = source.read()
    assert frame is not None and frame[0] == 9000


# --------------------------------------------------------------------------- hub


class CountingLoader:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, path: str) -> np.ndarray:
        self.calls.append(path)
        return load_audio(path)


def test_many_listeners_share_one_decode_and_one_encode(tmp_path: Path) -> None:
    moh = tmp_path / "moh.wav"
    write_wav(moh, ramp(1000, 1))
    loader = CountingLoader()
    hub = PlayerHub(AudioLibrary(loader))
    hub.add_files("moh", [moh])
    hub.add_files("queue:sales", [moh])  # same file: still decoded once
    for call in range(200):
        hub.join(call, "moh" if call % 2 else "queue:sales")
    encodes: list[int] = []

    def encoder(frame: np.ndarray) -> bytes:
        encodes.append(1)
        return alaw_encode(frame)

    for _ in range(10):
        hub.tick()
        frames = {hub.frame(call).ctypes.data for call in range(1, 200, 2)}
        assert len(frames) == 1  # the very same array for every MOH listener
        payloads = {hub.encoded(call, encoder) for call in range(200)}
        assert len(payloads) == 1  # both sources play the same file in step
    assert loader.calls == [str(moh.resolve())]
    assert len(encodes) == 2 * 10  # once per source per tick


def test_join_mid_stream_and_idle_sources_do_not_advance() -> None:
    hub = PlayerHub()
    hub.add("moh", BufferSource(ramp(100_000), loop=True))
    hub.tick()  # nobody listens: nothing read
    hub.join("alice", "moh")
    for _ in range(3):
        hub.tick()
    assert hub.frame("alice")[0] == 320
    hub.join("bob", "moh")
    hub.tick()
    assert hub.frame("bob") is hub.frame("alice")
    assert hub.frame("bob")[0] == 480  # bob hears the stream where it is
    hub.leave("alice")
    hub.leave("bob")
    hub.tick()
    hub.join("carol", "moh")
    hub.tick()
    assert hub.frame("carol")[0] == 640  # paused while nobody listened
    assert hub.listeners("moh") == {"carol"}
    assert hub.listening_to("carol") == "moh"


def test_hub_moves_listeners_and_handles_removed_or_ended_sources() -> None:
    hub = PlayerHub()
    hub.add("a", BufferSource(ramp(1600, 1), loop=True))
    hub.add("beep", ToneSource(ToneSpec.parse("1000/40", repeat=False)))
    hub.join("x", "a")
    hub.join("x", "beep")
    assert hub.listeners("a") == set()
    for _ in range(2):
        hub.tick()
        assert hub.frame("x").any()
    hub.tick()
    assert hub.frame("x") is SILENCE  # the beep has ended
    hub.join("y", "a")
    hub.remove("a")
    hub.tick()
    assert hub.frame("y") is SILENCE
    with pytest.raises(PlayerError):
        hub.join("z", "nope")
    with pytest.raises(PlayerError):
        hub.frame("z")
    with pytest.raises(PlayerError):
        hub.replace_files("beep", [])


def test_per_queue_sources_configure_and_hot_swap(tmp_path: Path) -> None:
    files = {}
    for name, start in [("jazz", 1), ("rock", 7000), ("news", 15000)]:
        files[name] = tmp_path / f"{name}.wav"
        write_wav(files[name], ramp(480, start))
    hub = PlayerHub()
    hub.configure({"moh": [files["jazz"]], "queue:support": [files["rock"]]})
    assert hub.names == ["moh", "queue:support"]
    hub.join("c1", "queue:support")
    hub.tick()
    assert hub.frame("c1")[0] == 7000
    decodes = hub.library.decodes
    hub.configure({"moh": [files["jazz"]], "queue:support": [files["rock"]]})
    hub.tick()
    assert hub.frame("c1")[0] == 7160  # unchanged config: no restart, no re-decode
    assert hub.library.decodes == decodes
    with pytest.raises(Exception, match="missing"):
        hub.configure({"queue:support": [tmp_path / "missing.wav"]})
    assert hub.names == ["moh", "queue:support"]  # a bad file changed nothing
    hub.configure({"queue:support": [files["news"]]})
    assert hub.names == ["queue:support"]
    hub.tick()
    assert hub.frame("c1")[0] == 15000  # swapped under the listener
    hub.replace_files("queue:support", [files["jazz"]], at_loop=True)
    hub.tick()
    hub.tick()
    assert hub.frame("c1")[0] == 15000 + 320
    hub.tick()
    assert hub.frame("c1")[0] == 1  # the news finished, then the new file


# --------------------------------------------------------------------------- tones


def test_dual_tone_spectrum_and_level() -> None:
    source = ToneSource(ToneSpec.parse("350+440", level_dbm0=-13))
    out = np.concatenate([f for f in play(source, 100) if f is not None])
    assert spectrum_peaks(out) == {350, 440}
    assert np.array_equal(out[:8000], out[8000:16000])  # 1 s loop, seamless
    single = np.concatenate([f for f in play(ToneSource("1000"), 50) if f is not None])
    rms = float(np.sqrt(np.mean(single.astype(np.float64) ** 2)))
    expected = 32767 * 10 ** ((-10 - 3.14) / 20) / np.sqrt(2)
    assert rms == pytest.approx(expected, rel=0.01)


def test_cadence_on_off() -> None:
    source = ToneSource("425/100,0/100")
    energy = [float(np.abs(f).sum()) for f in play(source, 20) if f is not None]
    on = [e > 0 for e in energy]
    assert on == ([True] * 5 + [False] * 5) * 2
    burst = np.concatenate([f for f in play(ToneSource("425/100,0/100"), 5) if f is not None])
    mags = np.abs(np.fft.rfft(burst.astype(np.float64), n=8000))  # 1 Hz bins
    assert abs(int(np.argmax(mags)) - 425) <= 1


def test_confirmation_beep_once_with_end_event() -> None:
    beep = ToneSource(ToneSpec.parse("1400/100,0/60,1400/100", repeat=False))
    ended: list[Source] = []
    beep.on_end(ended.append)
    frames = play(beep, 20)
    assert sum(f is not None for f in frames) == 13  # 260 ms -> 13 frames
    assert ended == [beep]


@pytest.mark.parametrize(
    "text,match",
    [
        ("abc", "bad tone segment"),
        ("425,0/200", "only a lone tone"),
        ("5000/100", "outside"),
        ("425/", "bad tone segment"),
        ("0/0", "zero duration"),
    ],
)
def test_bad_tone_specs(text: str, match: str) -> None:
    with pytest.raises(PlayerError, match=match):
        ToneSource(text)
    with pytest.raises(PlayerError, match="level"):
        ToneSource(ToneSpec.parse("425", level_dbm0=10))
