"""PstnLine on a Si3050 model driven by the real FXO driver, fake clock, Danish profile."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from unit.devices.bench import dominant_hz, run_with_audio
from unit.drivers.analog_rig import AnalogRig, events_of

from board.sim.devices.pstn_line import LineError, LineState, PstnLine
from drivers.analog_events import Disconnect, PolarityReversal, RingStart, RingStop
from firmware.dsp import CallerIdReceiver, DtmfSender, ToneDetector, load_profile

DK = load_profile("dk")
SLOT = 8


@pytest.fixture
def rig() -> Iterator[AnalogRig]:
    r = AnalogRig()
    try:
        yield r
    finally:
        r.close()


def test_ring_sends_dtmf_clip_before_the_first_ring_then_the_danish_cadence(
    rig: AnalogRig,
) -> None:
    driver, _, line, port = rig.fxo()
    pstn = PstnLine(line, DK)
    driver.set_caller_id_capture(True)
    start = rig.clock()
    first = pstn.ring("4512345678")
    audio = run_with_audio(rig, SLOT, first - start + 0.1)
    with CallerIdReceiver("dtmf") as rx:
        assert [c.number for c in rx.feed(audio)] == ["4512345678"]
    assert first - start > 1.0  # 12 DTMF symbols of 140 ms, then 300 ms
    rig.run(11.0)
    starts = [t for t, _ in events_of(port, RingStart)]
    stops = [e for _, e in events_of(port, RingStop)]
    assert len(starts) >= 2 and abs((starts[1] - starts[0]) - 5.0) < 0.1
    assert all(isinstance(e, RingStop) and 900 <= e.duration_ms <= 1150 for e in stops)
    with pytest.raises(LineError):
        pstn.ring("1")


def test_seizing_answers_and_stops_ringing(rig: AnalogRig) -> None:
    driver, _, line, port = rig.fxo()
    pstn = PstnLine(line, DK)
    pstn.ring("12345678")
    rig.run(2.5)
    driver.seize()
    rig.run(0.1)
    assert pstn.state is LineState.CONNECTED
    ring_starts = len(list(events_of(port, RingStart)))
    rig.run(12.0)
    assert len(list(events_of(port, RingStart))) == ring_starts
    assert not line.ring.value_at(rig.clock())


def test_outgoing_dial_tone_digits_answer_reversal_and_loop_break(rig: AnalogRig) -> None:
    driver, _, line, port = rig.fxo()
    pstn = PstnLine(line, DK)
    driver.seize()
    heard = run_with_audio(rig, SLOT, 2.0)
    assert pstn.state is LineState.DIALLING
    with ToneDetector(DK) as det:
        det.feed(heard)
        assert det.current == "dial"
    assert abs(dominant_hz(heard[4000:]) - 425) < 5
    with DtmfSender(level_dbm0=-11) as tx:
        run_with_audio(rig, SLOT, 1.5, send=tx.generate("88888888"))
    assert pstn.digits == "88888888"
    pstn.answer()
    rig.run(0.3)
    reversals = [e for _, e in events_of(port, PolarityReversal)]
    assert reversals and isinstance(reversals[-1], PolarityReversal) and reversals[-1].reversed
    pstn.hang_up()
    rig.run(1.5)
    assert list(events_of(port, Disconnect))
    driver.release()
    rig.run(0.2)
    assert pstn.state is LineState.IDLE


def test_busy_disconnect_plays_busy_tone_without_loop_break(rig: AnalogRig) -> None:
    driver, _, line, port = rig.fxo()
    pstn = PstnLine(line, DK, disconnect="busy", reverse_on_answer=False)
    driver.seize()
    rig.run(0.5)
    pstn.answer()
    pstn.hang_up()
    heard = run_with_audio(rig, SLOT, 3.0)
    with ToneDetector(DK) as det:
        det.feed(heard)
        assert det.current == "busy"
    assert not list(events_of(port, Disconnect))
    assert not list(events_of(port, PolarityReversal))


def test_answer_without_a_call_is_refused(rig: AnalogRig) -> None:
    _, _, line, _ = rig.fxo()
    pstn = PstnLine(line, DK)
    with pytest.raises(LineError):
        pstn.answer()
    with pytest.raises(LineError):
        pstn.ring("45x")
