"""Audio players: announcements, music on hold, per-queue sources and tones, as 20 ms frames.

Pure logic, driven by whoever owns the 20 ms clock: nothing here sleeps or sends.

- `Source`: anything that yields one 160-sample int16 frame per `Source.read` and
  ``None`` once it has ended. End callbacks (`Source.on_end`) fire once, on the read
  that delivers the last (silence-padded) frame.
- `BufferSource`: plays decoded samples once or in a loop. Frames are cut from a
  continuous sample stream, so the loop point (and the joint between the files of a
  list) falls inside a frame with no padding: the output is the input tiled exactly.
- `FileSource`: a `BufferSource` over a list of WAV / raw A-law files (decoded once, via
  an `AudioLibrary`), with `FileSource.replace` to hot-swap the files now or at the
  next loop point.
- `ToneSource`: a tone plan such as ``"425/250,0/250"`` (sum of sines, cadence).
- `PlayerHub`: named shared sources (MOH, one per queue): each source is read once per
  `PlayerHub.tick` however many listeners it has, every listener of it gets that same
  (read-only) frame, and `PlayerHub.encoded` encodes it once per codec. A listener
  joining mid-stream hears the stream from where it is; a source with no listeners
  does not advance.
"""

from __future__ import annotations

import math
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from firmware.media.wav import RATE, load_audio

Frame = npt.NDArray[np.int16]
FRAME_SAMPLES = 160
#: A frame of silence; read-only, safe to share.
SILENCE: Frame = np.zeros(FRAME_SAMPLES, dtype=np.int16)
SILENCE.flags.writeable = False
#: A sine of peak 32767 in a 16-bit linear PCM path is +3.14 dBm0 (G.711 full scale).
FULL_SCALE_DBM0 = 3.14
#: Longest tone cadence we render (samples): ringback cycles are ~5 s.
MAX_TONE_SAMPLES = 60 * RATE

Loader = Callable[[str], npt.NDArray[np.int16]]


class PlayerError(ValueError):
    """Bad player input: no audio, a malformed tone plan, an unknown source/listener."""


def _readonly(array: Frame) -> Frame:
    array.flags.writeable = False
    return array


class Source(ABC):
    """One 20 ms frame per `read`; ``None`` after the end. Subclasses implement `_next`."""

    def __init__(self) -> None:
        self.ended = False
        self._end_callbacks: list[Callable[[Source], None]] = []

    def on_end(self, callback: Callable[[Source], None]) -> None:
        """Call ``callback(source)`` once when the source ends (right away if it has)."""
        if self.ended:
            callback(self)
        else:
            self._end_callbacks.append(callback)

    def read(self) -> Frame | None:
        if self.ended:
            return None
        frame, last = self._next()
        if last:
            self._finish()
        return frame

    def stop(self) -> None:
        """End now (e.g. the caller pressed a key during an announcement)."""
        if not self.ended:
            self._finish()

    def _finish(self) -> None:
        self.ended = True
        callbacks, self._end_callbacks = self._end_callbacks, []
        for callback in callbacks:
            callback(self)

    @abstractmethod
    def _next(self) -> tuple[Frame, bool]:
        """The next frame, and whether it is the last one."""


