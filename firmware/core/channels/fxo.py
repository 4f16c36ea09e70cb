"""FXO channel: one PSTN line, carried to and from SIP.

Incoming: a validated ring (the driver's ``RingStart``, after its ring validation)
offers a call; the caller ID captured on the on-hook line (Denmark: DTMF before the
first ring; the gateway feeds the line's audio, ``audio()``) becomes the caller
number. Routing waits for the first validated ring when caller ID comes before it,
and for the caller ID or the second ring when it comes after. ``PlaceCall`` goes to
``destination``; when SIP answers, the line is seized (``Seize``). A caller who stops
ringing (``ringing_ended``) before the answer clears the SIP call.

Outgoing: ``outgoing(number)`` seizes the line, waits ``dial_delay_s`` for dial tone
and dials the number as DTMF. With ``answer_supervision`` the call is answered when the
line reverses polarity; without it, as soon as the digits are out (the usual FXO
compromise: the far end's answer cannot be seen).

Clearing: the line's disconnect (loop current gone past the driver's disconnect time),
a polarity reversal back to normal after a supervised answer, or busy / congestion
tone heard on the line ends the call; a SIP hang-up releases the line.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from firmware.core.channels.actions import (
    NORMAL_CLEARING,
    USER_BUSY,
    Action,
    AnswerCall,
    ClearCall,
    Media,
    PlaceCall,
    Release,
    Seize,
    SendDigits,
)
from firmware.dsp import CallerIdReceiver, CountryProfile, ToneDetector

Clock = Callable[[], float]
Samples = npt.NDArray[np.int16]
CLEARING_TONES = ("busy", "congestion")


class FxoState(enum.Enum):
    IDLE = "idle"
    RINGING = "ringing"  # validated ring, waiting for caller ID / routing
    OFFERED = "offered"  # SIP call placed, line still ringing
    SEIZED = "seized"  # outgoing: off-hook, waiting for dial tone
    DIALLING = "dialling"  # outgoing: digits going out
    WAIT_ANSWER = "wait-answer"  # outgoing: digits out, waiting for polarity reversal
    CONNECTED = "connected"


class FxoChannel:
    """State machine of one FXO line. Feed events in, ``take_actions()`` out."""

    def __init__(
        self,
        port: str,
        destination: str,
        profile: CountryProfile,
        clock: Clock,
        *,
        answer_supervision: bool = False,
        dial_delay_s: float = 1.0,
        answer_timeout_s: float = 120.0,
        detect_clearing_tones: bool = True,
    ) -> None:
        self.port = port
        self.destination = destination
        self.profile = profile
        self.clock = clock
        self.answer_supervision = answer_supervision
        self.dial_delay_s = dial_delay_s
        self.answer_timeout_s = answer_timeout_s
        self.detect_clearing_tones = detect_clearing_tones
        self.state = FxoState.IDLE
        self.caller: str | None = None
        self.number = ""
        self.cause: int | None = None
        self._rings = 0
        self._deadline: float | None = None
        self._actions: list[Action] = []
        self._cid: CallerIdReceiver | None = None
        self._tones: ToneDetector | None = None
        self._outgoing = False
        self._refused = False

    # --- line events ---------------------------------------------------------------------

    def audio(self, samples: Samples, *, quiet: bool = False) -> None:
        """One frame of the line's audio: caller ID while on-hook, clearing tones when seized.
        ``quiet``: digital silence, the same constant array every time (see `quiet`)."""
        if self.state in (FxoState.IDLE, FxoState.RINGING):
            if self._cid is None:
                self._cid = CallerIdReceiver(self.profile.caller_id.method)
            feed = self._cid.feed_quiet if quiet else self._cid.feed
            for cid in feed(samples):
                if cid.number:
                    self.caller_id(cid.number)
        elif self.detect_clearing_tones and self.state in (
            FxoState.CONNECTED,
            FxoState.WAIT_ANSWER,
        ):
            if self._tones is None:
                self._tones = ToneDetector(self.profile, CLEARING_TONES)
            for event in self._tones.feed(samples):
                if event.tone in CLEARING_TONES:
                    self._clear(USER_BUSY if event.tone == "busy" else 34)

    def quiet(self, silence: Samples) -> None:
        """One frame of digital silence, ``silence`` being the same constant array every
        time: as ``audio``, but once caller-ID reception has settled it costs nothing."""
        self.audio(silence, quiet=True)

    def caller_id(self, number: str) -> None:
        if self.state not in (FxoState.IDLE, FxoState.RINGING):
            return
        self.caller = number
        if self.state is FxoState.RINGING and not self._refused:
            self._offer()

    def ring_start(self) -> None:
        if self.state is FxoState.IDLE:
            self._rings = 0
            self._refused = False
            self.cause = None
            self.state = FxoState.RINGING
        if self.state is not FxoState.RINGING or self._refused:
            return
        self._rings += 1
        cid_first = self.profile.caller_id.timing == "before_first_ring"
        if cid_first or self.caller is not None or self._rings >= 2:
            self._offer()

    def ringing_ended(self) -> None:
        """The caller stopped ringing before the box answered."""
        if self.state is FxoState.OFFERED:
            self._do(ClearCall(NORMAL_CLEARING))
        if self.state in (FxoState.RINGING, FxoState.OFFERED):
            self._reset()

    def polarity_reversal(self, reversed_polarity: bool) -> None:
        if not self.answer_supervision:
            return
        if self.state in (FxoState.DIALLING, FxoState.WAIT_ANSWER) and reversed_polarity:
            self._connect_outgoing()
        elif self.state is FxoState.CONNECTED and not reversed_polarity and self._outgoing:
            self._clear(NORMAL_CLEARING)

    def disconnect(self) -> None:
        if self.state in (
            FxoState.CONNECTED,
            FxoState.SEIZED,
            FxoState.DIALLING,
            FxoState.WAIT_ANSWER,
        ):
            self._clear(NORMAL_CLEARING)

    # --- SIP side ----------------------------------------------------------------------------

    def remote_answered(self) -> None:
        """The SIP side answered the incoming line call: seize the line."""
        if self.state is FxoState.OFFERED:
            self._do(Seize(), Media(True))
            self._enter(FxoState.CONNECTED, None)

    def remote_failed(self, cause: int) -> None:
        """Nobody took the call: leave the line ringing unanswered; the caller gives up."""
        if self.state is FxoState.OFFERED:
            self.cause = cause
            self.state = FxoState.RINGING
            self._refused = True  # do not offer it again for this ringing

    def remote_hangup(self, cause: int = NORMAL_CLEARING) -> None:
        self.cause = cause
        if self.state is FxoState.OFFERED:
            self.state = FxoState.RINGING
            self._refused = True
        elif self.state is not FxoState.IDLE and self.state is not FxoState.RINGING:
            self._do(Media(False), Release())
            self._reset()

    def outgoing(self, number: str) -> bool:
        """A SIP call out through this line. False when the line is in use (486 / 34)."""
        if self.state is not FxoState.IDLE:
            return False
        if not number or any(c not in "0123456789*#ABCD" for c in number):
            raise ValueError(f"{self.port}: cannot dial {number!r} on an analog line")
        self.number = number
        self._outgoing = True
        self._do(Seize())
        self._enter(FxoState.SEIZED, self.clock() + self.dial_delay_s)
        return True

    # --- time --------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self._deadline

    def poll(self) -> None:
        if self._deadline is None:
            return
        now = self.clock()
        if now < self._deadline:
            return
        self._deadline = None
        if self.state is FxoState.SEIZED:
            self._do(SendDigits(self.number))
            d = self.profile.dtmf
            out_s = len(self.number) * (d.on_ms + d.off_ms) / 1000
            self._enter(FxoState.DIALLING, now + out_s)
        elif self.state is FxoState.DIALLING:
            if self.answer_supervision:
                self._enter(FxoState.WAIT_ANSWER, now + self.answer_timeout_s)
            else:
                self._connect_outgoing()
        elif self.state is FxoState.WAIT_ANSWER:
            self._clear(19)  # no answer from user

    def take_actions(self) -> list[Action]:
        actions, self._actions = self._actions, []
        return actions

    # --- internals -------------------------------------------------------------------------

    def _offer(self) -> None:
        self._do(PlaceCall(self.destination, self.caller))
        self._enter(FxoState.OFFERED, None)

    def _connect_outgoing(self) -> None:
        self._do(AnswerCall(), Media(True))
        self._enter(FxoState.CONNECTED, None)

    def _clear(self, cause: int) -> None:
        self.cause = cause
        self._do(Media(False), Release(), ClearCall(cause))
        self._reset()

    def _reset(self) -> None:
        self.state = FxoState.IDLE
        self._deadline = None
        self.caller = None
        self.number = ""
        self._outgoing = False
        for det in (self._cid, self._tones):
            if det is not None:
                det.close()
        self._cid = self._tones = None

    def _enter(self, state: FxoState, deadline: float | None) -> None:
        self.state = state
        self._deadline = deadline

    def _do(self, *actions: Action) -> None:
        self._actions.extend(actions)

    def close(self) -> None:
        self._reset()

    def describe(self) -> dict[str, object]:
        return {
            "port": self.port,
            "destination": self.destination,
            "state": self.state.value,
            "caller": self.caller,
        }
