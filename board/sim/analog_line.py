"""Line side of the sim's analog ports: what a virtual phone or a virtual PSTN line touches.

A chip model (Si3215 for FXS, Si3050 for FXO) sits between the PCM highway and one of
these lines. The virtual devices never see registers: a phone lifts its handset and
hears audio, a PSTN line applies ring voltage and battery and hears audio. Every
signalling change carries a timestamp on the sim's clock (monotonic seconds), and a
change may be scheduled for a later time, so a phone can make a 100 ms hook flash
without sleeping and the chip model still sees the break with its exact duration.

``FxsLine``: the phone sets the hook; the SLIC sets the feed (open, active, on-hook
transmission, ringing) and polarity, which the phone observes with their timing.
``FxoLine``: the network sets battery feed, polarity and ring voltage; the DAA sets
its hook, which the network observes. Audio moves as 20 ms A-law frames both ways.
"""

from __future__ import annotations

import bisect
import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from .pcm import ALAW_IDLE

Clock = Callable[[], float]
FRAME_BYTES = 160  # 20 ms of 8 kHz A-law
IDLE_FRAME = bytes([ALAW_IDLE]) * FRAME_BYTES
HISTORY = 1024  # observed changes kept per signal

T = TypeVar("T")


class Timeline(Generic[T]):
    """A signal's value over time: an initial value plus time-ordered changes.

    Changes may lie in the future (scheduled); a chip model asks for the value at a
    time and for the next change after a time, so it replays breaks exactly.
    ``edits`` counts the calls to ``set``: a model that saw the same count knows nothing
    was scheduled or cancelled since.
    """

    def __init__(self, initial: T) -> None:
        self._times: list[float] = []
        self._values: list[T] = []
        self._initial = initial
        self.edits = 0

    def set(self, value: T, at: float) -> None:
        """Change to ``value`` at ``at``; any later scheduled change is cancelled."""
        self.edits += 1
        i = bisect.bisect_right(self._times, at)
        del self._times[i:], self._values[i:]
        if self.value_at(at) == value:
            return
        self._times.append(at)
        self._values.append(value)

    def value_at(self, t: float) -> T:
        i = bisect.bisect_right(self._times, t)
        return self._initial if i == 0 else self._values[i - 1]

    def next_change_after(self, t: float) -> float | None:
        i = bisect.bisect_right(self._times, t)
        return self._times[i] if i < len(self._times) else None

    def forget_before(self, t: float) -> None:
        """Fold changes at or before ``t`` into the initial value (keeps lookups short)."""
        i = bisect.bisect_right(self._times, t)
        if i:
            self._initial = self._values[i - 1]
            del self._times[:i], self._values[:i]


