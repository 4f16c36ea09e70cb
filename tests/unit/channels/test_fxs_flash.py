"""Hook flash on an FXS port (fake clock, Danish profile): hold and consultation, back
to the held party, transfer attended and blind with its outcome, recall, and the held
party hanging up."""

from __future__ import annotations

import numpy as np
import pytest

from firmware.core.channels import (
    AnswerCall,
    ClearCall,
    FxsChannel,
    FxsState,
    Hold,
    Media,
    OffHookWarning,
    PlaceCall,
    PlayTone,
    Resume,
    StartRing,
    StopRing,
    Transfer,
)
from firmware.core.dialplan import DialPlan
from firmware.dsp import load_profile

DK = load_profile("dk")
DK_RING = (1000.0, 4000.0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def advance(ch: FxsChannel, clock: Clock, seconds: float) -> None:
    end = clock.now + seconds
    while (d := ch.next_deadline()) is not None and d <= end:
        clock.now = d
        ch.poll()
    clock.now = end


def in_call(clock: Clock, *, incoming: bool = True) -> FxsChannel:
    """A port talking to 201 in slot 0 (201 called it, or it dialled 201)."""
    ch = FxsChannel("fxs1", "101", DK, DialPlan(["101", "201", "202"]), clock)
    if incoming:
        assert ch.incoming("201")
        ch.off_hook()
    else:
        ch.off_hook()
        for d in "201":
            ch.digit(d)
        ch.remote_answered(0)
    ch.take_actions()
    assert ch.state is FxsState.CONNECTED and ch.calls == {0}
    return ch


def consulting(clock: Clock, *, answered: bool) -> FxsChannel:
    ch = in_call(clock)
    ch.hook_flash()
    for d in "202":
        ch.digit(d)
    ch.remote_ringing(1)
    if answered:
        ch.remote_answered(1)
    ch.take_actions()
    return ch


def test_flash_holds_the_call_and_gives_dial_tone(clock: Clock) -> None:
    ch = in_call(clock)
    ch.hook_flash()
    assert ch.take_actions() == [Media(False, 0), Hold(0), PlayTone("dial")]
    assert (ch.state, ch.held, ch.active) == (FxsState.DIAL_TONE, 0, 1)
    ch.digit("2")
    assert ch.take_actions() == [PlayTone(None)]
    ch.digit("0")
    ch.digit("2")
    assert ch.take_actions() == [PlaceCall("202", "101", 1)]
    ch.remote_ringing(0)  # news of the held call's slot does not move the consultation
    assert ch.take_actions() == []
    ch.remote_ringing(1)
    assert ch.take_actions() == [PlayTone("ringback")]
    ch.remote_answered(1)
    assert ch.take_actions() == [PlayTone(None), Media(True, 1)]
    assert (ch.state, ch.held, ch.calls) == (FxsState.CONNECTED, 0, {0, 1})
    assert ch.describe()["held"] == 0


def test_flash_without_a_call_does_nothing(clock: Clock) -> None:
    ch = FxsChannel("fxs1", "101", DK, DialPlan(["201"]), clock)
    ch.off_hook()
    ch.take_actions()
    ch.hook_flash()
    assert ch.take_actions() == [] and ch.state is FxsState.DIAL_TONE


def test_hang_up_after_answered_consultation_is_an_attended_transfer(clock: Clock) -> None:
    ch = consulting(clock, answered=True)
    ch.on_hook()
    assert ch.take_actions() == [PlayTone(None), Media(False, 1), Transfer(0, "202", 1)]
    assert ch.state is FxsState.TRANSFERRING
    ch.remote_hangup(16, 1)  # the box ends the replaced consultation dialog
    assert ch.take_actions() == [] and ch.state is FxsState.TRANSFERRING
    ch.transfer_result(True)
    assert ch.take_actions() == [ClearCall(16, 0)]
    assert (ch.state, ch.calls, ch.held) == (FxsState.IDLE, set(), None)
    assert ch.incoming("203")  # the port is free again


def test_result_before_the_replaced_dialog_ends_clears_both(clock: Clock) -> None:
    ch = consulting(clock, answered=True)
    ch.on_hook()
    ch.take_actions()
    ch.transfer_result(True)
    assert ch.take_actions() == [ClearCall(16, 0), ClearCall(16, 1)]
    assert ch.state is FxsState.IDLE
    ch.remote_hangup(16, 1)  # late BYE: nothing more to do
    assert ch.take_actions() == [] and ch.state is FxsState.IDLE


def test_hang_up_while_consultation_rings_is_a_blind_transfer(clock: Clock) -> None:
    ch = consulting(clock, answered=False)
    ch.on_hook()
    assert ch.take_actions() == [PlayTone(None), ClearCall(16, 1), Transfer(0, "202", None)]
    ch.remote_failed(487, 1)  # our CANCEL's answer: nothing to do
    assert ch.take_actions() == [] and ch.state is FxsState.TRANSFERRING
    ch.transfer_result(True)
    assert ch.take_actions() == [ClearCall(16, 0)]
    assert ch.state is FxsState.IDLE


def test_failed_transfer_ends_consultation_and_rings_back(clock: Clock) -> None:
    ch = consulting(clock, answered=True)
    ch.on_hook()
    ch.take_actions()
    ch.transfer_result(False)
    assert ch.take_actions() == [ClearCall(16, 1), StartRing(DK_RING)]
    assert ch.state is FxsState.RECALL
    ch.off_hook()
    assert ch.take_actions() == [StopRing(), Resume(0), Media(True, 0)]
    assert (ch.state, ch.active, ch.held, ch.calls) == (FxsState.CONNECTED, 0, None, {0})


def test_transfer_without_outcome_times_out_into_recall(clock: Clock) -> None:
    ch = consulting(clock, answered=False)
    ch.on_hook()
    ch.take_actions()
    advance(ch, clock, ch.transfer_timeout_s - 1)
    assert ch.state is FxsState.TRANSFERRING
    advance(ch, clock, 2)
    assert ch.take_actions() == [StartRing(DK_RING)]  # the consultation was already cancelled
    assert ch.state is FxsState.RECALL


def test_handset_lifted_during_transfer(clock: Clock) -> None:
    ch = consulting(clock, answered=True)
    ch.on_hook()
    ch.off_hook()
    ch.take_actions()
    ch.transfer_result(False)  # failed: straight back to the held party, no ringing
    assert ch.take_actions() == [ClearCall(16, 1), Resume(0), Media(True, 0)]
    assert ch.state is FxsState.CONNECTED
    ch = consulting(clock, answered=True)
    ch.on_hook()
    ch.off_hook()
    ch.take_actions()
    ch.transfer_result(True)  # done: the lifted handset gets dial tone
    assert ch.take_actions() == [ClearCall(16, 0), ClearCall(16, 1), PlayTone("dial")]
    assert ch.state is FxsState.DIAL_TONE


def test_flash_during_consultation_returns_to_held_party(clock: Clock) -> None:
    ch = consulting(clock, answered=True)
    ch.hook_flash()
    assert ch.take_actions() == [
        Media(False, 1), ClearCall(16, 1), PlayTone(None), Resume(0), Media(True, 0),
    ]  # fmt: skip
    assert (ch.state, ch.active, ch.held, ch.calls) == (FxsState.CONNECTED, 0, None, {0})
    ch.hook_flash()  # and again: a new consultation, now from slot 1's side of things
    assert ch.take_actions() == [Media(False, 0), Hold(0), PlayTone("dial")]


def test_flash_while_consultation_rings_cancels_it(clock: Clock) -> None:
    ch = consulting(clock, answered=False)
    ch.hook_flash()
    assert ch.take_actions() == [ClearCall(16, 1), PlayTone(None), Resume(0), Media(True, 0)]
    assert ch.state is FxsState.CONNECTED


def test_flash_during_dial_tone_returns_to_held_party(clock: Clock) -> None:
    ch = in_call(clock)
    ch.hook_flash()
    ch.digit("2")  # half a number, then R
    ch.take_actions()
    ch.hook_flash()
    assert ch.take_actions() == [PlayTone(None), Resume(0), Media(True, 0)]
    assert (ch.state, ch.digits) == (FxsState.CONNECTED, "")
    ch.audio(np.zeros(160, dtype=np.int16))  # no digit collection now
    assert ch.take_actions() == []


def test_failed_consultation_then_flash_or_hang_up(clock: Clock) -> None:
    ch = consulting(clock, answered=False)
    ch.remote_failed(17, 1)  # 202 busy
    assert ch.take_actions() == [Media(False, 1), PlayTone("busy")]
    assert (ch.state, ch.held) == (FxsState.FAILED, 0)
    ch.hook_flash()
    assert ch.take_actions() == [PlayTone(None), Resume(0), Media(True, 0)]
    ch = consulting(clock, answered=False)
    ch.remote_failed(17, 1)
    ch.take_actions()
    ch.on_hook()  # nothing to transfer to: ring back for the held party
    assert ch.take_actions() == [PlayTone(None), StartRing(DK_RING)]
    assert ch.state is FxsState.RECALL


def test_consultation_party_hangs_up_then_back_with_flash(clock: Clock) -> None:
    ch = consulting(clock, answered=True)
    ch.remote_hangup(16, 1)
    assert ch.take_actions() == [Media(False, 1), PlayTone("busy")]
    assert (ch.state, ch.held) == (FxsState.CLEARED, 0)
    ch.hook_flash()
    assert ch.take_actions() == [PlayTone(None), Resume(0), Media(True, 0)]


def test_hang_up_at_dial_tone_recalls_and_unanswered_recall_clears(clock: Clock) -> None:
    ch = in_call(clock)
    ch.hook_flash()
    ch.take_actions()
    ch.on_hook()
    assert ch.take_actions() == [PlayTone(None), StartRing(DK_RING)]
    advance(ch, clock, ch.recall_s + 1)
    assert ch.take_actions() == [StopRing(), ClearCall(16, 0)]
    assert (ch.state, ch.calls) == (FxsState.IDLE, set())


def test_held_party_hangs_up_during_recall(clock: Clock) -> None:
    ch = in_call(clock)
    ch.hook_flash()
    ch.on_hook()
    ch.take_actions()
    ch.remote_hangup(16, 0)
    assert ch.take_actions() == [StopRing()]
    assert ch.state is FxsState.IDLE


def test_held_party_hangs_up_during_dial_tone_gives_busy(clock: Clock) -> None:
    ch = in_call(clock)
    ch.hook_flash()
    ch.take_actions()
    ch.remote_hangup(16, 0)
    assert ch.take_actions() == [PlayTone("busy")]
    assert (ch.state, ch.held) == (FxsState.CLEARED, None)
    advance(ch, clock, ch.warning_after_s + 1)
    assert ch.take_actions() == [PlayTone(None), OffHookWarning()]
    ch.on_hook()
    assert ch.take_actions() == [PlayTone(None)] and ch.state is FxsState.IDLE


def test_held_party_hangs_up_during_consultation_leaves_it_the_only_call(
    clock: Clock,
) -> None:
    ch = consulting(clock, answered=True)
    ch.remote_hangup(16, 0)
    assert ch.take_actions() == [] and (ch.state, ch.held, ch.calls) == (
        FxsState.CONNECTED, None, {1},
    )  # fmt: skip
    ch.hook_flash()  # R now holds slot 1 and consults in slot 0
    assert ch.take_actions() == [Media(False, 1), Hold(1), PlayTone("dial")]
    for d in "201":
        ch.digit(d)
    assert ch.take_actions()[-1] == PlaceCall("201", "101", 0)
    ch.remote_answered(0)
    ch.take_actions()
    ch.on_hook()
    assert ch.take_actions() == [PlayTone(None), Media(False, 0), Transfer(1, "201", 0)]


def test_held_party_hangs_up_while_consultation_rings(clock: Clock) -> None:
    ch = consulting(clock, answered=False)
    ch.remote_hangup(16, 0)
    ch.remote_answered(1)
    assert ch.take_actions() == [PlayTone(None), Media(True, 1)]
    ch.on_hook()  # an ordinary hang-up now: no transfer
    assert ch.take_actions() == [ClearCall(16, 1), Media(False, 1), PlayTone(None)]
    assert ch.state is FxsState.IDLE


def test_held_party_hangs_up_during_transfer(clock: Clock) -> None:
    ch = consulting(clock, answered=True)
    ch.on_hook()
    ch.take_actions()
    ch.remote_hangup(16, 0)
    assert ch.state is FxsState.TRANSFERRING
    ch.transfer_result(False)
    assert ch.take_actions() == [ClearCall(16, 1)]
    assert ch.state is FxsState.IDLE


def test_outgoing_first_call_and_incoming_answer_use_slot_0(clock: Clock) -> None:
    ch = FxsChannel("fxs1", "101", DK, DialPlan(["201"]), clock)
    ch.incoming("201")
    ch.off_hook()
    assert ch.take_actions()[-2:] == [AnswerCall(), Media(True, 0)]
    ch = in_call(clock, incoming=False)
    ch.hook_flash()
    assert Hold(0) in ch.take_actions()
