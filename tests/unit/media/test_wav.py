"""WAV and raw G.711 files: round trips, files made by sox, odd layouts, clear refusals."""

from __future__ import annotations

import shutil
import struct
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from firmware.media.codecs.g711 import alaw_encode, ulaw_encode
from firmware.media.wav import (
    WavError,
    decode_wav,
    encode_wav,
    load_audio,
    read_g711,
    read_wav,
    wav_header,
    wav_info,
    write_alaw,
    write_wav,
)

SOX = shutil.which("sox")
needs_sox = pytest.mark.skipif(SOX is None, reason="sox not installed")


def tone(n: int = 1234, freq: float = 440.0, amplitude: float = 12000.0) -> np.ndarray:
    t = np.arange(n) / 8000.0
    return np.round(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def riff(fmt: bytes, data: bytes, extra: bytes = b"") -> bytes:
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra
    chunks += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def fmt_chunk(tag: int, channels: int = 1, rate: int = 8000, bits: int = 16) -> bytes:
    block = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)


def test_mono_round_trip_and_stdlib_reads_it(tmp_path: Path) -> None:
    samples = tone()
    path = tmp_path / "a.wav"
    write_wav(path, samples)
    assert np.array_equal(read_wav(path), samples)
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        assert np.array_equal(np.frombuffer(w.readframes(10_000), "<i2"), samples)
    info = wav_info(path)
    assert info.frames == len(samples)
    assert info.duration == pytest.approx(len(samples) / 8000)
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_stereo_round_trip(tmp_path: Path) -> None:
    samples = np.stack([tone(800, 440), tone(800, 1000)], axis=1)
    path = tmp_path / "s.wav"
    write_wav(path, samples)
    back = read_wav(path)
    assert back.shape == (800, 2) and np.array_equal(back, samples)
    with pytest.raises(WavError, match="stereo"):
        load_audio(path)


def test_alaw_and_ulaw_wav_tags_6_and_7() -> None:
    samples = tone(400)
    alaw = decode_wav(riff(fmt_chunk(6, bits=8), alaw_encode(samples)))
    ulaw = decode_wav(riff(fmt_chunk(7, bits=8), ulaw_encode(samples)))
    # G.711 is lossy; both stay within one quantisation step of the original.
    assert np.max(np.abs(alaw.astype(int) - samples)) <= 512
    assert np.max(np.abs(ulaw.astype(int) - samples)) <= 512
    assert alaw.dtype == ulaw.dtype == np.int16


def test_extensible_format_and_odd_chunks_before_data() -> None:
    samples = tone(100)
    guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    ext = fmt_chunk(0xFFFE) + struct.pack("<HHI", 22, 16, 4) + struct.pack("<H", 1) + guid_tail
    odd = b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # odd size, padded
    data = riff(ext, samples.astype("<i2").tobytes(), extra=odd)
    assert np.array_equal(decode_wav(data), samples)


def test_truncated_data_chunk_reads_what_is_there() -> None:
    samples = tone(300)
    data = wav_header(10_000) + samples.astype("<i2").tobytes() + b"\x01"  # odd tail byte
    assert np.array_equal(decode_wav(data), samples)


@pytest.mark.parametrize(
    "data,match",
    [
        (b"", "not a RIFF"),
        (b"RIFF\x00\x00\x00\x00WAVX", "not a RIFF"),
        (riff(fmt_chunk(1, rate=16000), b"\x00\x00"), "16000 Hz.*8000"),
        (riff(fmt_chunk(1, rate=44100, channels=2), b"\x00" * 4), "44100 Hz"),
        (riff(fmt_chunk(3, bits=32), b"\x00" * 4), "format tag 3"),
        (riff(fmt_chunk(1, bits=8), b"\x00"), "8 bits"),
        (riff(fmt_chunk(6, bits=16), b"\x00"), "A-law with 16 bits"),
        (riff(fmt_chunk(1, channels=6), b"\x00" * 12), "6 channels"),
        (riff(b"\x01\x00", b""), "too short"),
        (b"RIFF\x04\x00\x00\x00WAVE", "no fmt/data chunk"),
    ],
)
def test_refusals_are_clear(data: bytes, match: str) -> None:
    with pytest.raises(WavError, match=match):
        decode_wav(data, "x.wav")


