"""DTMF (ITU-T Q.23/Q.24) receive and generate through spandsp's dtmf_rx / dtmf_tx."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from firmware.dsp._audio import (
    FRAME_SAMPLES,
    AudioInput,
    Samples,
    as_samples,
    in_ptr,
    out_ptr,
)
from firmware.dsp._lib import check_ptr, ffi, spandsp
from firmware.dsp._state import CallbackGuard, CState
from firmware.dsp.dtmf_confirm import BLOCK, NOMINAL, WINDOW, PairTest, deviations, level_dbm0
from firmware.dsp.errors import DspError

DTMF_DIGITS = "0123456789*#ABCD"

# Acceptance limits of the receiver. spandsp's twist test is a strict comparison of block
# energies at exactly the Q.24 figures (8 dB normal, 4 dB reverse), so a tone pair sent with
# exactly that twist would be lost about half the time; one extra dB of margin keeps Q.24's
# "accept 8 dB / 4 dB" true while still rejecting gross twist (tests/unit/dsp).
DEFAULT_NORMAL_TWIST_DB = 9
DEFAULT_REVERSE_TWIST_DB = 5
# Q.24 window: accept within 1.5% (+2 Hz), reject beyond 3.5%; digits spandsp finds are
# judged against the middle of that window.
DEFAULT_MAX_DEVIATION = 0.025
# Digits only the confirmation path finds must lie inside Q.24's acceptance window itself,
# +/-(1.5 % + 2 Hz), plus 1 Hz for the measurement: speech that comes near that path's energy
# tests has had its "tones" about 2 % or more off (tests/unit/dsp/test_dsp_talkoff.py).
Q24_ACCEPT_DEVIATION = 0.015
Q24_ACCEPT_SLACK_HZ = 3.0
# And it only starts digits of the kind spandsp's nominal-frequency filters lose: one tone at
# least 1 % off (spandsp alone finds every digit with both tones up to 1.3 % off). Nearer
# nominal, spandsp is the detector, with its own behaviour in noise, twist and level.
CONFIRM_MIN_DEVIATION = 0.01
# Per-tone detection threshold: spandsp's own default (-42 dBm0), well below Q.24's
# "detect up to 26 dB attenuation" of a -4...-10 dBm0 sender.
DEFAULT_THRESHOLD_DBM0 = -42
# The confirmation path ends its digit after this many windows in a row without it, as
# spandsp ends one after two blocks.
_MISSES_TO_END = 2


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    """A digit starting (``digit`` set) or the current digit ending (``digit`` None)."""

    digit: str | None
    level_dbm0: int
    """Level of the whole signal at the report, dBm0 (spandsp's measure; -99 on ends)."""
    samples_since_last: int
    """Samples since the previous event: the pause before a digit, the length of a digit."""


class DtmfReceiver(CState):
    """Detects DTMF digits in 8 kHz audio; feed it every frame of the line.

    ``feed`` returns the digits that started in that frame; ``on_event`` (optional) also sees
    digit ends, with levels and durations. Detection is spandsp's (``dtmf_rx``, parameters of
    ``dtmf_rx_parms``: acceptable twist in whole dB each way, the per-tone threshold in whole
    dBm0, an optional 350/440 Hz dial-tone notch).

    spandsp's fixed energy tests let a low-group tone through up to about 4% off frequency,
    beyond Q.24's "reject beyond 3.5%". So each digit spandsp reports is checked once: both
    tones are measured on the two detection blocks that produced it and the digit is dropped
    (with its end) when either deviates more than ``max_deviation``.

    spandsp also loses digits whose two tones are both near Q.24's 1.5% limit (its Goertzel
    filters sit exactly on the nominal frequencies). While spandsp is silent, a confirmation
    path (``firmware.dsp.dtmf_confirm``) runs spandsp's own tests on its last two blocks with
    tone energies tolerant to +/-2% and accepts what passes them with one tone at least 1% off
    and both inside Q.24's acceptance window; it also keeps a digit alive when spandsp drops
    it mid-tone, so one long digit is not reported twice. It sees the line before the
    dial-tone notch, so over dial tone it adds little. A digit replacing another without a
    pause is reported as the old digit's end, then the new digit.
    """

    def __init__(
        self,
        *,
        normal_twist_db: int = DEFAULT_NORMAL_TWIST_DB,
        reverse_twist_db: int = DEFAULT_REVERSE_TWIST_DB,
        threshold_dbm0: int = DEFAULT_THRESHOLD_DBM0,
        filter_dial_tone: bool = False,
        max_deviation: float = DEFAULT_MAX_DEVIATION,
        on_event: Callable[[DtmfEvent], object] | None = None,
    ) -> None:
        if not 0 <= normal_twist_db <= 20 or not 0 <= reverse_twist_db <= 20:
            raise DspError("DTMF twist limits must be 0..20 dB")
        if not -60 <= threshold_dbm0 <= 0:
            raise DspError("DTMF threshold must be -60..0 dBm0")
        if not 0.0 < max_deviation <= 0.1:
            raise DspError("DTMF frequency deviation limit must be in (0, 0.1]")
        self._on_event = on_event
        self._max_deviation = max_deviation
        self._pair = PairTest(
            normal_twist_db=normal_twist_db,
            reverse_twist_db=reverse_twist_db,
            threshold_dbm0=threshold_dbm0,
        )
        self._guard = CallbackGuard()
        self._started: list[str] = []
        self._digit: str | None = None  # the digit being received (reported)
        self._ignored: str | None = None  # a digit still sounding, dropped for its frequencies
        self._confirming = False  # the confirmation path, not spandsp, follows that digit
        self._misses = 0
        self._clock = 0  # samples fed
        self._last_event = 0
        self._reports: list[tuple[int, int]] = []
        self._history = np.zeros(WINDOW, dtype=np.int16)
        self._phase = 0  # samples into spandsp's current detection block
        lib = spandsp()
        self._lib = lib

        def report(_user: object, code: int, level: int, _delay: int) -> None:
            self._guard.run(self._reports.append, (code, level))

        self._cb = ffi.callback("tone_report_func_t", report)
        self._st = check_ptr(lib.dtmf_rx_init(ffi.NULL, ffi.NULL, ffi.NULL), "dtmf_rx_init")
        self._own([(lib.dtmf_rx_free, self._st)], self._cb)
        lib.dtmf_rx_set_realtime_callback(self._st, self._cb, ffi.NULL)
        lib.dtmf_rx_parms(
            self._st,
            1 if filter_dial_tone else 0,
            normal_twist_db,
            reverse_twist_db,
            threshold_dbm0,
        )

    @property
    def current(self) -> str | None:
        """The digit being received right now, if any."""
        return self._digit

    def feed(self, audio: AudioInput) -> list[str]:
        """Process a block of audio (normally one 20 ms frame); the digits that began in it."""
        self._check_open()
        samples = as_samples(audio)
        # Cut the block at spandsp's detection-block boundaries: reports come only at those,
        # so the audio behind each report is known exactly (at most 3 calls per 20 ms).
        # The last WINDOW samples before this call, then this call's: every window judged
        # below is a view of it.
        line = np.concatenate([self._history, samples])
        pos = 0
        while pos < len(samples):
            take = min(len(samples) - pos, BLOCK - self._phase)
            self._lib.dtmf_rx(self._st, in_ptr(samples[pos : pos + take]), take)
            self._guard.reraise()
            self._clock += take
            self._phase = (self._phase + take) % BLOCK
            pos += take
            if self._phase == 0:
                self._block_end(line[pos : pos + WINDOW])
        self._history = line[-WINDOW:]
        started, self._started = self._started, []
        return started

    def _block_end(self, window: Samples) -> None:
        """spandsp finished a block; ``window`` is its last two blocks."""
        reports, self._reports = self._reports, []
        for code, level in reports:
            if code:
                self._spandsp_start(chr(code), level, window)
            else:
                self._spandsp_end(window)
        if reports:
            return
        if self._confirming:
            self._follow(self._pair.digit(window))
        elif self._digit is None and self._ignored is None:
            self._search(window)

    def _spandsp_start(self, digit: str, level: int, window: Samples) -> None:
        self._confirming = False
        if digit == self._digit:  # the confirmation path already has it
            return
        self._end()
        self._ignored = None
        if _within(digit, deviations(window, digit), self._max_deviation):
            self._start(digit, level)
        else:
            self._ignored = digit

    def _spandsp_end(self, window: Samples) -> None:
        if self._confirming:
            return
        if self._ignored is not None:
            self._ignored = None
        elif self._digit is not None:
            # spandsp lost two blocks in a row; a tone that still passes the tolerant tests
            # at an accepted frequency is the same digit, not an end and a new start.
            if self._pair.digit(window) == self._digit and _within(
                self._digit, deviations(window, self._digit), self._max_deviation
            ):
                self._confirming = True
                self._misses = 0
            else:
                self._end()

    def _follow(self, found: str | None) -> None:
        """One window of the digit the confirmation path follows (``found``: what it holds)."""
        if found is not None and found in (self._digit, self._ignored):
            self._misses = 0
            return
        self._misses += 1
        if self._misses >= _MISSES_TO_END:
            self._end()
            self._ignored = None
            self._confirming = False

    def _search(self, window: Samples) -> None:
        """One window while spandsp is silent and no digit sounds: the near-edge case."""
        digit = self._pair.digit(window)
        if digit is None:
            return
        off = deviations(window, digit)
        if all(
            abs(hz) < CONFIRM_MIN_DEVIATION * f for hz, f in zip(off, NOMINAL[digit], strict=True)
        ):
            return  # near nominal: spandsp's to find
        self._confirming = True
        self._misses = 0
        if _within(digit, off, Q24_ACCEPT_DEVIATION, Q24_ACCEPT_SLACK_HZ):
            self._start(digit, level_dbm0(window))
        else:
            self._ignored = digit

    def _start(self, digit: str, level: int) -> None:
        self._digit = digit
        self._started.append(digit)
        self._emit(DtmfEvent(digit, level, self._clock - self._last_event))

    def _end(self) -> None:
        if self._digit is None:
            return
        self._digit = None
        self._emit(DtmfEvent(None, -99, self._clock - self._last_event))

    def _emit(self, event: DtmfEvent) -> None:
        self._last_event = self._clock
        if self._on_event is not None:
            self._on_event(event)


def _within(digit: str, off_hz: tuple[float, float], fraction: float, slack_hz: float = 0) -> bool:
    """Whether both tones, ``off_hz`` from nominal, lie within ``fraction`` (+ ``slack_hz``)."""
    return all(
        abs(hz) <= fraction * f + slack_hz for hz, f in zip(off_hz, NOMINAL[digit], strict=True)
    )


class DtmfSender(CState):
    """Generates DTMF digits at a given level (dBm0 per tone), twist and on/off timing."""

    def __init__(
        self,
        *,
        level_dbm0: int = -10,
        twist_db: int = 0,
        on_ms: int = 80,
        off_ms: int = 80,
    ) -> None:
        if not -50 <= level_dbm0 <= 0 or not -10 <= twist_db <= 10 or level_dbm0 + twist_db > 0:
            raise DspError("DTMF level must be -50..0 dBm0 per tone, twist -10..10 dB")
        if not 10 <= on_ms <= 10000 or not 0 <= off_ms <= 10000:
            raise DspError("DTMF on time must be 10..10000 ms, off time 0..10000 ms")
        lib = spandsp()
        self._lib = lib
        self._st = check_ptr(lib.dtmf_tx_init(ffi.NULL), "dtmf_tx_init")
        self._own([(lib.dtmf_tx_free, self._st)])
        lib.dtmf_tx_set_level(self._st, level_dbm0, twist_db)
        lib.dtmf_tx_set_timing(self._st, on_ms, off_ms)

    def put(self, digits: str) -> None:
        """Queue digits to send (each tone followed by its pause)."""
        self._check_open()
        bad = [d for d in digits if d not in DTMF_DIGITS]
        if bad:
            raise DspError(f"not DTMF digits: {''.join(bad)!r}")
        data = digits.encode("ascii")
        if data and self._lib.dtmf_tx_put(self._st, data, len(data)) != 0:
            raise DspError("DTMF send queue full (at most 128 digits queued)")

    def read(self, samples: int = FRAME_SAMPLES) -> Samples:
        """The next ``samples`` of output; silence once the queue is empty."""
        self._check_open()
        out = np.zeros(samples, dtype=np.int16)
        if samples:
            self._lib.dtmf_tx(self._st, out_ptr(out), samples)
        return out

    def generate(self, digits: str) -> Samples:
        """All samples of ``digits`` (queued after anything pending), tones and pauses."""
        self.put(digits)
        chunks: list[Samples] = []
        while True:
            chunk = np.zeros(4096, dtype=np.int16)
            n = self._lib.dtmf_tx(self._st, out_ptr(chunk), len(chunk))
            if n <= 0:
                break
            chunks.append(chunk[:n])
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
