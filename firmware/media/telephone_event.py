"""RFC 4733 telephone events (DTMF digits as RTP payloads) and in-band conversion.

API::

    TelephoneEvent.parse(payload) / event.to_bytes()    # the 4-byte payload
    sender = EventSender(rtp_sender, payload_type=101)  # shares the audio's SSRC/seq
    sender.start("5"); per 20 ms: sender.tick(); sender.stop() -> 3 end packets
    receiver = EventReceiver(payload_type=101)
    receiver.receive(packet, now) / receiver.poll(now)  -> [DigitStart | DigitEnd]
    InbandToEvents(sender).feed(frame) -> packets       # DTMF tones -> RFC 4733
    EventsToInband().frame(audio) / .play(digit)        # RFC 4733 -> DTMF tones

Sender rules (RFC 4733 §2.5.1): all packets of one event carry the timestamp of its
start; the first has the marker bit; updates every packet interval carry the duration
so far; the end is sent three times with the E bit and the final duration, each with
its own sequence number (RFC 3550 numbers every packet). The audio timestamp then
skips over the event so the next talkspurt starts after it, with the marker.

The receiver keys events by timestamp, which makes it robust to what networks do:
duplicates and the three end copies are reported once; a lost start packet is
recovered by the first update (or end) that arrives; a lost end is recovered when the
next event starts or, if none comes, after ``timeout`` seconds without an update;
a late copy of a finished event is ignored.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from firmware.dsp.dtmf import DtmfEvent, DtmfReceiver, DtmfSender
from firmware.media.codecs.base import Int16Array
from firmware.media.rtp import RtpPacket
from firmware.media.stream import RtpSender

__all__ = [
    "DIGITS",
    "DigitEnd",
    "DigitStart",
    "EventReceiver",
    "EventSender",
    "EventsToInband",
    "InbandToEvents",
    "TelephoneEvent",
    "TelephoneEventError",
    "digit_to_event",
    "event_to_digit",
]

#: Event codes 0-15 (RFC 4733 §3.2): the DTMF digits; 16 is hook flash.
DIGITS = "0123456789*#ABCD"
FLASH = 16
_PAYLOAD = struct.Struct("!BBH")
#: Default: give up on an event when no packet came for this long (seconds).
DEFAULT_TIMEOUT = 0.5
#: Largest duration field; longer events would need segments (not sent by the box).
MAX_DURATION = 0xFFFF


class TelephoneEventError(ValueError):
    """A malformed telephone-event payload or an impossible request."""


def digit_to_event(digit: str) -> int:
    code = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise TelephoneEventError(f"not a DTMF digit: {digit!r}")
    return code


def event_to_digit(event: int) -> str | None:
    """The DTMF digit of an event code, None for other events (flash, tones)."""
    return DIGITS[event] if 0 <= event < len(DIGITS) else None


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One event payload: code, end bit, volume (-dBm0, 0-63), duration (timestamp units)."""

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 255:
            raise TelephoneEventError(f"event code {self.event} out of range")
        if not 0 <= self.volume <= 63:
            raise TelephoneEventError(f"volume {self.volume} out of range 0-63")
        if not 0 <= self.duration <= MAX_DURATION:
            raise TelephoneEventError(f"duration {self.duration} out of range")

    def to_bytes(self) -> bytes:
        return _PAYLOAD.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """The first event block of a payload (the R bit is ignored, as RFC 4733 says)."""
        if len(payload) < 4:
            raise TelephoneEventError(f"telephone-event payload of {len(payload)} bytes")
        event, flags, duration = _PAYLOAD.unpack_from(payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)


class EventSender:
    """Sends events on an audio stream's `RtpSender` (same SSRC and sequence space)."""

    def __init__(
        self,
        rtp: RtpSender,
        payload_type: int,
        *,
        volume: int = 10,
        end_copies: int = 3,
    ) -> None:
        if not 0 <= payload_type <= 127:
            raise TelephoneEventError(f"payload type {payload_type} out of range")
        self.rtp = rtp
        self.payload_type = payload_type
        self.volume = volume
        self.end_copies = end_copies
        self._event: int | None = None
        self._timestamp = 0
        self._duration = 0
        self._first = True

    @property
    def active(self) -> bool:
        return self._event is not None

    def start(self, digit: str | int) -> None:
        """Begin an event at the current media time; packets follow from `tick`."""
        if self._event is not None:
            raise TelephoneEventError("an event is already being sent; stop it first")
        self._event = digit if isinstance(digit, int) else digit_to_event(digit)
        self._timestamp = self.rtp.timestamp
        self._duration = 0
        self._first = True

    def tick(self, samples: int = 160, now: float | None = None) -> list[bytes]:
        """``samples`` of the event have passed: one update packet (the first with marker)."""
        if self._event is None:
            return []
        self._duration = min(MAX_DURATION, self._duration + samples)
        payload = TelephoneEvent(self._event, False, self.volume, self._duration).to_bytes()
        data = self.rtp.send_at(payload, self._timestamp, self.payload_type, self._first, now)
        self._first = False
        return [data]

    def stop(self, now: float | None = None) -> list[bytes]:
        """End the event: the end packet ``end_copies`` times; media time moves past it."""
        if self._event is None:
            return []
        payload = TelephoneEvent(self._event, True, self.volume, self._duration).to_bytes()
        packets = [self.rtp.send_at(payload, self._timestamp, self.payload_type, self._first, now)]
        packets += [
            self.rtp.send_at(payload, self._timestamp, self.payload_type, False, now)
            for _ in range(self.end_copies - 1)
        ]
        self._event = None
        # The audio clock ran on while the event was sent; catch up, new talkspurt next.
        ahead = (self._timestamp + self._duration - self.rtp.timestamp) & 0xFFFFFFFF
        self.rtp.skip(ahead if ahead < 0x80000000 else 0)
        return packets

    def digit(self, digit: str | int, duration: int = 800, interval: int = 160) -> list[bytes]:
        """All packets of one event of ``duration`` samples at once (tests, IVR prompts)."""
        self.start(digit)
        packets: list[bytes] = []
        sent = 0
        while sent < duration:
            step = min(interval, duration - sent)
            packets += self.tick(step)
            sent += step
        return packets + self.stop()


