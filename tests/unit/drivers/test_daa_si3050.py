"""FXO driver against the Si3050 model: ring validation, seize, polarity, disconnect, CID audio."""

from __future__ import annotations

import errno
from collections.abc import Iterator

import pytest
from unit.drivers.analog_rig import TICK, AnalogRig, events_of

from drivers.analog_events import (
    Disconnect,
    LoopCurrentRestored,
    PolarityReversal,
    RingingEnded,
    RingStart,
    RingStop,
    run_steps,
)
from drivers.daa_si3050 import DaaError, DaaSi3050, ring_validation_registers
from drivers.line_timing import FxoTiming

DK = FxoTiming()


@pytest.fixture
def rig() -> Iterator[AnalogRig]:
    r = AnalogRig()
    try:
        yield r
    finally:
        r.close()


def kinds(events: list) -> list[str]:
    return [type(e).__name__ for _, e in events]


def test_init_brings_the_line_side_up(rig: AnalogRig) -> None:
    driver, model, line, port = rig.fxo()
    assert driver.ready and driver.line_side == "Si3018"
    assert driver.battery and not driver.reversed
    assert model.regs[5] & 0x08  # on-hook line monitor on for caller ID
    assert model.tx_slot == 8 and model.rx_slot == 8
    assert not line.daa_off_hook and port.events == []


def test_missing_chip_is_a_clear_error(rig: AnalogRig) -> None:
    driver = DaaSi3050(rig.spi1.open(3), rig.clock, port="fxo4")
    with pytest.raises(DaaError) as exc:
        run_steps(driver.init_steps(), rig.sleep)
    assert exc.value.register == 2 and exc.value.errno == errno.ENODEV


def test_ring_validation_register_values() -> None:
    _reg22, reg23, reg24, rcc = ring_validation_registers(DK)
    assert reg24 & 0x80  # validation on
    assert rcc == 0.384  # largest chip step not above 400 ms
    assert reg23 & 0x07 == 4 and (reg23 >> 3) & 0x0F == 1  # RCC 384 ms, RTO 128 ms


def test_danish_ring_cadence_is_reported(rig: AnalogRig) -> None:
    _, _, line, port = rig.fxo()
    t0 = rig.clock.now
    line.ring_cadence(1.0, 4.0, cycles=3, at=t0)
    rig.run(22)
    assert kinds(port.events) == ["RingStart", "RingStop"] * 3 + ["RingingEnded"]
    starts = [e.at for _, e in events_of(port, RingStart)]  # type: ignore[union-attr]
    for n, at in enumerate(starts):
        assert abs(at - (t0 + 5.0 * n)) <= 2 * TICK
    for seen, event in events_of(port, RingStart):
        assert seen - event.at <= DK.ring_validation_ms / 1000 + TICK + 1e-6
    for _, stop in events_of(port, RingStop):
        assert isinstance(stop, RingStop)
        assert abs(stop.duration_ms - 1000) <= 2 * TICK * 1000
    ((_, ended),) = events_of(port, RingingEnded)
    assert abs(ended.at - (t0 + 11.0)) <= 2 * TICK


@pytest.mark.parametrize("burst_ms", [60, 250, 390])
def test_bursts_shorter_than_validation_are_ignored(rig: AnalogRig, burst_ms: int) -> None:
    _, _, line, port = rig.fxo()
    for n in range(3):
        line.ring_burst(burst_ms / 1000, at=rig.clock.now + n * 1.0)
    rig.run(4)
    assert port.events == []
    line.ring_burst(0.6)
    rig.run(2)
    assert kinds(port.events) == ["RingStart", "RingStop"]


def test_wrong_ring_frequency_is_not_a_ring(rig: AnalogRig) -> None:
    _, _, line, port = rig.fxo()
    line.ring_frequency_hz = 5.0
    line.ring_burst(1.0)
    rig.run(2)
    assert port.events == []


