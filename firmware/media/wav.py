"""Audio files of the box: WAV (PCM 16-bit, A-law, µ-law) and raw G.711 (.alaw/.al, .ulaw/.ul).

Everything is 8 kHz: the box never resamples, so a file at another rate is refused with
a `WavError` that says how to convert it, rather than played at the wrong speed.
Decoded audio is int16 numpy: shape ``(n,)`` for mono, ``(n, 2)`` for stereo.

The stdlib ``wave`` module reads only PCM, so the RIFF chunks are walked here (format
tags 1 PCM, 6 A-law, 7 µ-law, and 0xFFFE WAVE_FORMAT_EXTENSIBLE wrapping one of them).
A data chunk whose size runs past the end of the file (a streamed or interrupted
recording) is read up to the end of the file. Writing is PCM 16-bit only, through a
temporary file renamed into place (see `write_wav`); `wav_header` is shared with the
streaming recorder.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from firmware.media.codecs.g711 import alaw_decode, alaw_encode, ulaw_decode

Int16Array = npt.NDArray[np.int16]

RATE = 8000
FORMAT_PCM = 1
FORMAT_ALAW = 6
FORMAT_ULAW = 7
FORMAT_EXTENSIBLE = 0xFFFE
FORMAT_NAMES = {FORMAT_PCM: "PCM", FORMAT_ALAW: "A-law", FORMAT_ULAW: "µ-law"}
HEADER_SIZE = 44
#: Largest file we load into memory (~ 2 h of 8 kHz 16-bit mono).
MAX_FILE_SIZE = 128 * 1024 * 1024
ALAW_SUFFIXES = frozenset({".alaw", ".al", ".pcma"})
ULAW_SUFFIXES = frozenset({".ulaw", ".ul", ".mu", ".pcmu"})


class WavError(ValueError):
    """A file we cannot read or write as 8 kHz audio; the message names the file."""


@dataclass(frozen=True, slots=True)
class WavInfo:
    """What the ``fmt `` chunk says, and where the samples are."""

    format: int  # FORMAT_PCM, FORMAT_ALAW or FORMAT_ULAW (extensible resolved)
    channels: int
    rate: int
    bits: int
    data_offset: int
    data_size: int  # bytes actually present

    @property
    def frames(self) -> int:
        return self.data_size // (self.channels * self.bits // 8)

    @property
    def duration(self) -> float:
        return self.frames / self.rate


def wav_header(data_size: int, channels: int = 1) -> bytes:
    """A 44-byte header for 16-bit PCM at 8 kHz with ``data_size`` bytes of samples."""
    if channels not in (1, 2):
        raise WavError(f"{channels} channels: only mono and stereo are written")
    if not 0 <= data_size <= 0xFFFF_FFFF - 36:
        raise WavError(f"data size {data_size} does not fit in a WAV file")
    block = 2 * channels
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_size + (data_size & 1),
        b"WAVE",
        b"fmt ",
        16,
        FORMAT_PCM,
        channels,
        RATE,
        RATE * block,
        block,
        16,
        b"data",
        data_size,
    )


def parse_wav_header(data: bytes, name: str = "<bytes>") -> WavInfo:
    """Walk the RIFF chunks of a WAV file's bytes (the whole file, or at least up to the
    start of its data chunk) and check it is something we can play."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError(f"{name}: not a RIFF/WAVE file")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, pos)
        body = pos + 8
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(data[body : body + size], name)
        elif chunk_id == b"data":
            if fmt is None:
                raise WavError(f"{name}: data chunk before the fmt chunk")
            fmt_tag, channels, rate, bits = fmt
            present = min(size, len(data) - body)
            return WavInfo(fmt_tag, channels, rate, bits, body, present)
        pos = body + size + (size & 1)
    raise WavError(f"{name}: no {'fmt/' if fmt is None else ''}data chunk")


def _parse_fmt(chunk: bytes, name: str) -> tuple[int, int, int, int]:
    if len(chunk) < 16:
        raise WavError(f"{name}: fmt chunk of {len(chunk)} bytes is too short")
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", chunk)
    if tag == FORMAT_EXTENSIBLE:
        if len(chunk) < 40:
            raise WavError(f"{name}: WAVE_FORMAT_EXTENSIBLE without its sub-format")
        tag = struct.unpack_from("<H", chunk, 24)[0]  # first 2 bytes of the GUID
    if tag not in FORMAT_NAMES:
        raise WavError(f"{name}: WAV format tag {tag} (only PCM, A-law and µ-law are read)")
    if channels not in (1, 2):
        raise WavError(f"{name}: {channels} channels (only mono or stereo)")
    if rate != RATE:
        raise WavError(
            f"{name}: sample rate {rate} Hz, the box plays only {RATE} Hz audio "
            f"(convert it, e.g. 'sox in.wav -r 8000 -c 1 -b 16 out.wav')"
        )
    want = 16 if tag == FORMAT_PCM else 8
    if bits != want:
        raise WavError(f"{name}: {FORMAT_NAMES[tag]} with {bits} bits per sample, need {want}")
    return tag, channels, rate, bits