class BufferSource(Source):
    """Plays ``samples`` (mono int16) once or looping, seamlessly across the loop point."""

    def __init__(self, samples: npt.ArrayLike, *, loop: bool = False) -> None:
        super().__init__()
        self.loop = loop
        self._buffer = _check_samples(samples)
        self._pending: Frame | None = None
        self._pos = 0

    @property
    def position(self) -> int:
        """Sample index of the next frame's first sample within the buffer."""
        return self._pos

    def set_samples(self, samples: npt.ArrayLike, *, at_loop: bool = False) -> None:
        """Swap what is played: from the next frame, or (``at_loop``) when the current
        buffer has played to its end, so the listener hears a whole piece."""
        buffer = _check_samples(samples)
        if at_loop:
            self._pending = buffer
        else:
            self._buffer, self._pos, self._pending = buffer, 0, None

    def _next(self) -> tuple[Frame, bool]:
        end = self._pos + FRAME_SAMPLES
        if end <= len(self._buffer):  # common case: a view, no copy
            frame = self._buffer[self._pos : end]
            self._pos = end
            if end == len(self._buffer):
                return frame, self._wrap()
            return frame, False
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        filled = 0
        while filled < FRAME_SAMPLES:
            take = min(FRAME_SAMPLES - filled, len(self._buffer) - self._pos)
            out[filled : filled + take] = self._buffer[self._pos : self._pos + take]
            filled += take
            self._pos += take
            if self._pos == len(self._buffer) and self._wrap():
                return _readonly(out), True  # rest stays silence
        return _readonly(out), False

    def _wrap(self) -> bool:
        """At the end of the buffer: go round (or on to the pending one); True = ended."""
        if self._pending is not None:
            self._buffer, self._pending = self._pending, None
        elif not self.loop:
            return True
        self._pos = 0
        return False


def _check_samples(samples: npt.ArrayLike) -> Frame:
    array = np.asarray(samples)
    if array.ndim != 1:
        raise PlayerError(f"samples of shape {array.shape}: players take mono audio")
    if array.dtype != np.int16:
        raise PlayerError(f"samples must be int16, got {array.dtype}")
    if len(array) == 0:
        raise PlayerError("no audio to play")
    return _readonly(np.ascontiguousarray(array))


# --------------------------------------------------------------------------- files


class AudioLibrary:
    """Decoded audio by file, decoded once while the file is unchanged (path, size and
    mtime): every source playing the same prompt shares one array."""

    def __init__(self, loader: Loader = load_audio) -> None:
        self._loader = loader
        self._cache: dict[str, tuple[tuple[int, int], Frame]] = {}
        self.decodes = 0

    def load(self, path: str | os.PathLike[str]) -> Frame:
        key = os.fspath(Path(path).resolve())
        try:
            st = os.stat(key)
            stamp = (st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = (-1, -1)  # let the loader report the error
        cached = self._cache.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        samples = _check_samples(self._loader(key))
        self.decodes += 1
        self._cache[key] = (stamp, samples)
        return samples

    def load_all(self, paths: Iterable[str | os.PathLike[str]]) -> tuple[Frame, ...]:
        parts = tuple(self.load(p) for p in paths)
        if not parts:
            raise PlayerError("no files to play")
        return parts


def _join(parts: tuple[Frame, ...]) -> Frame:
    return parts[0] if len(parts) == 1 else _readonly(np.concatenate(parts))


class FileSource(BufferSource):
    """Files played back to back, once (announcements) or looping (MOH)."""

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        loop: bool = False,
        library: AudioLibrary | None = None,
    ) -> None:
        self.library = library or AudioLibrary()
        self.paths = tuple(os.fspath(p) for p in paths)
        self._parts = self.library.load_all(self.paths)
        super().__init__(_join(self._parts), loop=loop)

    def replace(
        self, paths: Sequence[str | os.PathLike[str]], *, at_loop: bool = False, force: bool = True
    ) -> bool:
        """Hot-swap the files (all decoded before the swap, so a bad file changes
        nothing). With ``force=False`` nothing happens when the same files, unchanged on
        disk, are given again. Returns whether the audio was swapped."""
        parts = self.library.load_all(paths)
        wanted = tuple(os.fspath(p) for p in paths)
        same = wanted == self.paths and all(a is b for a, b in zip(parts, self._parts, strict=True))
        if same and not force:
            return False
        self.paths, self._parts = wanted, parts
        self.set_samples(_join(parts), at_loop=at_loop)
        return True


# --------------------------------------------------------------------------- tones

_SEGMENT_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?(?:\+[0-9]+(?:\.[0-9]+)?)*)(?:/([0-9]{1,6}))?")


