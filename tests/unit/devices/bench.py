"""Per-tick access to the firmware side of the PCM highway for device tests.

The AnalogRig (tests/unit/drivers) runs chip models and drivers on a fake clock; these
helpers add what the firmware would do each tick: send a frame on a timeslot and
collect the frame that arrived.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from unit.drivers.analog_rig import TICK, AnalogRig

from firmware.media.codecs.g711 import alaw_decode, alaw_encode

Samples = npt.NDArray[np.int16]


def run_with_audio(
    rig: AnalogRig,
    slot: int,
    seconds: float,
    send: Samples | Callable[[], Samples] | None = None,
) -> Samples:
    """Run ``seconds``; each tick send the next 160 samples on ``slot``; return what came back."""
    got: list[Samples] = []
    pos = 0
    for _ in range(round(seconds / TICK)):
        frame: Samples | None = None
        if callable(send):
            frame = send()
        elif send is not None and pos < len(send):
            frame = np.zeros(160, dtype=np.int16)
            chunk = send[pos : pos + 160]
            frame[: len(chunk)] = chunk
            pos += 160
        if frame is not None:
            rig.highway.firmware.write(slot, alaw_encode(frame))
        rig.run(TICK)
        got.append(alaw_decode(rig.highway.firmware.read(slot)))
    return np.concatenate(got) if got else np.zeros(0, dtype=np.int16)


def dominant_hz(samples: Samples) -> float:
    x = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.argmax(spectrum[1:]) + 1) * 8000 / len(samples)


def tone(hz: float, seconds: float, amplitude: int = 6000) -> Samples:
    t = np.arange(round(seconds * 8000)) / 8000
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)
