"""Packet loss concealment (spandsp plc): fills gaps from the pitch of the last audio.

Feed every received frame through ``rx`` (it smooths the join after a gap) and ask
``fillin`` for each missing frame; both at 8 kHz.
"""

from __future__ import annotations

import numpy as np

from firmware.dsp._audio import FRAME_SAMPLES, AudioInput, Samples, as_samples, out_ptr
from firmware.dsp._lib import check_ptr, ffi, spandsp
from firmware.dsp._state import CState
from firmware.dsp.errors import DspError


class Plc(CState):
    """One concealment state per received stream."""

    def __init__(self) -> None:
        lib = spandsp()
        self._lib = lib
        self._st = check_ptr(lib.plc_init(ffi.NULL), "plc_init")
        self._own([(lib.plc_free, self._st)])

    def rx(self, audio: AudioInput) -> Samples:
        """Record received audio; returns it, faded in if it follows concealed frames."""
        self._check_open()
        samples = np.array(as_samples(audio), dtype=np.int16, copy=True)
        if len(samples):
            self._lib.plc_rx(self._st, out_ptr(samples), len(samples))
        return samples

    def fillin(self, samples: int = FRAME_SAMPLES) -> Samples:
        """Synthesize ``samples`` of audio standing in for lost audio."""
        self._check_open()
        if samples < 0:
            raise DspError(f"fill-in length must not be negative: {samples}")
        out = np.zeros(samples, dtype=np.int16)
        if samples:
            self._lib.plc_fillin(self._st, out_ptr(out), samples)
        return out
