"""Line echo cancelling with speexdsp's block echo canceller (MDF), one 20 ms frame per call.

Not spandsp's echo_can: Debian's 0.0.6 build prints debug lines for every sample and costs
one foreign call per sample (see /work/shared/REFERENCE.md).
"""

from __future__ import annotations

import numpy as np

from firmware.dsp import _lib
from firmware.dsp._audio import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    AudioInput,
    Samples,
    as_samples,
    in_ptr,
    out_ptr,
)
from firmware.dsp._lib import check_ptr, ffi, speexdsp
from firmware.dsp._state import CState
from firmware.dsp.errors import DspError

DEFAULT_TAIL_MS = 32


class EchoCanceller(CState):
    """Removes the echo of ``far`` (what the box sent toward the line) from ``near`` (what
    came back), frame by frame. The tail is the longest echo delay it models."""

    def __init__(self, tail_ms: int = DEFAULT_TAIL_MS, frame: int = FRAME_SAMPLES) -> None:
        if not 8 <= tail_ms <= 512:
            raise DspError(f"echo tail must be 8..512 ms, not {tail_ms}")
        if not 40 <= frame <= 1024:
            raise DspError(f"echo canceller frame must be 40..1024 samples, not {frame}")
        lib = speexdsp()
        self._lib = lib
        self._frame = frame
        tail = tail_ms * SAMPLE_RATE // 1000
        self._st = check_ptr(lib.speex_echo_state_init(frame, tail), "speex_echo_state_init")
        self._own([(lib.speex_echo_state_destroy, self._st)])
        rate = ffi.new("int *", SAMPLE_RATE)
        if lib.speex_echo_ctl(self._st, _lib.SPEEX_ECHO_SET_SAMPLING_RATE, rate) != 0:
            raise DspError("speex_echo_ctl(SET_SAMPLING_RATE) failed")

    def process(self, near: AudioInput, far: AudioInput) -> Samples:
        """The near-end frame with the far end's echo removed."""
        self._check_open()
        n = as_samples(near)
        f = as_samples(far)
        if len(n) != self._frame or len(f) != self._frame:
            raise DspError(f"echo canceller takes frames of {self._frame} samples")
        out = np.empty(self._frame, dtype=np.int16)
        self._lib.speex_echo_cancellation(self._st, in_ptr(n), in_ptr(f), out_ptr(out))
        return out

    def reset(self) -> None:
        """Forget the learned echo path (a new call on the port)."""
        self._check_open()
        self._lib.speex_echo_state_reset(self._st)
