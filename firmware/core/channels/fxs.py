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
``warning_after_s`` gets ``OffHookWarning``.

Hook flash (R key), the European/Danish PBX convention. A port has two call slots
(0 and 1); every call action and SIP event names its slot.

* In a call, R puts the far party on hold (``Hold``: it hears the box's music) and
  gives dial tone; the digits dial a consultation call in the other slot (same dial
  plan, same timers), with ringback, busy and so on as for a first call.
* R again, during that dial tone, a consultation ringing or answered, or after it
  failed or was hung up: the consultation is ended and the held party is back
  (``Resume``).
* Hanging up during the consultation transfers (omstilling): answered -> attended
  transfer (``Transfer`` with ``replaces``: the box joins the held party and the
  consultation partner); still ringing -> the consultation is cancelled and the held
  party is transferred blind to the dialled number. The port waits for the outcome
  (``transfer_result``, at most ``transfer_timeout_s``): success releases both calls;
  failure ends the consultation and rings the phone back (recall).
* Hanging up with a party on hold and no consultation in progress (dial tone, or the
  consultation failed or ended) rings the phone back (recall, the profile's cadence);
  lifting the handset resumes the held call. Unanswered for ``recall_s``, the held
  call is cleared.
* The held party hanging up: a consultation in progress becomes the port's only call;
  with none placed yet, the phone hears busy tone.
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
    Hold,
    Media,
    OffHookWarning,
    PlaceCall,
    PlayTone,
    Resume,
    SendCallerId,
    StartRing,
    StopRing,
    Transfer,
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
    RECALL = "recall"  # on-hook with a party on hold: ringing the phone back
    TRANSFERRING = "transferring"  # on-hook after a consultation: waiting for the outcome


DIALLING = (FxsState.DIAL_TONE, FxsState.COLLECTING)
IN_CALL = (FxsState.CALLING, FxsState.ALERTING, FxsState.CONNECTED)
AFTER_CALL = (FxsState.FAILED, FxsState.CLEARED, FxsState.WARNING)


class FxsChannel:
    """State machine of one FXS port. Feed events in, ``take_actions()`` out.

    ``active`` is the slot of the call being dialled or talked on; ``held`` the slot of
    the call on hold (None: none); ``calls`` the slots with a SIP call in being.
    """

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
        recall_s: float = 60.0,
        transfer_timeout_s: float = 90.0,
    ) -> None:
        self.port = port
        self.extension = extension
        self.profile = profile
        self.dialplan = dialplan
        self.clock = clock
        self.first_digit_s = first_digit_s
        self.inter_digit_s = inter_digit_s
        self.warning_after_s = warning_after_s
        self.recall_s = recall_s
        self.transfer_timeout_s = transfer_timeout_s
        self.state = FxsState.IDLE
        self.digits = ""
        self.caller: str | None = None
        self.cause: int | None = None
        self.active = 0
        self.held: int | None = None
        self.calls: set[int] = set()
        self.numbers: dict[int, str] = {}  # what each slot's outgoing call dialled
        self._media: int | None = None  # the slot whose audio is on the timeslot
        self._lifted = False  # handset lifted again while a transfer is pending
        self._deadline: float | None = None
        self._actions: list[Action] = []
        self._dtmf: DtmfReceiver | None = None
        self._cid_after_ring = False

    # --- line events ---------------------------------------------------------------------

    def off_hook(self) -> None:
        state = self.state
        if state is FxsState.IDLE:
            self._dial_tone()
        elif state in (FxsState.RINGING, FxsState.CALLER_ID):
            self._do(StopRing(), AnswerCall())
            self._connect(self.active)
        elif state is FxsState.RECALL:
            self._do(StopRing())
            self._back_to_held()
        elif state is FxsState.TRANSFERRING:
            self._lifted = True

    def on_hook(self) -> None:
        state = self.state
        if state is FxsState.IDLE:
            return
        if state is FxsState.TRANSFERRING:
            self._lifted = False
            return
        if state is FxsState.RECALL:
            return
        self._close_dtmf()
        if self.held is not None:
            if state in IN_CALL:
                self._transfer()
            else:
                self._do(PlayTone(None))
                self._recall()
            return
        if state in IN_CALL:
            self._do(ClearCall(NORMAL_CLEARING, self.active))
            self.calls.discard(self.active)
        self._media_off()
        if state not in (FxsState.RINGING, FxsState.CALLER_ID):
            self._do(PlayTone(None))
        self._idle()

    def hook_flash(self) -> None:
        """R: hold and consult, or back to the held party (see the module docstring)."""
        state = self.state
        if self.held is None:
            if state is FxsState.CONNECTED:
                self._hold()
            return
        if state in DIALLING or state in AFTER_CALL:
            self._close_dtmf()
            self._do(PlayTone(None))
            self._back_to_held()
        elif state in IN_CALL:
            self._media_off()
            self._do(ClearCall(NORMAL_CLEARING, self.active), PlayTone(None))
            self.calls.discard(self.active)
            self._back_to_held()

    def audio(self, samples: Samples) -> None:
        """One frame of the port's audio (8 kHz int16): DTMF is detected while dialling."""
        if self.state not in DIALLING:
            return
        if self._dtmf is None:
            self._dtmf = DtmfReceiver()
        for digit in self._dtmf.feed(samples):
            self.digit(digit)

    def quiet(self, silence: Samples) -> None:
        """One frame of digital silence (the same constant array every time); as ``audio``."""
        if self.state in DIALLING:
            self.audio(silence)

    def digit(self, digit: str) -> None:
        if self.state not in DIALLING:
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
        """A call for this port (slot 0). False when the port is busy (the gateway answers 486)."""
        if self.state is not FxsState.IDLE:
            return False
        now = self.clock()
        self.caller = caller
        self.active = 0
        self.calls = {0}
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

    def remote_ringing(self, call: int = 0) -> None:
        if self.state is FxsState.CALLING and call == self.active:
            self._do(PlayTone("ringback"))
            self._enter(FxsState.ALERTING, None)

    def remote_early_media(self, call: int = 0) -> None:
        if self.state in (FxsState.CALLING, FxsState.ALERTING) and call == self.active:
            self._do(PlayTone(None), Media(True, call))
            self._media = call
            self._enter(FxsState.ALERTING, None)

    def remote_answered(self, call: int = 0) -> None:
        if self.state in (FxsState.CALLING, FxsState.ALERTING) and call == self.active:
            self._do(PlayTone(None))
            self._connect(call)

    def remote_failed(self, cause: int, call: int = 0) -> None:
        """The outgoing call got a final error (cause from the SIP status / Reason)."""
        self.calls.discard(call)
        if self.state is FxsState.TRANSFERRING:
            self._transfer_leftover()
        elif self.state in (FxsState.CALLING, FxsState.ALERTING) and call == self.active:
            self._media_off(force=True)
            self._fail(cause, clear=False)

    def remote_hangup(self, cause: int = NORMAL_CLEARING, call: int = 0) -> None:
        """The far end ended the call in slot ``call`` (BYE), or cancelled a call still
        ringing here."""
        if call not in self.calls:
            return
        self.calls.discard(call)
        state = self.state
        if call == self.held:
            self.held = None
            if state is FxsState.RECALL:
                self._do(StopRing())
                self._idle()
            elif state is FxsState.TRANSFERRING:
                self._transfer_leftover()
            elif state in DIALLING:  # no consultation placed: nobody left
                self._close_dtmf()
                self.cause = cause
                self._do(PlayTone("busy"))
                self._enter(FxsState.CLEARED, self.clock() + self.warning_after_s)
            return  # a consultation in progress becomes the port's only call
        if state is FxsState.TRANSFERRING:
            if self._media == call:
                self._media_off()
            self._transfer_leftover()
            return
        if call != self.active:
            return
        self.cause = cause
        if state in (FxsState.RINGING, FxsState.CALLER_ID):
            self._do(StopRing())
            self._idle()
        elif state is FxsState.CONNECTED:
            self._media_off(force=True)
            self._do(PlayTone("busy"))
            self._enter(FxsState.CLEARED, self.clock() + self.warning_after_s)
        elif state in (FxsState.CALLING, FxsState.ALERTING):
            self._media_off()
            self._fail(cause, clear=False)

    def transfer_result(self, ok: bool) -> None:
        """The outcome of ``Transfer``: success releases the port's calls; failure ends
        the consultation and rings the phone back for the held party."""
        if self.state is not FxsState.TRANSFERRING:
            return
        if ok:
            for slot in sorted(self.calls):
                self._do(ClearCall(NORMAL_CLEARING, slot))
            self.calls.clear()
            self.held = None
            self._after_transfer()
            return
        consult = self.active
        if consult in self.calls:
            self._do(ClearCall(NORMAL_CLEARING, consult))
            self.calls.discard(consult)
        if self.held is not None and self.held in self.calls:
            if self._lifted:
                self._back_to_held()
            else:
                self._recall()
        else:
            self.held = None
            self._after_transfer()

    # --- time ----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self._deadline

    def poll(self) -> None:
        if self._deadline is None:
            return
        now = self.clock()
        if now < self._deadline:
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
        elif state is FxsState.RECALL:
            self._do(StopRing())
            if self.held is not None:
                self._do(ClearCall(NORMAL_CLEARING, self.held))
            self._idle()
        elif state is FxsState.TRANSFERRING:
            self.transfer_result(False)

    def take_actions(self) -> list[Action]:
        actions, self._actions = self._actions, []
        return actions

    # --- internals -------------------------------------------------------------------------

    def _dial_tone(self) -> None:
        self.digits = ""
        self.cause = None
        self._do(PlayTone("dial"))
        self._enter(FxsState.DIAL_TONE, self.clock() + self.first_digit_s)

    def _connect(self, slot: int) -> None:
        self._do(Media(True, slot))
        self._media = slot
        self._enter(FxsState.CONNECTED, None)

    def _media_off(self, *, force: bool = False) -> None:
        """Take the active call's audio off the timeslot (``force``: say so even if it was
        never on, as a failed or ended call always did)."""
        if self._media is not None:
            self._do(Media(False, self._media))
        elif force:
            self._do(Media(False, self.active))
        self._media = None

    def _hold(self) -> None:
        held = self.active
        self._media_off()
        self._do(Hold(held))
        self.held = held
        self.active = 1 - held
        self._dial_tone()

    def _back_to_held(self) -> None:
        assert self.held is not None
        slot, self.held = self.held, None
        self.active = slot
        self.digits = self.numbers.get(slot, "")
        self._lifted = False
        self._do(Resume(slot))
        self._connect(slot)

    def _transfer(self) -> None:
        assert self.held is not None
        consult = self.active
        self._do(PlayTone(None))
        if self.state is FxsState.CONNECTED:
            self._media_off()
            self._do(Transfer(self.held, self.digits, consult))
        else:  # not answered yet: cancel it and transfer blind to the same number
            self._media_off()
            self._do(ClearCall(NORMAL_CLEARING, consult), Transfer(self.held, self.digits, None))
            self.calls.discard(consult)
        self._lifted = False
        self._enter(FxsState.TRANSFERRING, self.clock() + self.transfer_timeout_s)

    def _transfer_leftover(self) -> None:
        """A call ended while a transfer is pending: nothing left -> the port is free."""
        if not self.calls:
            self.held = None
            self._after_transfer()

    def _after_transfer(self) -> None:
        lifted, self._lifted = self._lifted, False
        self._idle()
        if lifted:
            self._dial_tone()

    def _recall(self) -> None:
        cadence = tuple(
            float(ms) for step in self.profile.ring.cadence for ms in (step.on_ms, step.off_ms)
        )
        self._do(StartRing(cadence))
        self._enter(FxsState.RECALL, self.clock() + self.recall_s)

    def _idle(self) -> None:
        self._close_dtmf()
        self.active = 0
        self.held = None
        self.calls.clear()
        self._media = None
        self._enter(FxsState.IDLE, None)

    def _start_ring(self) -> None:
        cadence = tuple(
            float(ms) for step in self.profile.ring.cadence for ms in (step.on_ms, step.off_ms)
        )
        self._do(StartRing(cadence))
        self._enter(FxsState.RINGING, None)

    def _dial(self) -> None:
        self._close_dtmf()
        self._do(PlaceCall(self.digits, self.extension, self.active))
        self.calls.add(self.active)
        self.numbers[self.active] = self.digits
        self._enter(FxsState.CALLING, None)

    def _fail(self, cause: int, *, clear: bool = False, tone: str | None = None) -> None:
        self.cause = cause
        self._close_dtmf()
        if clear:
            self._do(ClearCall(cause, self.active))
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
            "held": self.held,
            "calls": sorted(self.calls),
        }