def test_seize_and_release(rig: AnalogRig) -> None:
    driver, model, line, port = rig.fxo()
    line.ring_burst(1.0)
    rig.run(0.6)
    driver.seize()  # answer during the burst
    rig.run(0.5)
    assert line.daa_off_hook and model.regs[28] > 0
    assert kinds(port.events) == ["RingStart", "RingStop"]
    driver.release()
    rig.run(0.1)
    assert not line.daa_off_hook
    assert [c.off_hook for c in line.hook_log] == [True, False]


def test_polarity_reversal_detected_both_directions(rig: AnalogRig) -> None:
    driver, _, line, port = rig.fxo()
    driver.seize()
    rig.run(0.2)
    line.set_polarity(True)  # far end answers
    rig.run(0.3)
    line.set_polarity(False)
    rig.run(0.3)
    reversals = [e for _, e in events_of(port, PolarityReversal)]
    assert [e.reversed for e in reversals] == [True, False]  # type: ignore[union-attr]
    line.set_polarity(True)
    rig.run(0.01)
    line.set_polarity(False)  # a 10 ms glitch is debounced away
    rig.run(0.3)
    assert len(list(events_of(port, PolarityReversal))) == 2


def test_loop_current_drop_short_is_restored_long_is_disconnect(rig: AnalogRig) -> None:
    driver, _, line, port = rig.fxo()
    driver.seize()
    rig.run(0.2)
    line.interrupt_loop(0.2)
    rig.run(1.0)
    assert kinds(port.events) == ["LoopCurrentDrop", "LoopCurrentRestored"]
    ((_, restored),) = events_of(port, LoopCurrentRestored)
    assert abs(restored.duration_ms - 200) <= 2 * TICK * 1000  # type: ignore[union-attr]
    port.events.clear()
    t_drop = rig.clock.now
    line.set_battery(False)
    rig.run(1.0)
    assert kinds(port.events) == ["LoopCurrentDrop", "Disconnect"]
    ((seen, disconnect),) = events_of(port, Disconnect)
    assert disconnect.at - t_drop <= TICK + 1e-6
    assert abs((seen - disconnect.at) - DK.disconnect_ms / 1000) <= 2 * TICK


def test_no_supervision_on_hook(rig: AnalogRig) -> None:
    _, _, line, port = rig.fxo()
    line.set_battery(False)
    rig.run(1.0)
    assert port.events == []


def test_caller_id_audio_reaches_the_timeslot_on_hook(rig: AnalogRig) -> None:
    driver, _, line, _ = rig.fxo(timeslot=9)
    fsk = bytes(range(40, 200))
    line.from_network.put(fsk)
    rig.run(2 * TICK)  # one frame of latency: taken at one tick, carried at the next
    assert rig.highway.firmware.read(9) == fsk
    assert line.to_network.last != bytes([0x11]) * 160
    rig.highway.firmware.write(9, bytes([0x11]) * 160)  # on-hook: nothing goes to the line
    rig.run(TICK)
    assert line.to_network.last != bytes([0x11]) * 160
    driver.set_caller_id_capture(False)
    line.from_network.put(fsk)
    rig.run(2 * TICK)
    assert rig.highway.firmware.read(9) != fsk


def test_timeslot_assignment_moves_audio_off_hook(rig: AnalogRig) -> None:
    driver, _, line, _ = rig.fxo(timeslot=8)
    driver.seize()
    driver.assign_timeslot(11)
    down = bytes([0x33]) * 160
    up = bytes([0x44]) * 160
    for _ in range(3):
        rig.highway.firmware.write(11, down)
        line.from_network.put(up)
        rig.run(TICK)
    assert line.to_network.last == down
    assert rig.highway.firmware.read(11) == up
    assert rig.highway.firmware.read(8) != up


def test_bad_timing_is_rejected() -> None:
    with pytest.raises(ValueError):
        FxoTiming(ring_validation_ms=50)
    with pytest.raises(ValueError):
        FxoTiming(ring_cycle_timeout_ms=100, ring_end_ms=128)