def _read_bytes(path: str | os.PathLike[str]) -> bytes:
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_SIZE:
            raise WavError(f"{path}: {size} bytes is larger than {MAX_FILE_SIZE}")
        with open(path, "rb") as f:
            return f.read(MAX_FILE_SIZE + 1)
    except OSError as exc:
        raise WavError(f"{path}: {exc.strerror or exc}") from None


def wav_info(path: str | os.PathLike[str]) -> WavInfo:
    return parse_wav_header(_read_bytes(path), str(path))


def decode_wav(data: bytes, name: str = "<bytes>") -> Int16Array:
    """Samples of a WAV file's bytes: int16, ``(n,)`` mono or ``(n, 2)`` stereo."""
    info = parse_wav_header(data, name)
    raw = data[info.data_offset : info.data_offset + info.data_size]
    if info.format == FORMAT_PCM:
        raw = raw[: len(raw) - len(raw) % (2 * info.channels)]
        samples = np.frombuffer(raw, dtype="<i2").astype(np.int16)
    else:
        raw = raw[: len(raw) - len(raw) % info.channels]
        decode = alaw_decode if info.format == FORMAT_ALAW else ulaw_decode
        samples = decode(bytes(raw))
    if info.channels == 2:
        return samples.reshape(-1, 2)
    return samples


def read_wav(path: str | os.PathLike[str]) -> Int16Array:
    """Read an 8 kHz WAV file (PCM 16-bit, A-law or µ-law; mono or stereo)."""
    return decode_wav(_read_bytes(path), str(path))


def read_g711(path: str | os.PathLike[str], law: str) -> Int16Array:
    """Read a headerless G.711 file (``law`` is "alaw" or "ulaw")."""
    if law not in ("alaw", "ulaw"):
        raise WavError(f"unknown G.711 law {law!r}")
    data = _read_bytes(path)
    return alaw_decode(data) if law == "alaw" else ulaw_decode(data)


def load_audio(path: str | os.PathLike[str]) -> Int16Array:
    """Mono int16 samples of a prompt/MOH file, chosen by extension: ``.wav`` or raw
    ``.alaw/.al`` and ``.ulaw/.ul``. Stereo files are refused (announcements are mono)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".wav":
        samples = read_wav(path)
        if samples.ndim != 1:
            raise WavError(f"{path}: stereo file, announcements must be mono")
        return samples
    if suffix in ALAW_SUFFIXES:
        return read_g711(path, "alaw")
    if suffix in ULAW_SUFFIXES:
        return read_g711(path, "ulaw")
    raise WavError(f"{path}: unknown audio file type {suffix!r} (.wav, .alaw/.al, .ulaw/.ul)")


def _as_int16(samples: npt.ArrayLike) -> Int16Array:
    array = np.asarray(samples)
    if array.dtype != np.int16:
        if not np.issubdtype(array.dtype, np.integer):
            raise WavError(f"samples must be int16, got {array.dtype}")
        if array.size and (array.min() < -32768 or array.max() > 32767):
            raise WavError("samples outside the int16 range")
        array = array.astype(np.int16)
    if array.ndim == 2 and array.shape[1] not in (1, 2):
        raise WavError(f"samples of shape {array.shape}: expected (n,) or (n, 2)")
    if array.ndim not in (1, 2):
        raise WavError(f"samples of shape {array.shape}: expected (n,) or (n, 2)")
    return array


def encode_wav(samples: npt.ArrayLike) -> bytes:
    """A whole 16-bit PCM 8 kHz WAV file: ``(n,)`` mono or ``(n, 2)`` stereo samples."""
    array = _as_int16(samples)
    channels = 1 if array.ndim == 1 else array.shape[1]
    data = array.astype("<i2").tobytes()
    return wav_header(len(data), channels) + data


def _atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename in ``directory`` durable (best effort where directories can't open)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_wav(path: str | os.PathLike[str], samples: npt.ArrayLike) -> None:
    """Write a 16-bit PCM 8 kHz WAV atomically (temp file in the same directory, fsync,
    rename): a crash leaves the old file or the new one, never half of one."""
    _atomic_write(path, encode_wav(samples))


def write_alaw(path: str | os.PathLike[str], samples: npt.ArrayLike) -> None:
    """Write a raw A-law file (atomically, like `write_wav`)."""
    array = _as_int16(samples)
    if array.ndim != 1:
        raise WavError("raw A-law files are mono")
    _atomic_write(path, alaw_encode(array))
