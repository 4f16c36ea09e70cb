"""Call recording and voicemail to WAV, crash-safe: a recording appears under its final name
only when it is complete.

`Recorder` writes 16-bit PCM 8 kHz WAV into a hidden temporary file in the target's
directory (``.<final name>.<random>.part``) and, on `Recorder.close`, fixes the header,
fsyncs, and links it to the final name (never overwriting an existing recording), then
fsyncs the directory. A process killed half-way leaves only the ``.part`` file; writes go
straight to the kernel (no user-space buffer), so a killed process loses nothing it
had passed to `Recorder.write`. `salvage` turns such leftovers into complete WAV files at
start-up (``Nothing lost``); `Recorder.checkpoint` makes the ``.part`` a valid WAV up
to that point and durable against power loss.

Each `Recorder.write` takes the two directions of a call for the same 20 ms: caller and
callee. ``Layout.MONO`` mixes them (saturating sum), ``Layout.STEREO`` keeps the caller
left and the callee right. Voicemail passes one direction. A limit in seconds and/or
bytes stops the recording exactly at the limit: `Recorder.write` then returns False.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from enum import StrEnum
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt

from firmware.media.wav import HEADER_SIZE, RATE, fsync_dir, wav_header

Frame = npt.NDArray[np.int16]
PART_SUFFIX = ".part"
#: A WAV's sizes are 32-bit.
MAX_DATA_BYTES = 0xFFFF_FFFF - 36 - 1
_PART_RE = re.compile(r"\.(.+\.wav)\.[a-z0-9_]+\.part")


class RecorderError(ValueError):
    """Bad recorder input: bad name, existing target, frames of the wrong shape, closed."""


class Layout(StrEnum):
    MONO = "mono"  # both directions mixed
    STEREO = "stereo"  # caller left, callee right


class Recorder:
    """One recording in progress. Use as a context manager or call `close` (keep) or
    `abort` (discard); both are idempotent."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        layout: Layout = Layout.MONO,
        max_seconds: float | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() != ".wav":
            raise RecorderError(f"{self.path}: recordings are .wav files")
        if not self.path.parent.is_dir():
            raise RecorderError(f"{self.path.parent}: no such directory")
        if self.path.exists():
            raise RecorderError(f"{self.path} exists; recordings are never overwritten")
        self.layout = layout
        self.channels = 2 if layout is Layout.STEREO else 1
        block = 2 * self.channels
        limit = MAX_DATA_BYTES
        if max_seconds is not None:
            if max_seconds <= 0:
                raise RecorderError(f"max_seconds must be positive, got {max_seconds}")
            limit = min(limit, int(max_seconds * RATE) * block)
        if max_bytes is not None:
            if max_bytes <= HEADER_SIZE:
                raise RecorderError(f"max_bytes must exceed the {HEADER_SIZE}-byte header")
            limit = min(limit, max_bytes - HEADER_SIZE)
        self._limit = limit - limit % block
        self.data_bytes = 0
        self.limit_reached = False
        self.closed = False
        fd, tmp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=PART_SUFFIX
        )
        self.part_path = Path(tmp)
        self._file = open(fd, "r+b", buffering=0)  # noqa: SIM115 - closed in close/abort
        self._file.write(wav_header(0, self.channels))

    @property
    def frames(self) -> int:
        """Samples per channel written so far."""
        return self.data_bytes // (2 * self.channels)

    @property
    def duration(self) -> float:
        return self.frames / RATE

    def write(self, caller: npt.ArrayLike | None, callee: npt.ArrayLike | None = None) -> bool:
        """Add the same stretch of audio from both directions (None = silence there).
        Returns False when the limit is reached (what fits is written)."""
        if self.closed:
            raise RecorderError("recorder is closed")
        if self.limit_reached:
            return False
        left, right = _frame(caller), _frame(callee)
        if left is None:
            if right is None:
                return True
            left = np.zeros_like(right)
        elif right is None:
            right = np.zeros_like(left)
        n = len(left)
        if len(right) != n:
            raise RecorderError(f"caller has {len(left)} samples, callee {len(right)}")
        if self.layout is Layout.STEREO:
            samples = np.empty(2 * n, dtype=np.int16)
            samples[0::2], samples[1::2] = left, right
        else:
            mixed = left.astype(np.int32) + right
            samples = np.clip(mixed, -32768, 32767).astype(np.int16)
        data = samples.astype("<i2").tobytes()
        room = self._limit - self.data_bytes
        if len(data) >= room:
            data = data[:room]
            self.limit_reached = True
        self._file.write(data)
        self.data_bytes += len(data)
        return not self.limit_reached

    def checkpoint(self) -> None:
        """Make the temporary file a valid WAV of what was written, durable on disk."""
        if self.closed:
            raise RecorderError("recorder is closed")
        self._file.seek(0)
        self._file.write(wav_header(self.data_bytes, self.channels))
        self._file.seek(0, os.SEEK_END)
        os.fsync(self._file.fileno())

    def close(self) -> Path:
        """Finish: header, fsync, publish under the final name. Returns that path."""
        if self.closed:
            return self.path
        try:
            self.checkpoint()
            self._file.close()
            self.closed = True
            _publish(self.part_path, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Discard the recording."""
        self.closed = True
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.part_path.unlink()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Keep what was recorded even if the call ended with an error: it is user data.
        self.close()


def _frame(samples: npt.ArrayLike | None) -> Frame | None:
    if samples is None:
        return None
    array = np.asarray(samples)
    if array.ndim != 1 or array.dtype != np.int16:
        raise RecorderError(f"frames are 1-D int16, got {array.dtype} of shape {array.shape}")
    return array


def _publish(part: Path, final: Path) -> None:
    """Give ``part`` the name ``final`` atomically without clobbering an existing file."""
    try:
        os.link(part, final)
    except FileExistsError:
        raise RecorderError(f"{final} appeared meanwhile; the recording is in {part}") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
        # No hard links here (FAT on removable media): rename, checking the name first.
        if final.exists():
            raise RecorderError(f"{final} appeared meanwhile; the recording is in {part}") from None
        os.rename(part, final)
    else:
        part.unlink()
    fsync_dir(final.parent)


def salvage(directory: str | os.PathLike[str]) -> list[Path]:
    """Finish the recordings a crash left as ``.part`` files in ``directory``: fix their
    header from the file size and publish them (as ``<name>-recovered.wav`` if the final
    name is taken). Returns the files made. Run before recording into the directory."""
    made = []
    for part in sorted(Path(directory).iterdir()):
        match = _PART_RE.fullmatch(part.name)
        if match is None or not part.is_file():
            continue
        size = part.stat().st_size
        if size < HEADER_SIZE:
            part.unlink()  # died before the header: nothing recorded
            continue
        with open(part, "r+b") as f:
            header = f.read(HEADER_SIZE)
            channels = 2 if header[22:24] == b"\x02\x00" else 1
            data = size - HEADER_SIZE
            data -= data % (2 * channels)
            f.truncate(HEADER_SIZE + data)
            f.seek(0)
            f.write(wav_header(data, channels))
            f.flush()
            os.fsync(f.fileno())
        final = part.with_name(match.group(1))
        if final.exists():
            final = final.with_name(final.stem + "-recovered.wav")
        if final.exists():
            continue  # already salvaged once under both names: leave it for a human
        _publish(part, final)
        made.append(final)
    return made
