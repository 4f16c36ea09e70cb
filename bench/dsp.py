"""DSP cost per channel: DTMF detection and echo cancelling on 20 ms frames.

Measures CPU time (process time, one thread) per channel per 20 ms frame for the box's
DtmfReceiver (spandsp dtmf_rx, the Q.24 frequency check on its digits, and the numpy
confirmation path for tones near Q.24's 1.5 % limit, which screens every 102-sample block
spandsp is silent on) and EchoCanceller (speexdsp, 32 ms tail), separately and together, over
many channels' worth of frames, and prints how many channels one core carries in real time
(20 ms of CPU per 20 ms of audio per core). The near-end audio is loud continuous noise with
echo: the worst case for the confirmation path, whose screen passes most of it.

Run: .venv/bin/python bench/dsp.py [--seconds 60] [--channels 8]
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np

from firmware.dsp import DtmfReceiver, EchoCanceller

FRAME = 160
FRAME_MS = 20.0


def line_audio(seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Far-end speech-like noise and the near end: its echo plus a talker and some digits."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 8000) // FRAME * FRAME
    far = rng.standard_normal(n) * 2500
    echo = np.convolve(far, np.r_[np.zeros(40), 0.25 * np.exp(-np.arange(60) / 15)])[:n]
    near = echo + rng.standard_normal(n) * 800
    t = np.arange(400) / 8000
    for k in range(0, n - 8000, 8000):  # one digit a second
        near[k : k + 400] += 4000 * (np.sin(2 * np.pi * 770 * t) + np.sin(2 * np.pi * 1336 * t))
    return np.round(far).astype(np.int16), np.clip(np.round(near), -32768, 32767).astype(np.int16)


def measure(
    name: str, channels: int, seconds: float, work: Callable[[int], Callable[[int], None]]
) -> float:
    """CPU microseconds per channel per frame for ``work`` over ``channels`` channels."""
    steps = [work(c) for c in range(channels)]
    frames = int(seconds * 1000 / FRAME_MS)
    start = time.process_time()
    for i in range(frames):
        for step in steps:
            step(i)
    used = time.process_time() - start
    per_frame_us = used / (frames * channels) * 1e6
    print(
        f"{name:<26} {per_frame_us:8.1f} us/channel/frame  "
        f"({per_frame_us / FRAME_MS * 1000 / 1e3:6.3f} ms CPU per s of audio)  "
        f"-> {FRAME_MS * 1000 / per_frame_us:8,.0f} channels per core"
    )
    return per_frame_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio per channel")
    parser.add_argument("--channels", type=int, default=8)
    args = parser.parse_args()
    far, near = line_audio(args.seconds + 1, seed=1)
    nframes = len(far) // FRAME
    digits_seen: list[int] = []

    def dtmf(_c: int) -> Callable[[int], None]:
        rx = DtmfReceiver()

        def step(i: int) -> None:
            j = (i % nframes) * FRAME
            digits_seen.append(len(rx.feed(near[j : j + FRAME])))

        return step

    def echo(_c: int) -> Callable[[int], None]:
        ec = EchoCanceller(tail_ms=32)

        def step(i: int) -> None:
            j = (i % nframes) * FRAME
            ec.process(near[j : j + FRAME], far[j : j + FRAME])

        return step

    def both(c: int) -> Callable[[int], None]:
        a, b = dtmf(c), echo(c)

        def step(i: int) -> None:
            b(i)
            a(i)

        return step

    print(
        f"bench/dsp: {args.channels} channels x {args.seconds:.0f} s of 20 ms frames, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    measure("DTMF detection", args.channels, args.seconds, dtmf)
    found = sum(digits_seen)
    measure("echo canceller (32 ms)", args.channels, args.seconds, echo)
    measure("DTMF + echo canceller", args.channels, args.seconds, both)
    print(f"digits detected in the DTMF-only run: {found} (sanity: > 0)")


if __name__ == "__main__":
    main()
