"""Recorder: valid WAV out, mono mix or stereo split, limits, and crash safety (SIGKILL)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import wave
from pathlib import Path

import numpy as np
import pytest

from firmware.media.recorder import Layout, Recorder, RecorderError, salvage
from firmware.media.wav import read_wav, wav_info

ROOT = Path(__file__).resolve().parents[3]


def frame(value: int, n: int = 160) -> np.ndarray:
    return np.full(n, value, dtype=np.int16)


def ramp_frames(count: int, start: int = 0) -> list[np.ndarray]:
    samples = (np.arange(count * 160) + start).astype(np.int16)
    return list(samples.reshape(count, 160))


def test_mono_mix_is_a_saturating_sum(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    with Recorder(path) as rec:
        assert not path.exists()  # nothing under the final name while recording
        rec.write(frame(1000), frame(-300))
        rec.write(frame(30000), frame(30000))
        rec.write(frame(-30000), frame(-30000))
        rec.write(frame(5), None)  # one direction silent
        rec.write(None, frame(7))
        rec.write(None, None)  # nothing from either: nothing written
    samples = read_wav(path)
    assert np.array_equal(
        samples, np.concatenate([frame(700), frame(32767), frame(-32768), frame(5), frame(7)])
    )
    with wave.open(str(path)) as w:  # the stdlib agrees the file is a valid WAV
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        assert w.getnframes() == 800
    assert [p.name for p in tmp_path.iterdir()] == ["call.wav"]


def test_stereo_keeps_caller_left_callee_right(tmp_path: Path) -> None:
    path = tmp_path / "s.wav"
    left, right = ramp_frames(5, 0), ramp_frames(5, 10_000)
    rec = Recorder(path, layout=Layout.STEREO)
    for a, b in zip(left, right, strict=True):
        rec.write(a, b)
    rec.write(None, frame(3))
    assert rec.close() == path
    samples = read_wav(path)
    assert samples.shape == (960, 2)
    assert np.array_equal(samples[:800, 0], np.concatenate(left))
    assert np.array_equal(samples[:800, 1], np.concatenate(right))
    assert not samples[800:, 0].any() and (samples[800:, 1] == 3).all()
    assert rec.duration == pytest.approx(0.12)


def test_duration_limit_cuts_exactly(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "vm.wav", max_seconds=0.05)  # 400 samples
    results = [rec.write(f) for f in ramp_frames(4)]
    assert results == [True, True, False, False]
    assert rec.limit_reached
    rec.close()
    assert len(read_wav(tmp_path / "vm.wav")) == 400


def test_size_limit_includes_header(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "b.wav", layout=Layout.STEREO, max_bytes=44 + 1000)
    while rec.write(frame(1), frame(2)):
        pass
    rec.close()
    assert (tmp_path / "b.wav").stat().st_size == 44 + 1000
    assert wav_info(tmp_path / "b.wav").frames == 250


def test_abort_and_errors(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "x.wav")
    rec.write(frame(1))
    rec.abort()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RecorderError, match="closed"):
        rec.write(frame(1))
    (tmp_path / "taken.wav").write_bytes(b"keep me")
    with pytest.raises(RecorderError, match="never overwritten"):
        Recorder(tmp_path / "taken.wav")
    with pytest.raises(RecorderError, match="no such directory"):
        Recorder(tmp_path / "nope" / "x.wav")
    with pytest.raises(RecorderError, match=r"recordings are \.wav files"):
        Recorder(tmp_path / "x.mp3")
    with pytest.raises(RecorderError, match="max_seconds"):
        Recorder(tmp_path / "y.wav", max_seconds=0)
    rec = Recorder(tmp_path / "z.wav")
    with pytest.raises(RecorderError, match="int16"):
        rec.write(np.zeros(160, dtype=np.float64))
    with pytest.raises(RecorderError, match="samples"):
        rec.write(frame(1, 160), frame(1, 80))
    rec.abort()


def test_final_name_taken_meanwhile_keeps_the_part(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "r.wav")
    rec.write(frame(9))
    (tmp_path / "r.wav").write_bytes(b"someone else's")
    with pytest.raises(RecorderError, match="appeared meanwhile"):
        rec.close()
    assert (tmp_path / "r.wav").read_bytes() == b"someone else's"


def test_exception_in_with_block_keeps_the_recording(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), Recorder(tmp_path / "e.wav") as rec:
        rec.write(frame(4))
        raise RuntimeError("call dropped")
    assert np.array_equal(read_wav(tmp_path / "e.wav"), frame(4))


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from firmware.media.recorder import Recorder, Layout
    rec = Recorder(sys.argv[1], layout=Layout.STEREO)
    samples = (np.arange(50 * 160) % 20000).astype(np.int16)
    for i in range(50):
        part = samples[i * 160:(i + 1) * 160]
        rec.write(part, -part)
        if i == 20:
            rec.checkpoint()
    print(rec.part_path, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_survives_sigkill_and_salvage_recovers(tmp_path: Path) -> None:
    final = tmp_path / "crash.wav"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(final)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    part = Path(child.stdout.strip())
    assert not final.exists()  # no half file under the final name
    assert part.exists() and part.parent == tmp_path and part.name.startswith(".crash.wav.")
    # Written frames reached the kernel even after the checkpoint (unbuffered writes).
    assert part.stat().st_size == 44 + 50 * 160 * 4

    assert salvage(tmp_path) == [final]
    assert not part.exists()
    samples = read_wav(final)
    expected = (np.arange(50 * 160) % 20000).astype(np.int16)
    assert np.array_equal(samples[:, 0], expected)
    assert np.array_equal(samples[:, 1], -expected)
    assert salvage(tmp_path) == []


def test_salvage_handles_torn_and_empty_parts(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "torn.wav")
    rec.write(frame(11))
    rec._file.write(b"\x01")  # half a sample, as if killed mid-write
    rec._file.close()
    (tmp_path / ".empty.wav.abc123.part").write_bytes(b"RIFF")
    (tmp_path / "torn.wav").write_bytes(b"taken")
    (tmp_path / "unrelated.part").write_bytes(b"x")
    made = salvage(tmp_path)
    assert made == [tmp_path / "torn-recovered.wav"]
    assert np.array_equal(read_wav(made[0]), frame(11))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["torn-recovered.wav", "torn.wav", "unrelated.part"]


def test_recording_a_long_call_stays_cheap(tmp_path: Path) -> None:
    """One minute of stereo: 3,000 writes, file size exact."""
    rec = Recorder(tmp_path / "long.wav", layout=Layout.STEREO)
    f = frame(100)
    for _ in range(3000):
        rec.write(f, f)
    rec.close()
    assert os.path.getsize(tmp_path / "long.wav") == 44 + 3000 * 160 * 4
    assert wav_info(tmp_path / "long.wav").duration == pytest.approx(60.0)


def test_publish_without_hard_links_falls_back_to_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    rec = Recorder(tmp_path / "fat.wav")
    rec.write(frame(2))
    rec.close()
    assert np.array_equal(read_wav(tmp_path / "fat.wav"), frame(2))
    assert [p.name for p in tmp_path.iterdir()] == ["fat.wav"]
