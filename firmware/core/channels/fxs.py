"""FXS channel: one analog phone port as a SIP-calling extension.

Outgoing: off-hook -> dial tone -> digits (DTMF detected on the port's audio, or
given) -> the dial plan decides after each digit: a match dials at once, ``Incomplete``
waits ``inter_digit_s`` and then dials its candidate, no match plays the
special-information tone -> ``PlaceCall`` -> ringback / busy / congestion as SIP
progresses -> connected. No first digit within ``first_digit_s`` plays congestion.

Incoming: ``incoming(caller)`` -> caller ID with the profile's method and timing
(Denmark: DTMF before the first ring, the ring ``data_to_ring_ms`` after it is sent) ->
ringing with the profile's cadence -> off-hook answers.

Clearing: hanging up clears the call (Q.850 16). A far-end hang-up plays busy tone; a
failed call plays the tone of its cause. Either way, a handset still off-hook after
``warning_after_s`` gets ``OffHookWarning``. A hook flash during a call is reported
(``Flash``) for hold and transfer.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from firmware.core.channels.actions import (
    NORMAL_CLEARING,
    RECOVERY_ON_TIMER_EXPIRY,
    Action,
    AnswerCall,
    ClearCall,
    Flash,
    Media,
    OffHookWarning,
    PlaceCall,
    PlayTone,
    SendCallerId,
    StartRing,
    StopRing,
    tone_for_cause,
)
from firmware.core.dialplan import DialPlan, ExtensionMatch, FeatureMatch, Incomplete
from firmware.dsp import CountryProfile, DtmfReceiver

Clock = Callable[[], float]
Samples = npt.NDArray[np.int16]
CID_SAFETY_S = 5.0  # ring anyway if the gateway never reports the caller ID sent


class FxsState(enum.Enum):
    IDLE = "idle"
    DIAL_TONE = "dial-tone"
    COLLECTING = "collecting"
    CALLING = "calling"  # INVITE sent, nothing back yet
    ALERTING = "alerting"  # far end rings: ringback tone (or early media)
    CONNECTED = "connected"
    FAILED = "failed"  # call did not happen: error tone until on-hook
    CLEARED = "cleared"  # far end hung up: busy tone until on-hook
    WARNING = "warning"  # off-hook warning until on-hook
    CALLER_ID = "caller-id"  # incoming: sending caller ID before the first ring
    RINGING = "ringing"


class FxsChannel:
    """State machine of one FXS port. Feed events in, ``take_actions()`` out."""

    def __init__(
        self,
        port: str,
        extension: str,
        profile: CountryProfile,
        dialplan: DialPlan,
        clock: Clock,
        *,
        first_digit_s: float = 10.0,
        inter_digit_s: float = 4.0,
        warning_after_s: float = 30.0,
    ) -> None:
        self.port = port
        self.extension = extension
        self.profile = profile
        self.dialplan = dialplan
        self.clock = clock
        self.first_digit_s = first_digit_s
        self.inter_digit_s = inter_digit_s
        self.warning_after_s = warning_after_s
        self.state = FxsState.IDLE
        self.digits = ""
        self.caller: str | None = None
        self.cause: int | None = None
        self._deadline: float | None = None
        self._actions: list[Action] = []
        self._dtmf: DtmfReceiver | None = None
        self._cid_after_ring = False

    # --- line events ---------------------------------------------------------------------

    def off_hook(self) -> None:
        now = self.clock()
        if self.state is FxsState.IDLE:
            self.digits = ""
            self.cause = None
            self._enter(FxsState.DIAL_TONE, now + self.first_digit_s)
            self._do(PlayTone("dial"))
        elif self.state in (FxsState.RINGING, FxsState.CALLER_ID):
            self._do(StopRing(), AnswerCall(), Media(True))
            self._enter(FxsState.CONNECTED, None)

    def on_hook(self) -> None:
        state = self.state
        if state is FxsState.IDLE:
            return
        if state in (FxsState.CALLING, FxsState.ALERTING, FxsState.CONNECTED):
            self._do(ClearCall(NORMAL_CLEARING))
        if state is FxsState.CONNECTED:
            self._do(Media(False))
        if state not in (FxsState.RINGING, FxsState.CALLER_ID):
            self._do(PlayTone(None))
        self._close_dtmf()
        self._enter(FxsState.IDLE, None)

    def hook_flash(self) -> None:
        if self.state is FxsState.CONNECTED:
            self._do(Flash())

    def audio(self, samples: Samples) -> None:
        """One frame of the port's audio (8 kHz int16): DTMF is detected while dialling."""
        if self.state not in (FxsState.DIAL_TONE, FxsState.COLLECTING):
            return
        if self._dtmf is None:
            self._dtmf = DtmfReceiver()
        for digit in self._dtmf.feed(samples):
            self.digit(digit)

    def digit(self, digit: str) -> None:
        if self.state not in (FxsState.DIAL_TONE, FxsState.COLLECTING):
            return
        now = self.clock()
        if self.state is FxsState.DIAL_TONE:
            self._do(PlayTone(None))
        self.digits += digit
        result = self.dialplan.match(self.digits)
        if isinstance(result, ExtensionMatch | FeatureMatch):
            self._dial()
        elif isinstance(result, Incomplete):
            self._enter(FxsState.COLLECTING, now + self.inter_digit_s)
        else:
            self._fail(1 if not result.partial else 28)

    # --- SIP progress --------------------------------------------------------------------

    def incoming(self, caller: str | None, name: str | None = None) -> bool:
        """A call for this port. False when the port is busy (the gateway answers 486)."""
        if self.state is not FxsState.IDLE:
            return False
        now = self.clock()
        self.caller = caller
        cid = self.profile.caller_id
        if caller and caller.isdigit() and cid.timing == "before_first_ring":
            self._do(SendCallerId(caller, name))
            self._enter(FxsState.CALLER_ID, now + CID_SAFETY_S)
        else:
            self._start_ring()
            if caller and caller.isdigit():
                self._cid_after_ring = True
                self._deadline = (
                    now + self.profile.ring.cadence[0].on_ms / 1000 + cid.ring_to_data_ms / 1000
                )
        return True

    def caller_id_sent(self) -> None:
        """The gateway finished sending caller ID: ring after the profile's gap."""
        if self.state is FxsState.CALLER_ID:
            gap = self.profile.caller_id.data_to_ring_ms / 1000
            self._deadline = self.clock() + gap

    def remote_ringing(self) -> None:
        if self.state is FxsState.CALLING:
            self._do(PlayTone("ringback"))
            self._enter(FxsState.ALERTING, None)

    def remote_early_media(self) -> None:
        if self.state in (FxsState.CALLING, FxsState.ALERTING):
            self._do(PlayTone(None), Media(True))
            self._enter(FxsState.ALERTING, None)

    def remote_answered(self) -> None:
        if self.state in (FxsState.CALLING, FxsState.ALERTING):
            self._do(PlayTone(None), Media(True))
            self._enter(FxsState.CONNECTED, None)

    def remote_failed(self, cause: int) -> None:
        """The outgoing call got a final error (cause from the SIP status / Reason)."""
        if self.state in (FxsState.CALLING, FxsState.ALERTING):
            self._do(Media(False))
            self._fail(cause, clear=False)

    def remote_hangup(self, cause: int = NORMAL_CLEARING) -> None:
        """The far end ended the call (BYE), or cancelled a call still ringing here."""
        self.cause = cause
        if self.state in (FxsState.RINGING, FxsState.CALLER_ID):
            self._do(StopRing())
            self._enter(FxsState.IDLE, None)
        elif self.state is FxsState.CONNECTED:
            self._do(Media(False), PlayTone("busy"))
            self._enter(FxsState.CLEARED, self.clock() + self.warning_after_s)
        elif self.state in (FxsState.CALLING, FxsState.ALERTING):
            self._fail(cause, clear=False)

    # --- time ----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self._deadline

    def poll(self) -> None:
        now = self.clock()
        if self._deadline is None or now < self._deadline:
            return
        self._deadline = None
        state = self.state
        if state is FxsState.DIAL_TONE:
            self._fail(RECOVERY_ON_TIMER_EXPIRY, tone="congestion")
        elif state is FxsState.COLLECTING:
            result = self.dialplan.match(self.digits, final=True)
            if isinstance(result, ExtensionMatch | FeatureMatch):
                self._dial()
            else:
                self._fail(28 if getattr(result, "partial", False) else 1)
        elif state in (FxsState.FAILED, FxsState.CLEARED):
            self._do(PlayTone(None), OffHookWarning())
            self._enter(FxsState.WARNING, None)
        elif state is FxsState.CALLER_ID:
            self._start_ring()
        elif state is FxsState.RINGING and self._cid_after_ring:
            self._cid_after_ring = False
            if self.caller:
                self._do(SendCallerId(self.caller))

    def take_actions(self) -> list[Action]:
        actions, self._actions = self._actions, []
        return actions

    # --- internals -------------------------------------------------------------------------

    def _start_ring(self) -> None:
        cadence = tuple(
            float(ms) for step in self.profile.ring.cadence for ms in (step.on_ms, step.off_ms)
        )
        self._do(StartRing(cadence))
        self._enter(FxsState.RINGING, None)

    def _dial(self) -> None:
        self._close_dtmf()
        self._do(PlaceCall(self.digits, self.extension))
        self._enter(FxsState.CALLING, None)

    def _fail(self, cause: int, *, clear: bool = False, tone: str | None = None) -> None:
        self.cause = cause
        self._close_dtmf()
        if clear:
            self._do(ClearCall(cause))
        self._do(PlayTone(tone or tone_for_cause(cause)))
        self._enter(FxsState.FAILED, self.clock() + self.warning_after_s)

    def _enter(self, state: FxsState, deadline: float | None) -> None:
        self.state = state
        self._deadline = deadline

    def _do(self, *actions: Action) -> None:
        self._actions.extend(actions)

    def _close_dtmf(self) -> None:
        if self._dtmf is not None:
            self._dtmf.close()
            self._dtmf = None

    def close(self) -> None:
        self._close_dtmf()

    def describe(self) -> dict[str, object]:
        return {
            "port": self.port,
            "extension": self.extension,
            "state": self.state.value,
            "digits": self.digits,
        }
