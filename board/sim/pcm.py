"""Emulated PCM/TDM highway: every 20 ms, one frame per timeslot moves each way.

On the box, a TDM controller clocks 8 kHz A-law samples between the host and the
codec chips (SLIC, DAA, ISDN framer, DECT module), a frame buffer at a time. The sim
keeps that shape: each side ``write``s the frame it wants to send on a timeslot, and
``tick()`` carries it to the other side, where it can be ``read`` or is pushed to
subscribers. A slot nobody wrote carries A-law idle (0xD5), as a silent line does.

Frames written between two ticks go out on the next tick (one frame of latency each
way, like a real frame buffer); writing twice before a tick keeps the newer frame and
counts a slip. ``tick()`` is plain and synchronous so tests drive it directly;
``PcmClock`` ticks it in real time on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

SAMPLE_RATE = 8000
ALAW_IDLE = 0xD5  # A-law code for zero amplitude

FrameCallback = Callable[[int, bytes], None]  # (timeslot, frame)


class PcmSide:
    """One side of the highway: the firmware's, or the chips' and virtual devices'."""

    def __init__(self, name: str, timeslots: int, frame_bytes: int, idle: bytes) -> None:
        self.name = name
        self.timeslots = timeslots
        self.frame_bytes = frame_bytes
        self._outgoing: list[bytes | None] = [None] * timeslots
        self._incoming: list[bytes] = [idle] * timeslots
        self._subscribers: dict[int, list[FrameCallback]] = {}
        self.slips = 0  # frames overwritten before a tick carried them

    def _slot(self, slot: int) -> int:
        if not 0 <= slot < self.timeslots:
            raise IndexError(f"PCM timeslot {slot} out of range 0..{self.timeslots - 1}")
        return slot

    def write(self, slot: int, frame: bytes | bytearray | memoryview) -> None:
        """Queue the frame this side sends on ``slot`` at the next tick."""
        self._slot(slot)
        if len(frame) != self.frame_bytes:
            raise ValueError(
                f"PCM frame for timeslot {slot} is {len(frame)} bytes, not {self.frame_bytes}"
            )
        if self._outgoing[slot] is not None:
            self.slips += 1
        self._outgoing[slot] = bytes(frame)

    def read(self, slot: int) -> bytes:
        """The frame the other side sent on ``slot`` at the last tick (idle before any tick)."""
        return self._incoming[self._slot(slot)]

    def subscribe(self, slot: int, callback: FrameCallback) -> None:
        """Call ``callback(slot, frame)`` with each frame arriving on ``slot``, every tick."""
        self._subscribers.setdefault(self._slot(slot), []).append(callback)

    def unsubscribe(self, slot: int, callback: FrameCallback) -> None:
        callbacks = self._subscribers.get(slot)
        if callbacks and callback in callbacks:
            callbacks.remove(callback)
            if not callbacks:
                del self._subscribers[slot]

    def _deliver(self) -> None:
        incoming = self._incoming
        for slot, callbacks in list(self._subscribers.items()):
            frame = incoming[slot]
            for callback in list(callbacks):
                callback(slot, frame)


class PcmHighway:
    """A TDM bus of ``timeslots`` channels, ``frame_samples`` A-law bytes per frame."""

    def __init__(self, timeslots: int, frame_samples: int = 160) -> None:
        if timeslots < 1:
            raise ValueError("a PCM highway needs at least one timeslot")
        if frame_samples < 1:
            raise ValueError("a PCM frame needs at least one sample")
        self.timeslots = timeslots
        self.frame_samples = frame_samples
        self.idle = bytes([ALAW_IDLE]) * frame_samples
        self.firmware = PcmSide("firmware", timeslots, frame_samples, self.idle)
        self.device = PcmSide("device", timeslots, frame_samples, self.idle)
        self.ticks = 0

    @property
    def period(self) -> float:
        """Seconds of audio in one frame: 0.02 for 160 samples at 8 kHz."""
        return self.frame_samples / SAMPLE_RATE

    def tick(self) -> None:
        """One frame time: carry both directions, then tell subscribers on both sides.

        Both directions move before any callback runs, so a callback that answers with
        ``write`` lands in the next tick, never in this one.
        """
        self.ticks += 1
        self._carry(self.firmware, self.device)
        self._carry(self.device, self.firmware)
        self.device._deliver()
        self.firmware._deliver()

    def _carry(self, src: PcmSide, dst: PcmSide) -> None:
        idle = self.idle
        dst._incoming = [idle if frame is None else frame for frame in src._outgoing]
        src._outgoing = [None] * self.timeslots


class PcmClock:
    """Service that ticks a highway every frame period on the event loop's clock.

    Tick n is due at start + n * period, so sleep jitter never accumulates into drift.
    If the loop stalls for more than ``max_lag`` frames, the missed ticks are skipped
    (and counted) rather than replayed in a burst: a TDM bus does not wait either.
    """

    def __init__(self, highway: PcmHighway, name: str = "sim-pcm-clock", max_lag: int = 5) -> None:
        self.name = name
        self.highway = highway
        self.max_lag = max_lag
        self.skipped = 0

    async def run(self, ready: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        period = self.highway.period
        start = loop.time()
        n = 0
        ready()
        while True:
            n += 1
            delay = start + n * period - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                if -delay > self.max_lag * period:
                    behind = int(-delay / period)
                    self.skipped += behind
                    n += behind
                await asyncio.sleep(0)  # late: tick now, but let other tasks run first
            self.highway.tick()
