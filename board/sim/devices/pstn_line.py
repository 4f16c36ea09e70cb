"""A virtual PSTN line (the exchange's end) on an FXO port.

It behaves like a Danish analog subscriber line as the box's DAA sees it:

* an incoming call: ``ring("4512345678")`` sends caller ID with the profile's method and
  timing (DTMF CLIP before the first ring in Denmark: 'A' number '#', then the first
  ring ``data_to_ring_ms`` later), then rings with the profile's cadence until the DAA
  seizes the line (answered: ringing stops at once) or ``stop_ringing()``;
* an outgoing call: when the DAA seizes an idle line the exchange plays dial tone and
  collects the DTMF digits it hears (``digits``); ``answer()`` connects the called party,
  with a polarity reversal when ``reverse_on_answer`` (answer supervision);
* clear-down: ``hang_up()`` ends the far side with a loop-current interruption
  (``disconnect="loop"``, ``loop_break_s``) or by playing the busy tone
  (``disconnect="busy"``), and restores normal polarity; ``play_tone("busy")`` and
  ``play()`` send any profile tone or audio;
* what the box sends down the line is recorded with times (``heard()``).

Clocked by the DAA model: every PCM tick it delivers the box's frame, and the line
answers with the frame the exchange sends next.
"""

from __future__ import annotations

import enum
from typing import Literal

import numpy as np

from board.sim.analog_line import FxoLine, HookChange
from board.sim.devices._audio import Recorder, Samples, SendQueue
from firmware.dsp import CallerIdSender, CountryProfile, DtmfReceiver, ToneGenerator, load_profile
from firmware.media.codecs.g711 import alaw_decode

RING_CYCLES = 40  # long enough for any test; answering or stop_ringing cancels the rest


class LineState(enum.Enum):
    IDLE = "idle"
    RINGING = "ringing"  # an incoming call is being offered to the box
    DIALLING = "dialling"  # the box seized: dial tone, digits being collected
    CONNECTED = "connected"
    CLEARED = "cleared"  # the far end hung up; waiting for the box to release


