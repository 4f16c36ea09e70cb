"""A virtual analog telephone on an FXS line: hook switch, DTMF keypad, earpiece, display.

What a person and a CLIP phone do, as the wires see it:

* hook switch: ``off_hook()``, ``on_hook()``, ``flash()`` (the R key's timed break);
* keypad: ``dial("201")`` queues real DTMF audio (spandsp's generator, the country
  profile's level, twist and tone/pause lengths) into the mouthpiece; ``say()`` sends
  any other audio (a test tone);
* earpiece: every frame the line delivers is recorded with its time (``heard()``), and
  while off-hook a call-progress detector for the profile names the tones heard
  (``tones``: dial, ringback, busy, congestion, special information);
* display: while on-hook the phone decodes caller ID with the profile's method (DTMF CLIP
  in Denmark, before the first ring) and shows the last number (``display``);
* ringer: ring bursts with their times come from the line's feed log (``rings()``);
  ``answer_after(n)`` lifts the handset when the n-th burst starts, like a person would.

The phone is clocked by the chip model: each PCM tick the SLIC delivers a frame to the
earpiece and the phone answers with the next mouthpiece frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from board.sim.analog_line import Feed, FeedChange, FxsLine
from board.sim.devices._audio import SILENT_FRAME, SILENT_SAMPLES, Recorder, Samples, SendQueue
from firmware.dsp import (
    CallerId,
    CallerIdReceiver,
    CountryProfile,
    DtmfSender,
    ToneDetector,
    load_profile,
)
from firmware.media.codecs.g711 import alaw_decode

FLASH_S = 0.1  # ETSI timed-break recall: ~100 ms nominal


@dataclass(frozen=True)
class DisplayedCall:
    at: float
    caller: CallerId


class AnalogPhone:
    """One analog phone plugged into ``line`` (an ``FxsLine``)."""

    def __init__(self, line: FxsLine, profile: CountryProfile | None = None) -> None:
        self.line = line
        self.name = line.name
        self.profile = profile or load_profile()
        self.recorder = Recorder()
        self.tones: list[tuple[float, str | None]] = []
        self.calls: list[DisplayedCall] = []
        self._send = SendQueue()
        d = self.profile.dtmf
        self._keypad = DtmfSender(
            level_dbm0=round(d.level_dbm0),
            twist_db=round(d.twist_db),
            on_ms=d.on_ms,
            off_ms=d.off_ms,
        )
        self._cid = CallerIdReceiver(self.profile.caller_id.method)
        self._detector: ToneDetector | None = None
        self._answer_after: int | None = None
        self._ring_count = 0
        self.dialled = ""
        line.to_phone.subscribe(self._on_frame)
        line.on_feed_change(self._on_feed)

    # --- hook switch --------------------------------------------------------------------

    @property
    def is_off_hook(self) -> bool:
        return self.line.off_hook

    def off_hook(self) -> None:
        """Lift the handset (a fresh tone detector listens from now on)."""
        self._answer_after = None
        self._reset_detector()
        self.line.set_hook(True)

    def on_hook(self) -> None:
        self.line.set_hook(False)
        self._send.clear()
        self._reset_detector()

    def flash(self, duration_s: float = FLASH_S) -> None:
        """Register recall: a timed break of ``duration_s`` (must be off-hook)."""
        if not self.line.off_hook:
            raise PhoneError(f"{self.name}: a hook flash needs the handset off-hook")
        self.line.flash(duration_s)

    def answer_after(self, rings: int) -> None:
        """Lift the handset when the ``rings``-th ring burst from now starts."""
        if rings < 1:
            raise PhoneError("answer after at least one ring")
        self._answer_after = rings
        self._ring_count = 0

    # --- keypad and mouthpiece -------------------------------------------------------------

    def dial(self, digits: str) -> None:
        """Key ``digits`` as DTMF into the line (queued after anything still being sent)."""
        if not self.line.off_hook:
            raise PhoneError(f"{self.name}: dialling needs the handset off-hook")
        bad = [c for c in digits if c not in "0123456789*#ABCD"]
        if not digits or bad:
            raise PhoneError(f"{self.name}: not a DTMF digit string: {digits!r}")
        self._send.put(self._keypad.generate(digits))
        self.dialled += digits

    def say(self, samples: Samples) -> None:
        """Send any audio (8 kHz int16) into the mouthpiece."""
        self._send.put(samples)

    @property
    def sending(self) -> bool:
        return self._send.pending_samples > 0

    # --- earpiece, display, ringer ---------------------------------------------------------

    def heard(self, since: float = float("-inf"), until: float = float("inf")) -> Samples:
        return self.recorder.samples(since, until)

    @property
    def tone(self) -> str | None:
        """The call-progress tone heard right now (None: none or not off-hook)."""
        return self._detector.current if self._detector is not None else None

    @property
    def display(self) -> str | None:
        """The number on the display: the last caller ID decoded."""
        return self.calls[-1].caller.number if self.calls else None

    def rings(self, since: float = float("-inf")) -> list[tuple[float, float | None]]:
        """(start, end) of the ring bursts since ``since``; end None while ringing."""
        return self.line.ring_periods(since)

    @property
    def ringing(self) -> bool:
        return self.line.ringing

    # --- clocking ----------------------------------------------------------------------

    def _on_frame(self, frame: bytes) -> None:
        now = self.line.clock()
        self.recorder.add(now, frame)
        if self.line.off_hook:
            if self._detector is not None:
                for event in self._detector.feed(alaw_decode(frame)):
                    self.tones.append((now, event.tone))
            self.line.from_phone.put(self._send.next_frame())
            return
        # on-hook: the display listens for caller ID; an idle line costs it nothing
        if frame == SILENT_FRAME:
            callers = self._cid.feed_quiet(SILENT_SAMPLES)
        else:
            callers = self._cid.feed(alaw_decode(frame))
        for caller in callers:
            self.calls.append(DisplayedCall(now, caller))

    def _on_feed(self, change: FeedChange) -> None:
        if change.feed is not Feed.RINGING or self._answer_after is None:
            return
        self._ring_count += 1
        if self._ring_count >= self._answer_after:
            self._answer_after = None
            self.line.set_hook(True, change.at)
            self._reset_detector()

    def _reset_detector(self) -> None:
        if self._detector is not None:
            self._detector.close()
        self._detector = ToneDetector(self.profile)

    def close(self) -> None:
        self.line.to_phone.unsubscribe(self._on_frame)
        for closable in (self._keypad, self._cid, self._detector):
            if closable is not None:
                closable.close()

    def describe(self) -> dict[str, object]:
        return {
            **self.line.describe(),
            "display": self.display,
            "ringing": self.ringing,
            "tone": self.tone,
            "dialled": self.dialled,
            "rings": [list(r) for r in self.rings()[-6:]],  # (start, end) on the line clock
        }


class PhoneError(ValueError):
    """A request the phone cannot carry out in its state (dial on-hook, bad digits)."""
