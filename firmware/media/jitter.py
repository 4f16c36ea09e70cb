"""Adaptive jitter buffer for the TDM side: RTP packets in whenever, one frame out per tick.

Hardware channels (FXS/FXO/ISDN/DECT PCM timeslots) consume exactly one 20 ms frame
per tick of their own clock, whatever the network did to the packets. API::

    jb = JitterBuffer(decode=codec.decode)           # plc: firmware.dsp Plc by default
    jb.put(seq, timestamp, payload, arrival=now, ssrc=ssrc, marker=m)   # or put_packet
    frame = jb.get(now)                              # always 160 int16 samples
    jb.stats                                         # JitterStats snapshot
    jb.close()

Only audio packets go in (filter RFC 4733 events and comfort noise by payload type
before). Everything is pure logic on an injected clock (``arrival``/``now`` seconds).

How it works:

- Packets are kept as payloads keyed by (unwrapped) timestamp and decoded in order at
  playout, so stateful decoders (G.722) see their stream in sequence. Any ptime works:
  playout is sample-exact from a cursor, a 30 ms packet simply spans two ticks.
- Delay: every arrival gives D = arrival - timestamp/rate. The fastest packet of the
  last second (the sliding minimum of D) is the reference, and the playout delay is how
  far behind that reference the cursor plays; the short window lets the reference
  follow a drifting sender clock. The target is the 98th percentile of each packet's
  lateness against the reference over the last ~5 s, plus a margin, bounded by
  ``min_delay``/``max_delay``: it grows as soon as jitter does and shrinks as the
  window forgets it.
- Below target, a missing packet is waited for (the frame is concealed but the
  cursor holds), which is how reordered and late packets still get played. At or above
  target, a missing packet is a loss: concealed (spandsp PLC, or repeat-and-fade) and
  skipped. Packets behind the cursor are late and dropped; repeated sequence numbers
  are duplicates.
- Too much delay (jitter went down, or the sender's clock runs fast) is shed by
  dropping whole frames of silence; too little (a slow sender) is made up by holding
  during silence. Talk is cut only if the excess passes one ``max_delay``.
- A talkspurt start (marker bit after silence, nothing buffered) is placed afresh at
  the target delay; a new SSRC or a timestamp jump of seconds resynchronizes the buffer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from firmware.media.rtp import RtpPacket

__all__ = ["Concealer", "JitterBuffer", "JitterStats", "RepeatFade"]

Int16Array = npt.NDArray[np.int16]

#: Arrivals remembered for the target delay statistics (~5 s of 20 ms packets).
WINDOW = 250
#: Arrivals over which the fastest packet is sought (~1 s): short, so a drifting
#: sender clock moves the reference with it.
BASE_WINDOW = 50
#: Mean absolute sample value below which a frame counts as silence (about -50 dBov).
SILENCE_LEVEL = 100.0
#: A timestamp this far (seconds) from the cursor is a new timeline, not jitter.
RESYNC_AFTER = 2.0
#: Frames of concealment before the output goes plainly silent.
CONCEAL_FRAMES = 10


class Concealer(Protocol):
    """Packet-loss concealment: `firmware.dsp.Plc` has this shape."""

    def rx(self, audio: Int16Array) -> Int16Array: ...

    def fillin(self, samples: int) -> Int16Array: ...


class RepeatFade:
    """Fallback concealment: repeat the last frame, halving its level each time."""

    def __init__(self, frame_samples: int = 160) -> None:
        self._last = np.zeros(frame_samples, dtype=np.int16)
        self._gain = 1.0

    def rx(self, audio: Int16Array) -> Int16Array:
        if len(audio):
            self._last = audio[-len(self._last) :].copy()
        self._gain = 1.0
        return audio

    def fillin(self, samples: int) -> Int16Array:
        self._gain *= 0.5
        reps = -(-samples // len(self._last))
        out = np.tile(self._last, reps)[:samples].astype(np.float64) * self._gain
        return out.astype(np.int16)


@dataclass(frozen=True, slots=True)
class JitterStats:
    received: int  # packets accepted into the buffer
    played: int  # packets decoded and played
    late: int  # arrived after their playout time: dropped
    duplicates: int
    concealed: int  # frames (of 160 samples) synthesized for missing audio
    held: int  # ticks the cursor waited (delay grown: jitter, slow sender)
    dropped: int  # frames skipped (delay shrunk: fast sender, overflow)
    resyncs: int  # new SSRC or timestamp jump
    realigned: float  # seconds of silence added (+) or cut (-) at talkspurt starts
    target_delay: float  # seconds
    current_delay: float  # seconds, playout behind the fastest recent packet


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


class JitterBuffer:
    """One received stream's adaptive playout buffer (see the module docstring)."""

    def __init__(
        self,
        decode: Callable[[bytes], Int16Array],
        *,
        plc: Concealer | None = None,
        clock_rate: int = 8000,
        frame_samples: int = 160,
        min_delay: float = 0.02,
        max_delay: float = 0.3,
        margin: float = 0.005,
    ) -> None:
        if not 0 <= min_delay <= max_delay:
            raise ValueError("need 0 <= min_delay <= max_delay")
        self._decode = decode
        if plc is None:
            from firmware.dsp import Plc

            plc = Plc()
        self._plc = plc
        self.rate = clock_rate
        self.frame = frame_samples
        self.frame_time = frame_samples / clock_rate
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.margin = margin
        self.target = max(min_delay, min(max_delay, 2 * self.frame_time))
        self._ssrc: int | None = None
        self._last_raw = 0
        self._last_ext = 0
        self._cursor: int | None = None  # unwrapped timestamp of the next sample out
        self._pending = np.zeros(0, dtype=np.int16)  # decoded samples from the cursor on
        self._packets: dict[int, bytes] = {}
        self._seen: deque[int] = deque(maxlen=64)
        self._lateness: deque[float] = deque(maxlen=WINDOW)  # D - base per arrival
        self._recent: deque[tuple[int, float]] = deque()  # sliding minimum of D
        self._arrivals = 0
        self._base = 0.0
        self._ticks = 0
        self._concealing = CONCEAL_FRAMES * frame_samples  # start silent
        self._received = self._played = self._late = self._duplicates = 0
        self._concealed_samples = self._held = self._dropped = self._resyncs = 0
        self._now = 0.0
        self._delay = 0.0
        self._realigned = 0  # samples of silence added (+) or cut (-) at talkspurt starts

    # --- input ---

    def put_packet(self, packet: RtpPacket, arrival: float) -> None:
        self.put(
            packet.sequence,
            packet.timestamp,
            packet.payload,
            arrival,
            ssrc=packet.ssrc,
            marker=packet.marker,
        )

    def put(
        self,
        seq: int,
        timestamp: int,
        payload: bytes,
        arrival: float,
        *,
        ssrc: int = 0,
        marker: bool = False,
    ) -> None:
        """A received audio packet (any order, any time)."""
        if ssrc != self._ssrc:
            self._restart(ssrc, timestamp)
            self._resyncs += self._cursor is not None
            self._cursor = None
        ext = self._last_ext + _signed32(timestamp - self._last_raw)
        if (
            self._cursor is not None
            and abs(ext - self._cursor) > (RESYNC_AFTER + self.max_delay) * self.rate
        ):
            self._restart(ssrc, timestamp)
            self._resyncs += 1
            self._cursor = None
            ext = self._last_ext
        if ext > self._last_ext:
            self._last_raw, self._last_ext = timestamp & 0xFFFFFFFF, ext
        if seq in self._seen or ext in self._packets:
            self._duplicates += 1
            return
        self._seen.append(seq)
        d = arrival - ext / self.rate
        if self._cursor is None or (
            marker and not self._packets and not len(self._pending) and ext >= self._cursor
        ):
            self._place(ext, d)
        else:
            self._observe(d)
            if ext < self._cursor:
                self._late += 1
                return
        self._packets[ext] = bytes(payload)
        self._received += 1

    def _restart(self, ssrc: int, timestamp: int) -> None:
        self._ssrc = ssrc
        self._last_raw = timestamp & 0xFFFFFFFF
        self._last_ext = 1 << 40  # room below for late packets of the new stream
        self._packets.clear()
        self._pending = np.zeros(0, dtype=np.int16)
        self._seen.clear()
        self._lateness.clear()

    def _observe(self, d: float) -> None:
        """Track the fastest recent packet and how late each one is relative to it."""
        self._arrivals += 1
        recent = self._recent
        while recent and recent[-1][1] >= d:
            recent.pop()
        recent.append((self._arrivals, d))
        while recent[0][0] <= self._arrivals - BASE_WINDOW:
            recent.popleft()
        self._base = recent[0][1]
        self._lateness.append(d - self._base)

    def _place(self, ext: int, d: float) -> None:
        """Start a talkspurt: the packet at ``ext`` plays ``target`` after it arrived.

        Its timing becomes the reference, which errs on the safe side: if it was a slow
        one, the faster packets that follow lower the reference and the surplus delay is
        shed in the next silence; a reference kept from before the silence could be
        stale (clock drift) and would make the next packets late.
        """
        self._recent.clear()
        self._observe(d)
        cursor = ext - round(self.target * self.rate)
        if self._cursor is not None:
            self._realigned += self._cursor - cursor
        self._cursor = cursor
        self._pending = np.zeros(0, dtype=np.int16)
        self._packets = {t: p for t, p in self._packets.items() if t >= self._cursor}

    # --- output ---

    def get(self, now: float) -> Int16Array:
        """The next frame (exactly ``frame_samples`` samples), called once per tick."""
        self._now = now
        self._ticks += 1
        if self._cursor is None:
            return np.zeros(self.frame, dtype=np.int16)
        if self._ticks % 10 == 0:
            self._adapt()
        delay = self._delay = self._now - self._cursor / self.rate - self._base
        if not len(self._pending) and self._cursor not in self._packets and delay < self.target:
            self._held += 1  # wait for the missing/late packet
            return self._conceal(self.frame)
        if delay < self.target - self.frame_time / 2 and self._upcoming_silent():
            self._held += 1  # grow the delay where nobody hears it (slow sender)
            return np.zeros(self.frame, dtype=np.int16)
        frame = self._take()
        if delay >= self.target + self.frame_time:
            excess = delay - self.target
            if self._is_silent(frame) or excess > self.max_delay:
                self._dropped += 1
                frame = self._take()
        return frame

    def _take(self) -> Int16Array:
        assert self._cursor is not None
        need = self.frame
        parts: list[Int16Array] = []
        pos = self._cursor
        for stale in [t for t in self._packets if t < pos]:
            del self._packets[stale]
            self._late += 1
        while need:
            if len(self._pending):
                part = self._pending[:need]
                self._pending = self._pending[need:]
                parts.append(part)
                pos += len(part)
                need -= len(part)
                continue
            payload = self._packets.pop(pos, None)
            if payload is not None:
                audio = self._decode(payload)
                self._played += 1
                if len(audio):
                    self._pending = self._plc.rx(audio)
                    self._concealing = 0
                continue
            later = [t for t in self._packets if t > pos]
            gap = need if not later else min(need, min(later) - pos)
            parts.append(self._conceal(gap))
            pos += gap
            need -= gap
        self._cursor = pos
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _upcoming_silent(self) -> bool:
        if not len(self._pending):
            payload = self._packets.pop(self._cursor, None) if self._cursor is not None else None
            if payload is None:
                return False
            self._played += 1
            self._pending = self._plc.rx(self._decode(payload))
            self._concealing = 0
        return len(self._pending) >= self.frame and self._is_silent(self._pending[: self.frame])

    def _conceal(self, samples: int) -> Int16Array:
        self._concealed_samples += samples
        if self._concealing >= CONCEAL_FRAMES * self.frame:
            return np.zeros(samples, dtype=np.int16)
        self._concealing += samples
        return self._plc.fillin(samples)

    def _is_silent(self, frame: Int16Array) -> bool:
        return float(np.mean(np.abs(frame.astype(np.int32)))) < SILENCE_LEVEL

    # --- delay estimation ---

    def _adapt(self) -> None:
        if len(self._lateness) < 10:
            return
        spread = float(np.quantile(np.fromiter(self._lateness, dtype=np.float64), 0.98))
        self.target = max(self.min_delay, min(self.max_delay, spread + self.margin))

    @property
    def current_delay(self) -> float:
        """Seconds the last frame played behind the fastest recent packet's timing."""
        return self._delay

    @property
    def stats(self) -> JitterStats:
        return JitterStats(
            self._received,
            self._played,
            self._late,
            self._duplicates,
            self._concealed_samples // self.frame,
            self._held,
            self._dropped,
            self._resyncs,
            self._realigned / self.rate,
            self.target,
            self.current_delay,
        )

    def close(self) -> None:
        close = getattr(self._plc, "close", None)
        if close is not None:
            close()