class PstnLine:
    """The exchange side of one analog line (an ``FxoLine``)."""

    def __init__(
        self,
        line: FxoLine,
        profile: CountryProfile | None = None,
        *,
        reverse_on_answer: bool = True,
        disconnect: Literal["loop", "busy"] = "loop",
        loop_break_s: float = 0.8,
    ) -> None:
        self.line = line
        self.name = line.name
        self.profile = profile or load_profile()
        self.reverse_on_answer = reverse_on_answer
        self.disconnect = disconnect
        self.loop_break_s = loop_break_s
        self.state = LineState.IDLE
        self.recorder = Recorder()
        self.digits = ""
        self.caller: str | None = None
        self.rings_sent: list[float] = []
        self._send = SendQueue()
        self._tone: ToneGenerator | None = None
        self._dtmf = DtmfReceiver()
        line.to_network.subscribe(self._on_frame)
        line.on_hook_change(self._on_hook)

    # --- incoming call -------------------------------------------------------------------

    def ring(self, cli: str | None = None, cycles: int = RING_CYCLES) -> float:
        """Offer a call: caller ID (if ``cli``) then ring. Returns the first ring's time."""
        if self.state is not LineState.IDLE:
            raise LineError(f"{self.name}: cannot ring, line is {self.state.value}")
        if cli is not None and (not cli.isdigit() or not 1 <= len(cli) <= 20):
            raise LineError(f"{self.name}: caller number must be 1-20 digits, got {cli!r}")
        now = self.line.clock()
        cid = self.profile.caller_id
        cadence = [(s.on_ms / 1000, s.off_ms / 1000) for s in self.profile.ring.cadence]
        first = now
        data = self._cid_audio(cli) if cli is not None else None
        after_first_ring = cid.timing == "after_first_ring"
        if data is not None and not after_first_ring:
            start = now
            if cid.polarity_reversal:
                self.line.set_polarity(True, now)
                start += cid.alert_to_data_ms / 1000
            self._play_at(data, start)
            first = start + len(data) / 8000 + cid.data_to_ring_ms / 1000
        t = first
        for n in range(cycles):
            for on, off in cadence:
                self.line.ring_burst(on, t)
                if n == 0 and t == first and data is not None and after_first_ring:
                    self._play_at(data, t + on + cid.ring_to_data_ms / 1000)
                t += on + off
        self.caller = cli
        self.state = LineState.RINGING
        return first

    def stop_ringing(self) -> None:
        """The caller gave up before the box answered."""
        now = self.line.clock()
        self.line.set_ringing(False, now)
        self.line.set_polarity(False, now)
        self._send.clear()
        self.state = LineState.IDLE

    def _cid_audio(self, cli: str) -> Samples:
        cid = self.profile.caller_id
        sender = CallerIdSender(
            cid.method,
            dtmf_end=cid.dtmf_end,
            dtmf_on_ms=cid.dtmf_on_ms,
            dtmf_off_ms=cid.dtmf_off_ms,
        )
        return sender.generate(cli)

    def _play_at(self, samples: Samples, at: float) -> None:
        lead = max(0, round((at - self.line.clock()) * 8000))
        self._send.put(np.zeros(lead, dtype=np.int16))
        self._send.put(samples)

    # --- outgoing call and the far end ------------------------------------------------------

    def answer(self) -> None:
        """The called party answers the box's outgoing call."""
        if self.state is not LineState.DIALLING:
            raise LineError(f"{self.name}: nothing to answer, line is {self.state.value}")
        self._stop_tone()
        if self.reverse_on_answer:
            self.line.set_polarity(True)
        self.state = LineState.CONNECTED

    def hang_up(self) -> None:
        """The far end clears: loop break or busy tone, and normal polarity again."""
        if self.state not in (LineState.CONNECTED, LineState.DIALLING):
            raise LineError(f"{self.name}: no call to hang up, line is {self.state.value}")
        self._stop_tone()
        self._send.clear()
        self.line.set_polarity(False)
        if self.disconnect == "loop":
            self.line.interrupt_loop(self.loop_break_s)
        self.play_tone("busy")
        self.state = LineState.CLEARED

    def play_tone(self, name: str) -> None:
        """Play a profile tone (dial, busy, congestion, ...) until stopped or the call ends."""
        self._stop_tone()
        self._tone = ToneGenerator(self.profile.tone(name))

    def play(self, samples: Samples) -> None:
        self._send.put(samples)

    def heard(self, since: float = float("-inf"), until: float = float("inf")) -> Samples:
        return self.recorder.samples(since, until)

    def _stop_tone(self) -> None:
        if self._tone is not None:
            self._tone.close()
            self._tone = None

    # --- clocking ----------------------------------------------------------------------

    def _on_hook(self, change: HookChange) -> None:
        if change.off_hook:
            if self.state is LineState.RINGING:
                self.line.set_ringing(False, change.at)  # ring trip
                self.state = LineState.CONNECTED
            elif self.state is LineState.IDLE:
                self.digits = ""
                self._send.clear()
                self.play_tone("dial")
                self.state = LineState.DIALLING
        else:
            self._stop_tone()
            self._send.clear()
            self.line.set_polarity(False, change.at)
            self.state = LineState.IDLE

    def _on_frame(self, frame: bytes) -> None:
        now = self.line.clock()
        if self.line.daa_off_hook:
            self.recorder.add(now, frame)
            if self.state is LineState.DIALLING:
                digits = self._dtmf.feed(alaw_decode(frame))
                if digits:
                    self.digits += "".join(digits)
                    self._stop_tone()  # dial tone stops at the first digit
        if self._tone is not None and self._send.pending_samples == 0:
            self._send.put(self._tone.read())
        self.line.from_network.put(self._send.next_frame())

    def close(self) -> None:
        self.line.to_network.unsubscribe(self._on_frame)
        self._stop_tone()
        self._dtmf.close()

    def describe(self) -> dict[str, object]:
        return {
            **self.line.describe(),
            "state": self.state.value,
            "caller": self.caller,
            "digits": self.digits,
        }


class LineError(ValueError):
    """A request the line cannot carry out in its state (ring a busy line, bad number)."""