class AudioPath:
    """One direction of 20 ms frames: the sender puts, the receiving side takes each tick."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._pending: bytes | None = None
        self._last = IDLE_FRAME
        self._subscribers: tuple[Callable[[bytes], None], ...] = ()  # replaced, never changed

    def put(self, frame: bytes | bytearray | memoryview) -> None:
        """Queue the frame for the next tick (a newer frame replaces an untaken one)."""
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"{self.name}: frame is {len(frame)} bytes, not {FRAME_BYTES}")
        self._pending = bytes(frame)

    def take(self) -> bytes:
        """What the sender queued since the last tick; idle (silence) if nothing."""
        frame, self._pending = self._pending, None
        return IDLE_FRAME if frame is None else frame

    def deliver(self, frame: bytes) -> None:
        """Hand a frame to the receiving side (chip models call this once per tick)."""
        self._last = frame
        for callback in self._subscribers:
            callback(frame)

    @property
    def last(self) -> bytes:
        return self._last

    def subscribe(self, callback: Callable[[bytes], None]) -> None:
        self._subscribers = (*self._subscribers, callback)

    def unsubscribe(self, callback: Callable[[bytes], None]) -> None:
        if callback in self._subscribers:
            rest = list(self._subscribers)
            rest.remove(callback)
            self._subscribers = tuple(rest)


class Feed(enum.Enum):
    """What a SLIC puts on the wires, as a phone would notice it."""

    OPEN = "open"  # no battery: the phone is dead
    ACTIVE = "active"  # talk battery, loop current flows when off-hook, audio passes
    ONHOOK_TX = "onhook-transmission"  # battery, audio passes while on-hook (caller ID)
    RINGING = "ringing"  # ring voltage present right now


@dataclass(frozen=True)
class FeedChange:
    at: float
    feed: Feed
    reversed: bool  # polarity reversal (tip/ring swapped relative to normal)


class FxsLine:
    """The two wires between a SLIC (Si3215) and an analog phone."""

    def __init__(self, clock: Clock, name: str = "fxs") -> None:
        self.name = name
        self.clock = clock
        self.hook: Timeline[bool] = Timeline(False)  # True = off-hook
        self._feed = Feed.OPEN
        self._reversed = False
        self.ring_frequency_hz = 0.0
        self.ring_voltage_vpk = 0.0
        self.feed_log: deque[FeedChange] = deque(maxlen=HISTORY)
        self._feed_listeners: list[Callable[[FeedChange], None]] = []
        self.to_phone = AudioPath(f"{name}: to phone")  # earpiece
        self.from_phone = AudioPath(f"{name}: from phone")  # mouthpiece

    # --- phone side ---------------------------------------------------------------

    def set_hook(self, off_hook: bool, at: float | None = None) -> None:
        """Lift (True) or replace (False) the handset, now or at a scheduled time."""
        self.hook.set(bool(off_hook), self.clock() if at is None else at)

    def flash(self, duration_s: float, at: float | None = None) -> None:
        """Press the hook switch for ``duration_s`` (or the R key's timed break)."""
        if duration_s <= 0:
            raise ValueError("a hook flash needs a positive duration")
        start = self.clock() if at is None else at
        self.hook.set(False, start)
        self.hook.set(True, start + duration_s)

    @property
    def off_hook(self) -> bool:
        return self.hook.value_at(self.clock())

    @property
    def feed(self) -> Feed:
        return self._feed

    @property
    def reversed(self) -> bool:
        return self._reversed

    @property
    def ringing(self) -> bool:
        return self._feed is Feed.RINGING

    def on_feed_change(self, callback: Callable[[FeedChange], None]) -> None:
        self._feed_listeners.append(callback)

    def ring_periods(self, since: float = float("-inf")) -> list[tuple[float, float | None]]:
        """(start, end) of each ring burst seen since ``since``; end None while ringing."""
        periods: list[tuple[float, float | None]] = []
        start: float | None = None
        for change in self.feed_log:
            if change.feed is Feed.RINGING and start is None:
                start = change.at
            elif change.feed is not Feed.RINGING and start is not None:
                if change.at >= since:
                    periods.append((start, change.at))
                start = None
        if start is not None:
            periods.append((start, None))
        return periods

    # --- SLIC side ------------------------------------------------------------------

    def drive(self, feed: Feed, reversed_polarity: bool, at: float) -> None:
        """The SLIC changes what it puts on the wires."""
        if feed is self._feed and reversed_polarity == self._reversed:
            return
        self._feed = feed
        self._reversed = reversed_polarity
        change = FeedChange(at, feed, reversed_polarity)
        self.feed_log.append(change)
        for callback in list(self._feed_listeners):
            callback(change)

    def describe(self) -> dict[str, object]:
        return {
            "off_hook": self.off_hook,
            "feed": self._feed.value,
            "reversed": self._reversed,
        }


@dataclass(frozen=True)
class HookChange:
    at: float
    off_hook: bool


class FxoLine:
    """The exchange's end of a PSTN line, wired to a DAA (Si3050 + Si3018)."""

    ON_HOOK_VOLTS = 48.0  # battery seen across an idle line
    OFF_HOOK_VOLTS = 8.0  # tip/ring voltage with the DAA's dc termination drawing current
    LOOP_CURRENT_MA = 28.0

    def __init__(self, clock: Clock, name: str = "fxo", ring_frequency_hz: float = 25.0) -> None:
        self.name = name
        self.clock = clock
        self.battery: Timeline[bool] = Timeline(True)  # feed present (loop current possible)
        self.polarity: Timeline[bool] = Timeline(False)  # True = reversed
        self.ring: Timeline[bool] = Timeline(False)  # ring voltage present
        self.ring_frequency_hz = ring_frequency_hz
        self._off_hook = False
        self.hook_log: deque[HookChange] = deque(maxlen=HISTORY)
        self._hook_listeners: list[Callable[[HookChange], None]] = []
        self.to_network = AudioPath(f"{name}: to network")  # what the DAA sends down the line
        self.from_network = AudioPath(f"{name}: from network")  # what the exchange sends

    # --- network side ---------------------------------------------------------------

    def _at(self, at: float | None) -> float:
        return self.clock() if at is None else at

    def set_battery(self, present: bool, at: float | None = None) -> None:
        """Feed the line (True) or interrupt it: no voltage, no loop current."""
        self.battery.set(bool(present), self._at(at))

    def interrupt_loop(self, duration_s: float, at: float | None = None) -> None:
        """Open the feed for ``duration_s``: a clear-down or K-break signal."""
        start = self._at(at)
        self.battery.set(False, start)
        self.battery.set(True, start + duration_s)

    def set_polarity(self, reversed_polarity: bool, at: float | None = None) -> None:
        self.polarity.set(bool(reversed_polarity), self._at(at))

    def set_ringing(self, on: bool, at: float | None = None) -> None:
        self.ring.set(bool(on), self._at(at))

    def ring_burst(self, duration_s: float, at: float | None = None) -> None:
        """Apply ring voltage for ``duration_s`` starting now (or at ``at``)."""
        start = self._at(at)
        self.ring.set(True, start)
        self.ring.set(False, start + duration_s)

    def ring_cadence(self, on_s: float, off_s: float, cycles: int, at: float | None = None) -> None:
        """Schedule ``cycles`` bursts of ``on_s`` separated by ``off_s`` silence."""
        start = self._at(at)
        for n in range(cycles):
            t = start + n * (on_s + off_s)
            self.ring.set(True, t)
            self.ring.set(False, t + on_s)

    @property
    def daa_off_hook(self) -> bool:
        return self._off_hook

    def on_hook_change(self, callback: Callable[[HookChange], None]) -> None:
        self._hook_listeners.append(callback)

    # --- what the DAA measures ------------------------------------------------------

    def loop_current_ma(self, t: float) -> float:
        return self.LOOP_CURRENT_MA if self._off_hook and self.battery.value_at(t) else 0.0

    def line_volts(self, t: float) -> float:
        """Signed tip/ring voltage: negative when the polarity is reversed."""
        if not self.battery.value_at(t):
            return 0.0
        volts = self.OFF_HOOK_VOLTS if self._off_hook else self.ON_HOOK_VOLTS
        return -volts if self.polarity.value_at(t) else volts

    # --- DAA side -------------------------------------------------------------------

    def set_daa_hook(self, off_hook: bool, at: float) -> None:
        if off_hook == self._off_hook:
            return
        self._off_hook = off_hook
        change = HookChange(at, off_hook)
        self.hook_log.append(change)
        for callback in list(self._hook_listeners):
            callback(change)

    def describe(self) -> dict[str, object]:
        now = self.clock()
        return {
            "daa_off_hook": self._off_hook,
            "battery": self.battery.value_at(now),
            "reversed": self.polarity.value_at(now),
            "ringing": self.ring.value_at(now),
        }


__all__ = [
    "FRAME_BYTES",
    "IDLE_FRAME",
    "AudioPath",
    "Clock",
    "Feed",
    "FeedChange",
    "FxoLine",
    "FxsLine",
    "HookChange",
    "Timeline",
]
