"""DTMF (ITU-T Q.23/Q.24) receive and generate through spandsp's dtmf_rx / dtmf_tx."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from firmware.dsp._audio import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    AudioInput,
    Samples,
    as_samples,
    in_ptr,
    out_ptr,
)
from firmware.dsp._lib import check_ptr, ffi, spandsp
from firmware.dsp._state import CallbackGuard, CState
from firmware.dsp.errors import DspError

DTMF_DIGITS = "0123456789*#ABCD"

# Acceptance limits of the receiver. spandsp's twist test is a strict comparison of block
# energies at exactly the Q.24 figures (8 dB normal, 4 dB reverse), so a tone pair sent with
# exactly that twist would be lost about half the time; one extra dB of margin keeps Q.24's
# "accept 8 dB / 4 dB" true while still rejecting gross twist (tests/unit/dsp).
DEFAULT_NORMAL_TWIST_DB = 9
DEFAULT_REVERSE_TWIST_DB = 5
# Q.24 window: accept within 1.5% (+2 Hz), reject beyond 3.5%; measured tones are judged
# against the middle of that window.
DEFAULT_MAX_DEVIATION = 0.025
# Per-tone detection threshold: spandsp's own default (-42 dBm0), well below Q.24's
# "detect up to 26 dB attenuation" of a -4...-10 dBm0 sender.
DEFAULT_THRESHOLD_DBM0 = -42


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
        self._guard = CallbackGuard()
        self._started: list[str] = []
        self._current: str | None = None
        self._reports: list[tuple[int, int, int]] = []
        self._history = np.zeros(_HISTORY, dtype=np.int16)
        self._phase = 0  # samples into spandsp's current detection block
        lib = spandsp()
        self._lib = lib

        def report(_user: object, code: int, level: int, delay: int) -> None:
            self._guard.run(self._reports.append, (code, level, delay))

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
        return self._current

    def feed(self, audio: AudioInput) -> list[str]:
        """Process a block of audio (normally one 20 ms frame); the digits that began in it."""
        self._check_open()
        samples = as_samples(audio)
        # Cut the block at spandsp's detection-block boundaries: reports come only at those,
        # so the audio behind each report is known exactly (at most 3 calls per 20 ms).
        pos = 0
        while pos < len(samples):
            take = min(len(samples) - pos, _BLOCK - self._phase)
            self._lib.dtmf_rx(self._st, in_ptr(samples[pos : pos + take]), take)
            self._guard.reraise()
            self._phase = (self._phase + take) % _BLOCK
            pos += take
            if self._reports:
                reports, self._reports = self._reports, []
                recent = np.concatenate([self._history, samples[:pos]])[-_HISTORY:]
                for report in reports:
                    self._handle(recent, *report)
        self._remember(samples)
        started, self._started = self._started, []
        return started

    def _remember(self, part: Samples) -> None:
        n = len(part)
        if n == 0:
            return
        if n >= _HISTORY:
            self._history[:] = part[-_HISTORY:]
        else:
            self._history[:-n] = self._history[n:]
            self._history[-n:] = part

    def _handle(self, recent: Samples, code: int, level: int, delay: int) -> None:
        digit = chr(code) if code else None
        if digit is not None and not self._on_frequency(recent, digit):
            self._current = _REJECTED
            return
        if digit is None and self._current == _REJECTED:
            self._current = None
            return
        if digit is not None:
            self._started.append(digit)
        self._current = digit
        if self._on_event is not None:
            self._on_event(DtmfEvent(digit, level, delay))

    def _on_frequency(self, recent: Samples, digit: str) -> bool:
        row, col = _NOMINAL[digit]
        x = recent[-2 * _BLOCK :].astype(np.float64) * _WINDOW
        spectrum = np.abs(np.fft.rfft(x, n=_FFT))
        for nominal in (row, col):
            lo = int(nominal * (1 - 0.06) * _FFT / SAMPLE_RATE)
            hi = int(nominal * (1 + 0.06) * _FFT / SAMPLE_RATE)
            k = lo + int(np.argmax(spectrum[lo:hi]))
            a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-9)
            peak = (k + 0.5 * (a - c) / (a - 2 * b + c)) * SAMPLE_RATE / _FFT
            if abs(peak / nominal - 1.0) > self._max_deviation:
                return False
        return True


_BLOCK = 102  # spandsp's DTMF detection block (samples)
_HISTORY = 4 * _BLOCK
_FFT = 8192
_WINDOW = np.hanning(2 * _BLOCK)
_REJECTED = "rejected"
_ROWS = (697.0, 770.0, 852.0, 941.0)
_COLS = (1209.0, 1336.0, 1477.0, 1633.0)
_NOMINAL = {
    key: (_ROWS[r], _COLS[c])
    for r, keys in enumerate(("123A", "456B", "789C", "*0#D"))
    for c, key in enumerate(keys)
}


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