@dataclass(frozen=True, slots=True)
class ToneSegment:
    """Frequencies (Hz, summed; empty = silence) for ``ms`` milliseconds (None: continuous)."""

    freqs: tuple[float, ...]
    ms: int | None


@dataclass(frozen=True, slots=True)
class ToneSpec:
    """A tone plan: segments played in order, the whole cadence repeated or not.

    Text form: comma-separated ``f1[+f2...][/ms]``, ``0`` for silence, e.g. Danish busy
    ``"425/250,0/250"``, dial tone ``"425"``, a confirmation beep ``"1400/100"`` (with
    ``repeat=False``). A segment without ``/ms`` is continuous (1 s, looped) and must be
    the only one.
    """

    segments: tuple[ToneSegment, ...]
    repeat: bool = True
    level_dbm0: float = -10.0  # per frequency component

    @classmethod
    def parse(cls, text: str, *, repeat: bool = True, level_dbm0: float = -10.0) -> ToneSpec:
        parts = [p.strip() for p in text.split(",")]
        segments = []
        for part in parts:
            match = _SEGMENT_RE.fullmatch(part)
            if match is None:
                raise PlayerError(f"bad tone segment {part!r} in {text!r} (want f1+f2/ms)")
            freqs = tuple(float(f) for f in match.group(1).split("+") if float(f) != 0)
            if match.group(2) is None:
                if len(parts) != 1:
                    raise PlayerError(f"only a lone tone may omit its duration: {text!r}")
                segments.append(ToneSegment(freqs, None))
            else:
                segments.append(ToneSegment(freqs, int(match.group(2))))
        return cls(tuple(segments), repeat, level_dbm0)

    def render(self) -> Frame:
        """One cadence cycle as samples. Each segment starts at phase 0; a continuous
        tone is rendered over one second with whole-Hz frequencies so it loops cleanly."""
        if not self.segments:
            raise PlayerError("empty tone plan")
        if not -60.0 <= self.level_dbm0 <= FULL_SCALE_DBM0:
            raise PlayerError(f"tone level {self.level_dbm0} dBm0 outside -60..+3.14")
        amplitude = 32767.0 * 10 ** ((self.level_dbm0 - FULL_SCALE_DBM0) / 20)
        pieces = []
        for segment in self.segments:
            for f in segment.freqs:
                if not 0 < f < RATE / 2:
                    raise PlayerError(f"tone frequency {f} Hz outside 0..{RATE // 2}")
            continuous = segment.ms is None
            n = RATE if segment.ms is None else segment.ms * RATE // 1000
            t = np.arange(n, dtype=np.float64) / RATE
            wave = np.zeros(n, dtype=np.float64)
            for f in segment.freqs:
                wave += np.sin(2 * math.pi * (round(f) if continuous else f) * t)
            pieces.append(np.clip(np.round(wave * amplitude), -32768, 32767))
        samples = np.concatenate(pieces).astype(np.int16)
        if len(samples) == 0:
            raise PlayerError("tone plan of zero duration")
        if len(samples) > MAX_TONE_SAMPLES:
            raise PlayerError(f"tone cadence longer than {MAX_TONE_SAMPLES // RATE} s")
        return samples


class ToneSource(BufferSource):
    """Plays a `ToneSpec` (or its text form)."""

    def __init__(self, spec: ToneSpec | str) -> None:
        self.spec = ToneSpec.parse(spec) if isinstance(spec, str) else spec
        super().__init__(self.spec.render(), loop=self.spec.repeat)


# --------------------------------------------------------------------------- hub


