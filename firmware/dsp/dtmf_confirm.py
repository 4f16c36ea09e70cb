"""Second look at DTMF near the edge of ITU-T Q.24's frequency tolerance, in numpy.

spandsp's ``dtmf_rx`` measures each tone with a Goertzel filter at exactly its nominal
frequency over a 102-sample block. A tone 1.5 % off (24.5 Hz at 1633 Hz, a third of that
filter's 78 Hz bin) loses up to 1.4 dB there, so a digit with both tones 1.5 % off can fail
spandsp's fixed test "row + column energy within 0.85 dB of the total" in every block, or
in two blocks running mid-tone (the digit is then lost or reported twice).

``PairTest`` repeats spandsp's tests (per-tone threshold, twist, relative peak of 8 dB,
tone-to-total energy of -0.85 dB) on a window of two of its blocks (204 samples, 25.5 ms),
taking each tone's energy as the largest of nine DFT terms spread over +/-2 % of nominal.
An off-frequency tone then loses under 0.2 dB, and the longer window's narrower main lobe
keeps a neighbour's leakage far below the relative-peak limit. The tests themselves are
not loosened: speech still has to put more than 82 % of a 25.5 ms window into one row and
one column tone. ``deviations`` measures the tones for the frequency rules ("accept within
1.5 %, reject beyond 3.5 %").
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from firmware.dsp._audio import SAMPLE_RATE, Samples
from firmware.dsp.errors import DspError

BLOCK = 102  # spandsp's DTMF detection block (samples)
WINDOW = 2 * BLOCK  # what this module judges: the last two of spandsp's blocks
DIGIT_GRID = ("123A", "456B", "789C", "*0#D")
ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
NOMINAL = {
    key: (ROWS[r], COLS[c]) for r, keys in enumerate(DIGIT_GRID) for c, key in enumerate(keys)
}

DBM0_MAX_SINE_POWER = 3.14  # spandsp's dBm0 reference: a full-scale sine is +3.14 dBm0
# Each tone is looked for at nominal * (1 + d) for d in -2 % .. +2 % in 0.5 % steps: the
# worst case between two terms (0.25 % of 1633 Hz over 25.5 ms) costs 0.15 dB.
SPREAD = np.linspace(-0.02, 0.02, 9)
RELATIVE_PEAK = 10 ** (8.0 / 10)  # spandsp: other tones of the group at least 8 dB down
TO_TOTAL = WINDOW * 10 ** (-0.85 / 10)  # spandsp: the pair holds >= -0.85 dB of the energy
LAG1_MAX = 0.9  # pre-screen limits (see PairTest.digit), with margin over the bounds
LAG2_MAX = 0.6
LAG3_MAX = 0.25


def _bank() -> npt.NDArray[np.float32]:
    freqs = (np.array(ROWS + COLS)[:, None] * (1 + SPREAD[None, :])).ravel()
    phase = 2 * np.pi * np.outer(freqs, np.arange(WINDOW)) / SAMPLE_RATE
    return np.vstack([np.cos(phase), np.sin(phase)]).astype(np.float32)


_BANK = _bank()
_TERMS = len(SPREAD) * 8


class PairTest:
    """spandsp's per-block DTMF tests, on 204 samples, with tone energies tolerant to +/-2 %."""

    def __init__(self, *, normal_twist_db: float, reverse_twist_db: float, threshold_dbm0: float):
        self._normal_twist = 10 ** (normal_twist_db / 10)
        self._reverse_twist = 10 ** (reverse_twist_db / 10)
        # spandsp's goertzel_threshold_dbm0 (on 2|X|^2), scaled to this window's length; the
        # energies here are |X|^2, hence the halves below.
        self._threshold = (
            WINDOW * WINDOW * 32768.0**2 / 4 * 10 ** ((threshold_dbm0 - DBM0_MAX_SINE_POWER) / 10)
        )
        # Cauchy-Schwarz: |X|^2 never exceeds WINDOW * total energy, so a quieter window
        # cannot pass the threshold and is not worth a filter bank.
        self._min_energy = self._threshold / WINDOW

    def digit(self, window: Samples) -> str | None:
        """The digit ``window`` (the last ``WINDOW`` samples) passes every test as, if any."""
        if len(window) != WINDOW:
            raise DspError(f"PairTest needs {WINDOW} samples, got {len(window)}")
        x = window.astype(np.float32)
        total = float(np.dot(x, x))
        if total < self._min_energy:
            return None
        # Screen before the filter bank. A window that passes holds >= 82 % of its energy in
        # two tones within 683..1666 Hz, so its normalized autocorrelation at lag k is about
        # sum(share * cos(k * w)) plus at most the rest's 18 %: below 0.15 at lag 3, below
        # 0.57 at lag 2, within [0.04, 0.89] at lag 1, for any twist. Most speech (low-pass)
        # and line noise fall outside these, with margin, and skip the bank.
        if float(np.dot(x[3:], x[:-3])) > LAG3_MAX * total:
            return None
        lag1 = float(np.dot(x[1:], x[:-1]))
        if not 0.0 <= lag1 <= LAG1_MAX * total:
            return None
        if float(np.dot(x[2:], x[:-2])) > LAG2_MAX * total:
            return None
        squares = np.square(_BANK @ x)
        energy = np.add(squares[:_TERMS], squares[_TERMS:]).reshape(8, -1).max(axis=1).tolist()
        rows, cols = energy[:4], energy[4:]
        row, col = max(rows), max(cols)
        if row < self._threshold or col < self._threshold:
            return None
        if not (col < row * self._reverse_twist and col * self._normal_twist > row):
            return None
        if 2 * (row + col) <= TO_TOTAL * total:
            return None
        if sum(e * RELATIVE_PEAK > row for e in rows) > 1:
            return None
        if sum(e * RELATIVE_PEAK > col for e in cols) > 1:
            return None
        return DIGIT_GRID[rows.index(row)][cols.index(col)]


def level_dbm0(window: Samples) -> int:
    """The whole signal's level in ``window`` as spandsp reports it with a digit (dBm0)."""
    x = window.astype(np.float64)
    power = float(np.dot(x, x)) / max(len(x), 1) / 32768.0**2
    return round(10 * math.log10(max(power, 1e-12)) + DBM0_MAX_SINE_POWER)


_FFT = 8192
_HANN = np.hanning(WINDOW)


def deviations(window: Samples, digit: str) -> tuple[float, float]:
    """How far the row and the column tone of ``digit`` in ``window`` are off, in Hz.

    Each tone's frequency is the interpolated peak of a Hann-windowed, zero-padded spectrum
    searched within 6 % of nominal: finer than the detection tests, which pass a low-group
    tone up to about 4 % off.
    """
    x = window[-WINDOW:].astype(np.float64) * _HANN
    spectrum = np.abs(np.fft.rfft(x, n=_FFT))
    found = []
    for nominal in NOMINAL[digit]:
        lo = int(nominal * (1 - 0.06) * _FFT / SAMPLE_RATE)
        hi = int(nominal * (1 + 0.06) * _FFT / SAMPLE_RATE)
        k = lo + int(np.argmax(spectrum[lo:hi]))
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-9)
        curve = a - 2 * b + c  # < 0 at a true peak; a flat top (no tone) stays at bin k
        peak = (k + (0.5 * (a - c) / curve if curve < 0 else 0.0)) * SAMPLE_RATE / _FFT
        found.append(float(peak - nominal))
    return found[0], found[1]