def test_data_before_fmt_is_refused() -> None:
    body = b"data\x02\x00\x00\x00\x00\x00" + b"fmt \x10\x00\x00\x00" + fmt_chunk(1)
    with pytest.raises(WavError, match="before the fmt"):
        decode_wav(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)


def test_raw_alaw_files(tmp_path: Path) -> None:
    samples = tone(480)
    path = tmp_path / "moh.alaw"
    write_alaw(path, samples)
    assert path.read_bytes() == alaw_encode(samples)
    decoded = load_audio(path)
    assert np.array_equal(decoded, read_g711(path, "alaw"))
    assert np.max(np.abs(decoded.astype(int) - samples)) <= 512
    (tmp_path / "x.al").write_bytes(alaw_encode(samples))
    assert np.array_equal(load_audio(tmp_path / "x.al"), decoded)
    (tmp_path / "x.ul").write_bytes(ulaw_encode(samples))
    assert load_audio(tmp_path / "x.ul").shape == (480,)


def test_load_audio_refusals(tmp_path: Path) -> None:
    with pytest.raises(WavError, match="unknown audio file type"):
        load_audio(tmp_path / "song.mp3")
    with pytest.raises(WavError, match="No such file"):
        load_audio(tmp_path / "missing.wav")
    with pytest.raises(WavError):
        read_g711(tmp_path / "x", "g729")


def test_write_refusals(tmp_path: Path) -> None:
    with pytest.raises(WavError, match="int16"):
        write_wav(tmp_path / "f.wav", np.zeros(10, dtype=np.float32))
    with pytest.raises(WavError, match="range"):
        write_wav(tmp_path / "f.wav", np.array([40000]))
    with pytest.raises(WavError, match="shape"):
        write_wav(tmp_path / "f.wav", np.zeros((10, 3), dtype=np.int16))
    assert not any(tmp_path.iterdir())
    assert encode_wav(np.array([1, -1], dtype=np.int32))[44:] == b"\x01\x00\xff\xff"


@needs_sox
@pytest.mark.parametrize("encoding", ["a-law", "u-law", "signed-integer"])
def test_reads_wavs_written_by_sox(tmp_path: Path, encoding: str) -> None:
    """sox writes the file and also decodes it to raw s16; our decode must agree."""
    assert SOX is not None
    src, raw = tmp_path / "t.wav", tmp_path / "t.raw"
    bits = "16" if encoding == "signed-integer" else "8"
    subprocess.run(
        [
            SOX,
            "-n",
            "-r",
            "8000",
            "-c",
            "1",
            "-e",
            encoding,
            "-b",
            bits,
            str(src),
            "synth",
            "0.25",
            "sine",
            "700",
            "vol",
            "0.5",
        ],
        check=True,
        timeout=30,
    )
    subprocess.run(
        [SOX, str(src), "-t", "raw", "-e", "signed-integer", "-b", "16", "-L", str(raw)],
        check=True,
        timeout=30,
    )
    ours = read_wav(src)
    assert len(ours) == 2000
    assert np.array_equal(ours, np.frombuffer(raw.read_bytes(), "<i2"))


@needs_sox
def test_sox_reads_what_we_write(tmp_path: Path) -> None:
    assert SOX is not None
    path = tmp_path / "ours.wav"
    write_wav(path, tone(8000, 1000))
    out = subprocess.run(
        [SOX, "--i", str(path)], check=True, timeout=30, capture_output=True, text=True
    ).stdout
    assert "Sample Rate    : 8000" in out and "Channels       : 1" in out
    assert "00:00:01.00 = 8000 samples" in out