@dataclass(frozen=True, slots=True)
class DigitStart:
    digit: str | None  # None for non-DTMF events (see ``event``)
    event: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class DigitEnd:
    digit: str | None
    event: int
    timestamp: int
    duration: int  # timestamp units; the last duration heard
    complete: bool  # False when the end was inferred (timeout, next event)


DigitReport = DigitStart | DigitEnd


class EventReceiver:
    """Turns RFC 4733 packets of one stream into digit starts and ends."""

    def __init__(self, payload_type: int, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.payload_type = payload_type
        self.timeout = timeout
        self._current: tuple[int, int] | None = None  # (timestamp, event)
        self._duration = 0
        self._last_heard = 0.0
        self._finished: deque[int] = deque(maxlen=16)  # timestamps of ended events
        self.malformed = 0

    @property
    def active(self) -> str | None:
        """The digit being received, if any."""
        return event_to_digit(self._current[1]) if self._current else None

    def receive(self, packet: RtpPacket, now: float) -> list[DigitReport]:
        """One RTP packet (others than ``payload_type`` are ignored) arriving at ``now``."""
        if packet.payload_type != self.payload_type:
            return []
        try:
            event = TelephoneEvent.parse(packet.payload)
        except TelephoneEventError:
            self.malformed += 1
            return []
        ts = packet.timestamp
        out: list[DigitReport] = []
        if self._current is not None and self._current[0] == ts:
            self._duration = max(self._duration, event.duration)
        else:
            if ts in self._finished:
                return out  # a late copy of an event already reported
            out += self._end(complete=False)  # its end packets were lost
            self._current = (ts, event.event)
            self._duration = event.duration
            out.append(DigitStart(event_to_digit(event.event), event.event, ts))
        self._last_heard = now
        if event.end:
            out += self._end(complete=True)
        return out

    def poll(self, now: float) -> list[DigitReport]:
        """Call every tick: ends an event whose end packets never came."""
        if self._current is not None and now - self._last_heard >= self.timeout:
            return self._end(complete=False)
        return []

    def _end(self, complete: bool) -> list[DigitReport]:
        if self._current is None:
            return []
        ts, code = self._current
        self._current = None
        self._finished.append(ts)
        return [DigitEnd(event_to_digit(code), code, ts, self._duration, complete)]


class InbandToEvents:
    """Detects DTMF tones in 8 kHz audio and sends them as RFC 4733 events.

    Feed every outgoing audio frame; while ``active`` the caller should send the
    returned event packets instead of the audio (RFC 4733 §2.5.1.4: no double digits).
    """

    def __init__(self, sender: EventSender) -> None:
        self.sender = sender
        self._changes: list[str | None] = []

        def note(event: DtmfEvent) -> None:
            self._changes.append(event.digit)

        self._detector = DtmfReceiver(on_event=note)

    @property
    def active(self) -> bool:
        return self.sender.active

    def feed(self, frame: Int16Array, now: float | None = None) -> list[bytes]:
        """One frame of audio; the event packets to send for it."""
        self._detector.feed(frame)
        changes, self._changes = self._changes, []
        out: list[bytes] = []
        for digit in changes:
            out += self.sender.stop(now)
            if digit is not None:
                self.sender.start(digit)
        out += self.sender.tick(len(frame), now)
        return out

    def close(self) -> None:
        self._detector.close()


class EventsToInband:
    """Plays received RFC 4733 digits as DTMF tones into an 8 kHz audio stream.

    Call `play` on each `DigitStart` and pass every frame through `frame`: while a
    tone (and its trailing pause) plays, it replaces the audio.
    """

    def __init__(self, *, level_dbm0: int = -10, on_ms: int = 80, off_ms: int = 60) -> None:
        self._generator = DtmfSender(level_dbm0=level_dbm0, on_ms=on_ms, off_ms=off_ms)
        self._per_digit = 8 * (on_ms + off_ms)
        self._pending = 0  # samples of tone and pause still to play

    @property
    def active(self) -> bool:
        return self._pending > 0

    def play(self, digit: str) -> None:
        self._generator.put(digit)
        self._pending += self._per_digit

    def frame(self, audio: Int16Array) -> Int16Array:
        """The frame to put on the line: tone while one is queued, else ``audio``."""
        if self._pending <= 0:
            return audio
        self._pending -= len(audio)
        return self._generator.read(len(audio))

    def close(self) -> None:
        self._generator.close()
