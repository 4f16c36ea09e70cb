"""FXO channel state machine on a fake clock, Danish profile."""

from __future__ import annotations

import numpy as np

from firmware.core.channels import (
    AnswerCall,
    ClearCall,
    FxoChannel,
    FxoState,
    Media,
    PlaceCall,
    Release,
    Seize,
    SendDigits,
)
from firmware.dsp import CallerIdSender, ToneGenerator, load_profile

DK = load_profile("dk")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def feed(ch: FxoChannel, clock: Clock, audio: np.ndarray) -> None:
    for i in range(0, len(audio) - 159, 160):
        ch.audio(audio[i : i + 160])
        clock.now += 0.02


def advance(ch: FxoChannel, clock: Clock, seconds: float) -> None:
    end = clock.now + seconds
    while (d := ch.next_deadline()) is not None and d <= end:
        clock.now = d
        ch.poll()
    clock.now = end


def test_incoming_dtmf_clip_then_ring_routes_with_the_caller_number() -> None:
    clock = Clock()
    ch = FxoChannel("fxo1", "101", DK, clock)
    clip = CallerIdSender("dtmf").generate("4512345678")
    feed(ch, clock, np.concatenate([clip, np.zeros(800, dtype=np.int16)]))
    assert ch.take_actions() == []
    ch.ring_start()
    assert ch.take_actions() == [PlaceCall("101", "4512345678")]
    assert ch.state is FxoState.OFFERED
    ch.ring_start()  # further rings do not offer again
    assert ch.take_actions() == []
    ch.remote_answered()
    assert ch.take_actions() == [Seize(), Media(True)]
    ch.disconnect()  # the caller hung up: loop current gone
    assert ch.take_actions() == [Media(False), Release(), ClearCall(16)]
    assert ch.state is FxoState.IDLE and ch.caller is None


def test_ring_without_caller_id_is_anonymous_and_caller_giving_up_cancels() -> None:
    clock = Clock()
    ch = FxoChannel("fxo1", "201", DK, clock)
    ch.ring_start()
    assert ch.take_actions() == [PlaceCall("201", None)]
    ch.ringing_ended()
    assert ch.take_actions() == [ClearCall(16)]
    assert ch.state is FxoState.IDLE


def test_sip_hangup_releases_the_line() -> None:
    clock = Clock()
    ch = FxoChannel("fxo1", "101", DK, clock)
    ch.ring_start()
    ch.remote_answered()
    ch.take_actions()
    ch.remote_hangup(16)
    assert ch.take_actions() == [Media(False), Release()]
    assert ch.state is FxoState.IDLE


def test_unanswered_offer_is_not_repeated_while_the_line_still_rings() -> None:
    clock = Clock()
    ch = FxoChannel("fxo1", "101", DK, clock)
    ch.ring_start()
    ch.take_actions()
    ch.remote_failed(17)
    ch.ring_start()
    assert ch.take_actions() == []
    ch.ringing_ended()
    assert ch.state is FxoState.IDLE
    ch.ring_start()  # a new call offers again
    assert ch.take_actions() == [PlaceCall("101", None)]


def test_outgoing_seize_dial_and_answer_by_polarity_reversal() -> None:
    clock = Clock()
    ch = FxoChannel("fxo1", "101", DK, clock, answer_supervision=True)
    assert ch.outgoing("88888888")
    assert ch.take_actions() == [Seize()]
    assert not ch.outgoing("1")
    advance(ch, clock, 1.0)
    assert ch.take_actions() == [SendDigits("88888888")]
    advance(ch, clock, 2.0)
    assert ch.state is FxoState.WAIT_ANSWER
    ch.polarity_reversal(True)
    assert ch.take_actions() == [AnswerCall(), Media(True)]
    ch.polarity_reversal(False)  # far end cleared
    assert ch.take_actions() == [Media(False), Release(), ClearCall(16)]


def test_outgoing_without_supervision_answers_when_digits_are_out() -> None:
    clock = Clock()
    ch = FxoChannel("fxo1", "101", DK, clock)
    ch.outgoing("123")
    advance(ch, clock, 1.0 + 3 * 0.16)
    assert ch.take_actions() == [Seize(), SendDigits("123"), AnswerCall(), Media(True)]


def test_busy_tone_on_the_line_clears_the_call() -> None:
    clock = Clock()
    ch = FxoChannel("fxo1", "101", DK, clock)
    ch.outgoing("123")
    advance(ch, clock, 2.0)
    ch.take_actions()
    with ToneGenerator(DK.tone("busy")) as gen:
        for _ in range(200):
            ch.audio(gen.read())
            clock.now += 0.02
            if ch.state is FxoState.IDLE:
                break
    assert ch.take_actions() == [Media(False), Release(), ClearCall(17)]


def test_no_answer_with_supervision_times_out() -> None:
    clock = Clock()
    ch = FxoChannel("fxo1", "101", DK, clock, answer_supervision=True, answer_timeout_s=30)
    ch.outgoing("123")
    advance(ch, clock, 40.0)
    assert ch.take_actions()[-3:] == [Media(False), Release(), ClearCall(19)]


def test_bad_number_is_refused() -> None:
    ch = FxoChannel("fxo1", "101", DK, Clock())
    try:
        ch.outgoing("12x")
    except ValueError as exc:
        assert "12x" in str(exc)
    else:
        raise AssertionError("a non-DTMF number was accepted")