class PlayerHub:
    """Named shared sources and their listeners (call legs, ports...).

    Call `tick` every 20 ms, then `frame`/`encoded` for each listener. Frames are shared
    and read-only: one read and one encode per source per tick, whatever the audience.
    """

    def __init__(self, library: AudioLibrary | None = None) -> None:
        self.library = library or AudioLibrary()
        self._sources: dict[str, Source] = {}
        self._listeners: dict[Hashable, str] = {}
        self._audience: dict[str, set[Hashable]] = {}
        self._frames: dict[str, Frame] = {}
        self._encoded: dict[tuple[str, Hashable], bytes] = {}

    # -- sources

    def add(self, name: str, source: Source) -> None:
        """Add or replace source ``name`` (its listeners stay and hear the new one)."""
        self._sources[name] = source
        self._frames.pop(name, None)

    def add_files(
        self, name: str, paths: Sequence[str | os.PathLike[str]], *, loop: bool = True
    ) -> FileSource:
        source = FileSource(paths, loop=loop, library=self.library)
        self.add(name, source)
        return source

    def replace_files(
        self, name: str, paths: Sequence[str | os.PathLike[str]], *, at_loop: bool = False
    ) -> None:
        """Hot-swap the files of file source ``name``; listeners stay attached."""
        source = self._sources.get(name)
        if not isinstance(source, FileSource):
            raise PlayerError(f"no file source named {name!r}")
        source.replace(paths, at_loop=at_loop)

    def configure(self, sources: Mapping[str, Sequence[str | os.PathLike[str]]]) -> None:
        """Make the looping file sources exactly ``sources`` (e.g. ``{"moh": [...],
        "queue:support": [...]}``): new ones are added, changed ones hot-swapped, absent
        ones removed. Everything is decoded first, so a bad file changes nothing."""
        for paths in sources.values():
            self.library.load_all(paths)  # raises before anything changes
        for name in [n for n in self._sources if n not in sources]:
            self.remove(name)
        for name, paths in sources.items():
            current = self._sources.get(name)
            if isinstance(current, FileSource):
                current.replace(paths, force=False)
            else:
                self.add_files(name, paths)

    def remove(self, name: str) -> None:
        """Drop a source; its listeners hear silence until they join another one."""
        self._sources.pop(name, None)
        self._frames.pop(name, None)

    @property
    def names(self) -> list[str]:
        return sorted(self._sources)

    def source(self, name: str) -> Source:
        try:
            return self._sources[name]
        except KeyError:
            raise PlayerError(f"no source named {name!r}") from None

    # -- listeners

    def join(self, listener: Hashable, name: str) -> None:
        """Attach ``listener`` to source ``name`` (moving it from any other)."""
        if name not in self._sources:
            raise PlayerError(f"no source named {name!r}")
        self.leave(listener)
        self._listeners[listener] = name
        self._audience.setdefault(name, set()).add(listener)

    def leave(self, listener: Hashable) -> None:
        name = self._listeners.pop(listener, None)
        if name is not None:
            audience = self._audience[name]
            audience.discard(listener)
            if not audience:
                del self._audience[name]

    def listening_to(self, listener: Hashable) -> str | None:
        return self._listeners.get(listener)

    def listeners(self, name: str) -> set[Hashable]:
        return set(self._audience.get(name, ()))

    # -- the clock

    def tick(self) -> None:
        """Advance every source that has listeners by one frame."""
        self._frames.clear()
        self._encoded.clear()
        for name in self._audience:
            source = self._sources.get(name)
            if source is None:
                continue
            frame = source.read()
            self._frames[name] = SILENCE if frame is None else frame

    def frame(self, listener: Hashable) -> Frame:
        """This tick's frame for ``listener`` (silence if its source is gone or ended)."""
        name = self._listeners.get(listener)
        if name is None:
            raise PlayerError(f"unknown listener {listener!r}")
        return self._frames.get(name, SILENCE)

    def encoded(self, listener: Hashable, encoder: Callable[[Frame], bytes]) -> bytes:
        """This tick's frame for ``listener`` through ``encoder`` (e.g. ``alaw_encode``),
        encoded once per source and encoder per tick."""
        name = self._listeners.get(listener)
        if name is None:
            raise PlayerError(f"unknown listener {listener!r}")
        key = (name, encoder)
        data = self._encoded.get(key)
        if data is None:
            data = encoder(self._frames.get(name, SILENCE))
            self._encoded[key] = data
        return data
