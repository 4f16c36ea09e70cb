"""FXS channel state machine on a fake clock, Danish profile."""

from __future__ import annotations

import pytest

from firmware.core.channels import (
    AnswerCall,
    ClearCall,
    FxsChannel,
    FxsState,
    Media,
    OffHookWarning,
    PlaceCall,
    PlayTone,
    SendCallerId,
    StartRing,
    StopRing,
)
from firmware.core.dialplan import DialPlan
from firmware.dsp import DtmfSender, load_profile

DK = load_profile("dk")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def channel(clock: Clock, extensions: tuple[str, ...] = ("101", "201", "20", "2011")) -> FxsChannel:
    return FxsChannel("fxs1", "101", DK, DialPlan(extensions), clock)


def advance(ch: FxsChannel, clock: Clock, seconds: float) -> None:
    end = clock.now + seconds
    while (d := ch.next_deadline()) is not None and d <= end:
        clock.now = d
        ch.poll()
    clock.now = end


def test_off_hook_dial_tone_then_exact_match_places_the_call(clock: Clock) -> None:
    ch = channel(clock, ("101", "201"))
    ch.off_hook()
    assert ch.take_actions() == [PlayTone("dial")]
    ch.digit("2")
    assert ch.take_actions() == [PlayTone(None)]
    assert ch.state is FxsState.COLLECTING
    ch.digit("0")
    ch.digit("1")
    assert ch.take_actions() == [PlaceCall("201", "101")]
    ch.remote_ringing()
    assert ch.take_actions() == [PlayTone("ringback")]
    ch.remote_answered()
    assert ch.take_actions() == [PlayTone(None), Media(True)]
    assert ch.state is FxsState.CONNECTED
    ch.on_hook()
    assert ch.take_actions() == [ClearCall(16), Media(False), PlayTone(None)]
    assert ch.state is FxsState.IDLE


def test_dtmf_audio_is_collected_from_the_port(clock: Clock) -> None:
    ch = channel(clock, ("101", "201"))
    ch.off_hook()
    with DtmfSender(level_dbm0=-11, twist_db=2) as tx:
        audio = tx.generate("201")
    for i in range(0, len(audio), 160):
        frame = audio[i : i + 160]
        if len(frame) == 160:
            ch.audio(frame)
        clock.now += 0.02
    assert PlaceCall("201", "101") in ch.take_actions()


def test_prefix_waits_inter_digit_timeout_then_dials_candidate(clock: Clock) -> None:
    ch = channel(clock)
    ch.off_hook()
    ch.digit("2")
    ch.digit("0")
    ch.take_actions()
    advance(ch, clock, 3.9)
    assert ch.state is FxsState.COLLECTING
    advance(ch, clock, 0.2)
    assert ch.take_actions() == [PlaceCall("20", "101")]


def test_unknown_number_plays_special_information_then_warning(clock: Clock) -> None:
    ch = channel(clock, ("101", "201"))
    ch.off_hook()
    ch.take_actions()
    ch.digit("9")
    assert ch.take_actions() == [PlayTone(None), PlayTone("special_information")]
    assert ch.state is FxsState.FAILED and ch.cause == 1
    advance(ch, clock, 30.0)
    assert ch.take_actions() == [PlayTone(None), OffHookWarning()]
    assert ch.state is FxsState.WARNING


def test_no_first_digit_gives_congestion(clock: Clock) -> None:
    ch = channel(clock)
    ch.off_hook()
    ch.take_actions()
    advance(ch, clock, 10.0)
    assert ch.take_actions() == [PlayTone("congestion")]
    assert ch.cause == 102


@pytest.mark.parametrize(
    ("cause", "tone"), [(17, "busy"), (34, "congestion"), (1, "special_information")]
)
def test_failure_cause_picks_the_tone(clock: Clock, cause: int, tone: str) -> None:
    ch = channel(clock, ("101", "201"))
    ch.off_hook()
    for d in "201":
        ch.digit(d)
    ch.take_actions()
    ch.remote_failed(cause)
    assert ch.take_actions() == [Media(False), PlayTone(tone)]
    assert ch.state is FxsState.FAILED


def test_far_end_hangup_gives_busy_then_off_hook_warning(clock: Clock) -> None:
    ch = channel(clock, ("101", "201"))
    ch.off_hook()
    for d in "201":
        ch.digit(d)
    ch.remote_answered()
    ch.take_actions()
    ch.remote_hangup(16)
    assert ch.take_actions() == [Media(False), PlayTone("busy")]
    advance(ch, clock, 29.0)
    assert ch.take_actions() == []
    advance(ch, clock, 1.0)
    assert ch.take_actions() == [PlayTone(None), OffHookWarning()]
    ch.on_hook()
    assert ch.state is FxsState.IDLE


def test_incoming_danish_caller_id_before_first_ring_then_answer(clock: Clock) -> None:
    ch = channel(clock)
    assert ch.incoming("4512345678")
    assert ch.take_actions() == [SendCallerId("4512345678")]
    assert ch.state is FxsState.CALLER_ID
    clock.now += 1.7
    ch.caller_id_sent()
    advance(ch, clock, 0.29)
    assert ch.take_actions() == []
    advance(ch, clock, 0.02)
    assert ch.take_actions() == [StartRing((1000.0, 4000.0))]
    assert not ch.incoming("999")  # busy
    ch.off_hook()
    assert ch.take_actions() == [StopRing(), AnswerCall(), Media(True)]
    ch.remote_hangup()
    assert ch.take_actions() == [Media(False), PlayTone("busy")]


def test_incoming_without_caller_id_rings_at_once_and_cancel_stops_it(clock: Clock) -> None:
    ch = channel(clock)
    ch.incoming(None)
    assert ch.take_actions() == [StartRing((1000.0, 4000.0))]
    ch.remote_hangup(16)
    assert ch.take_actions() == [StopRing()]
    assert ch.state is FxsState.IDLE


def test_caller_id_after_first_ring_for_fsk_profiles(clock: Clock) -> None:
    gb = load_profile("gb")
    ch = FxsChannel("fxs1", "101", gb, DialPlan(["101"]), clock)
    ch.incoming("01234567")
    actions = ch.take_actions()
    if gb.caller_id.timing == "before_first_ring":
        assert actions == [SendCallerId("01234567")]
    else:
        assert isinstance(actions[0], StartRing)
        advance(ch, clock, 10.0)
        assert ch.take_actions() == [SendCallerId("01234567")]


def test_hanging_up_while_calling_clears_the_call(clock: Clock) -> None:
    ch = channel(clock, ("101", "201"))
    ch.off_hook()
    for d in "201":
        ch.digit(d)
    ch.take_actions()
    ch.on_hook()
    assert ch.take_actions() == [ClearCall(16), PlayTone(None)]
