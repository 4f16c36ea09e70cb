"""Call-progress tones from a country profile: generation (spandsp tone_gen) and detection
(spandsp super_tone_rx)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from firmware.dsp._audio import FRAME_SAMPLES, AudioInput, Samples, as_samples, in_ptr, out_ptr
from firmware.dsp._lib import check_ptr, ffi, spandsp
from firmware.dsp._state import CallbackGuard, CState
from firmware.dsp.country import CountryProfile, ToneSpec
from firmware.dsp.errors import DspError

_CONTINUOUS_MS = 10000  # a continuous tone is one endless-repeating burst of this length


class ToneGenerator(CState):
    """Plays one ToneSpec: its bursts in order (each its own tone_gen descriptor), repeated
    unless the spec says once. Frequencies and levels are rounded to whole Hz / dB."""

    def __init__(self, spec: ToneSpec) -> None:
        lib = spandsp()
        self._lib = lib
        level = round(spec.level_dbm0)
        bursts = spec.bursts() or [(spec.frequencies, _CONTINUOUS_MS, 0)]
        loop = 1 if spec.continuous else 0  # tone_gen repeats it itself: no phase jumps
        frees = []
        self._descs = []
        try:
            for freqs, on_ms, off_ms in bursts:
                f1 = round(freqs[0])
                f2 = round(freqs[1]) if len(freqs) > 1 else 0
                desc = lib.tone_gen_descriptor_init(
                    ffi.NULL, f1, level, f2, level if f2 else 0, on_ms, off_ms, 0, 0, loop
                )
                check_ptr(desc, "tone_gen_descriptor_init")
                frees.append((lib.tone_gen_descriptor_free, desc))
                self._descs.append(desc)
            self._st = check_ptr(lib.tone_gen_init(ffi.NULL, self._descs[0]), "tone_gen_init")
            frees.append((lib.tone_gen_free, self._st))
        except BaseException:
            for free, ptr in reversed(frees):
                free(ptr)
            raise
        self._own(frees)
        self._repeat = spec.repeat or spec.continuous
        self._step = 0
        self._finished = False

    @property
    def finished(self) -> bool:
        """True once a play-once tone has played all of its cadence."""
        return self._finished

    def reset(self) -> None:
        """Start again from the first burst."""
        self._check_open()
        self._step = 0
        self._finished = False
        self._lib.tone_gen_init(self._st, self._descs[0])

    def read(self, samples: int = FRAME_SAMPLES) -> Samples:
        """The next ``samples`` of the tone (silence once a play-once tone is over)."""
        self._check_open()
        if samples < 0:
            raise DspError(f"cannot read {samples} samples")
        out = np.zeros(samples, dtype=np.int16)
        done = 0
        while done < samples and not self._finished:
            view = out[done:]
            n = self._lib.tone_gen(self._st, out_ptr(view), len(view))
            done += n
            if done < samples:  # this burst (tone and pause) is over
                self._step += 1
                if self._step == len(self._descs):
                    if not self._repeat:
                        self._finished = True
                        break
                    self._step = 0
                self._lib.tone_gen_init(self._st, self._descs[self._step])
        return out


@dataclass(frozen=True, slots=True)
class ToneEvent:
    """``tone`` started (its name), or the tone that was present ended (``tone`` None)."""

    tone: str | None
    sample: int
    """Samples fed before the report (the detector's clock)."""


DEFAULT_DETECT = ("dial", "ringback", "busy", "congestion", "special_information")
_GUARD_HZ = 3000  # super_tone_rx compares its two best detectors: always give it two


class ToneDetector(CState):
    """Recognizes a profile's tones, cadence included, in 8 kHz audio (super_tone_rx).

    One super_tone_rx descriptor per profile: its 128-sample Goertzel blocks cannot tell
    425 Hz from 440/480 Hz, so mixing countries in one detector would confuse them.
    Durations are matched within ±(15% + 40 ms); a continuous tone (dial) is reported once
    it has lasted longer than any burst of another tone of the same frequencies.
    """

    def __init__(
        self,
        profile: CountryProfile,
        names: Iterable[str] = DEFAULT_DETECT,
        on_event: Callable[[ToneEvent], object] | None = None,
    ) -> None:
        specs = {name: profile.tone(name) for name in names}
        if not specs:
            raise DspError("a tone detector needs at least one tone")
        lib = spandsp()
        self._lib = lib
        self._on_event = on_event
        self._guard = CallbackGuard()
        self._reports: list[int] = []
        self._events: list[ToneEvent] = []
        self._current: str | None = None
        self._fed = 0

        def report(_user: object, code: int, level: int, delay: int) -> None:
            self._guard.run(self._reports.append, code)

        self._cb = ffi.callback("tone_report_func_t", report)
        elements = {name: _elements(spec, specs) for name, spec in specs.items()}
        freqs = sorted({f for els in elements.values() for e in els for f in e[:2] if f})
        if len(freqs) < 2:
            freqs = sorted({*freqs, _GUARD_HZ})
        self._codes: dict[int, str] = {}
        desc = check_ptr(lib.super_tone_rx_make_descriptor(ffi.NULL), "super_tone_rx_make")
        try:
            # spandsp numbers its detectors in the order frequencies first appear and expects
            # every element's pair in that order: register them all, ascending, in a first
            # tone that cannot match (a minute of each in turn), then add the real tones.
            register = lib.super_tone_rx_add_tone(desc)
            for f in freqs:
                lib.super_tone_rx_add_element(desc, register, f, 0, 60000, 0)
            for name, els in elements.items():
                tone = lib.super_tone_rx_add_tone(desc)
                self._codes[tone] = name
                for f1, f2, lo, hi in els:
                    lib.super_tone_rx_add_element(desc, tone, f1, f2, lo, hi)
            self._st = check_ptr(
                lib.super_tone_rx_init(ffi.NULL, desc, self._cb, ffi.NULL), "super_tone_rx_init"
            )
        except BaseException:
            lib.super_tone_rx_free_descriptor(desc)
            raise
        self._own(
            [(lib.super_tone_rx_free_descriptor, desc), (lib.super_tone_rx_free, self._st)],
            self._cb,
        )

    @property
    def current(self) -> str | None:
        """The tone recognized right now, if any."""
        return self._current

    def feed(self, audio: AudioInput) -> list[ToneEvent]:
        """Process a block of audio (normally one 20 ms frame); the changes seen in it."""
        self._check_open()
        samples = as_samples(audio)
        if len(samples):
            self._lib.super_tone_rx(self._st, in_ptr(samples), len(samples))
        self._fed += len(samples)
        self._guard.reraise()
        for code in self._reports:
            name = self._codes.get(code)
            if name == self._current:
                continue
            if name is None and self._current is None:
                continue
            self._current = name
            event = ToneEvent(name, self._fed)
            self._events.append(event)
            if self._on_event is not None:
                self._on_event(event)
        self._reports.clear()
        events, self._events = self._events, []
        return events


def _window(ms: int) -> tuple[int, int]:
    return max(0, round(ms * 0.85) - 40), round(ms * 1.15) + 40


def _elements(spec: ToneSpec, all_specs: dict[str, ToneSpec]) -> list[tuple[int, int, int, int]]:
    """super_tone_rx elements (f1, f2, min_ms, max_ms; max 0 = unbounded) of ``spec``."""
    if spec.continuous:
        f1, f2 = _pair(spec.frequencies)
        longest = [
            _window(on)[1]
            for other in all_specs.values()
            for freqs, on, _ in other.bursts()
            if _pair(freqs) == (f1, f2)
        ]
        return [(f1, f2, max([1000, *longest]) + 100, 0)]
    out = []
    bursts = spec.bursts()
    for i, (freqs, on, off) in enumerate(bursts):
        out.append((*_pair(freqs), *_window(on)))
        last = i == len(bursts) - 1
        if off >= 50 and (spec.repeat or not last):
            out.append((0, 0, *_window(off)))
    return out


def _pair(freqs: tuple[float, ...]) -> tuple[int, int]:
    """Whole-Hz frequencies, the lower first (the detector order), 0 for none."""
    if len(freqs) == 1:
        return round(freqs[0]), 0
    low, high = sorted(round(f) for f in freqs)
    return low, high
