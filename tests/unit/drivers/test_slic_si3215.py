"""FXS driver against the Si3215 model, Danish timing, on a fake clock."""

from __future__ import annotations

import errno
import itertools
from collections.abc import Iterator

import pytest
from unit.drivers.analog_rig import TICK, AnalogRig, events_of

from board.sim.analog_line import Feed
from drivers.analog_events import HookFlash, OffHook, OnHook, run_steps
from drivers.line_timing import FxsTiming
from drivers.slic_si3215 import SlicError, SlicSi3215

DK = FxsTiming()  # Danish defaults: 20 ms debounce, flash 80-300 ms, ring 1 s / 4 s


@pytest.fixture
def rig() -> Iterator[AnalogRig]:
    r = AnalogRig()
    try:
        yield r
    finally:
        r.close()


def kinds(events: list) -> list[str]:
    return [type(e).__name__ for _, e in events]


def test_init_calibrates_powers_up_and_idles_forward_active(rig: AnalogRig) -> None:
    driver, model, line, port = rig.fxs()
    assert driver.ready and model.calibrated
    assert line.feed is Feed.ACTIVE and not line.reversed
    assert model.regs[69] == 16  # LCDI = 20 ms / 1.25 ms
    assert model.tx_slot == 0 and model.rx_slot == 0
    assert abs(line.ring_frequency_hz - DK.ring_frequency_hz) < 0.1
    assert port.events == []


def test_wrong_chip_is_a_clear_error(rig: AnalogRig) -> None:
    dev = rig.spi0.open(5)  # nothing on this chip select: MISO floats high
    driver = SlicSi3215(dev, rig.clock, port="fxs6")
    with pytest.raises(SlicError) as exc:
        run_steps(driver.init_steps(), rig.sleep)
    assert exc.value.register == 0 and exc.value.value == 0xFF
    assert exc.value.errno == errno.ENODEV


def test_not_a_si3215_is_rejected(rig: AnalogRig) -> None:
    _, model, _, port = rig.fxs(start=False)
    model.regs[1] = 0x08  # a Si3210 reads bit 7 clear
    original = model.write

    def keep_si3210(reg: int, value: int, now: float) -> None:
        original(reg, value, now)
        model.regs[1] &= 0x7F

    model.write = keep_si3210  # type: ignore[method-assign]
    model.regs[1] &= 0x7F
    with pytest.raises(SlicError) as exc:
        run_steps(port.driver.init_steps(), rig.sleep)
    assert exc.value.register == 1


def test_calibration_without_battery_times_out(rig: AnalogRig) -> None:
    _, model, _, port = rig.fxs(start=False)
    original = model.write

    def no_dcdc(reg: int, value: int, now: float) -> None:
        original(reg, value | 0x10 if reg == 14 else value, now)

    model.write = no_dcdc  # type: ignore[method-assign]
    with pytest.raises(SlicError) as exc:
        run_steps(port.driver.init_steps(), rig.sleep)
    assert exc.value.register == 82 and exc.value.errno == errno.ETIMEDOUT


def test_hook_bounces_shorter_than_debounce_are_ignored(rig: AnalogRig) -> None:
    _, _, line, port = rig.fxs()
    for _ in range(5):
        line.set_hook(True)
        rig.run(0.012)  # 12 ms closed: under the 20 ms debounce
        line.set_hook(False)
        rig.run(0.1)
    assert port.events == []
    line.set_hook(True)
    t0 = rig.clock.now
    rig.run(0.1)
    offs = list(events_of(port, OffHook))
    assert len(offs) == 1
    assert offs[0][0] - t0 <= DK.debounce_ms / 1000 + TICK + 1e-6


@pytest.mark.parametrize(
    ("break_ms", "expected"),
    [(50, []), (150, ["HookFlash"]), (280, ["HookFlash"]), (500, ["OnHook", "OffHook"])],
)
def test_flash_window(rig: AnalogRig, break_ms: int, expected: list[str]) -> None:
    _, _, line, port = rig.fxs()
    line.set_hook(True)
    rig.run(1.0)
    port.events.clear()
    line.flash(break_ms / 1000)
    rig.run(2.0)
    assert kinds(port.events) == expected
    for _, event in events_of(port, HookFlash):
        assert isinstance(event, HookFlash)
        assert abs(event.duration_ms - break_ms) <= TICK * 1000 + 1


def test_hangup_is_reported_after_flash_max_dated_at_the_break(rig: AnalogRig) -> None:
    _, _, line, port = rig.fxs()
    line.set_hook(True)
    rig.run(0.5)
    line.set_hook(False)
    t_down = rig.clock.now
    rig.run(1.0)
    ((t_seen, event),) = events_of(port, OnHook)
    assert isinstance(event, OnHook)
    assert abs(event.at - t_down) <= TICK + 0.03
    assert DK.flash_max_ms / 1000 <= t_seen - t_down <= DK.flash_max_ms / 1000 + 2 * TICK + 0.03


def test_ring_cadence_danish_on_the_chip_timers(rig: AnalogRig) -> None:
    driver, _, line, _ = rig.fxs()
    t0 = rig.clock.now
    driver.ring()
    rig.run(15.5)
    periods = [(a, b) for a, b in line.ring_periods(since=t0) if b is not None]
    assert len(periods) == 3
    for (start, end), (next_start, _) in itertools.pairwise(periods):
        assert abs((end - start) - 1.0) <= TICK
        assert abs((next_start - end) - 4.0) <= TICK
    assert line.ring_voltage_vpk > 60
    driver.stop_ring()
    rig.run(0.1)
    assert line.feed is Feed.ACTIVE


def test_uk_style_double_ring_runs_in_software(rig: AnalogRig) -> None:
    driver, _, line, _ = rig.fxs()
    t0 = rig.clock.now
    driver.ring([400, 200, 400, 2000])
    rig.run(6.05)
    periods = [(a, b) for a, b in line.ring_periods(since=t0) if b is not None]
    ons = [round((b - a) * 1000) for a, b in periods]
    gaps = [round((periods[i + 1][0] - periods[i][1]) * 1000) for i in range(len(periods) - 1)]
    assert len(ons) == 4 and all(abs(on - 400) <= 20 for on in ons)
    assert [abs(g - want) <= 20 for g, want in zip(gaps, [200, 2000, 200], strict=True)] == [
        True
    ] * 3


def test_answer_during_ring_burst_trips_ring_and_reports_off_hook(rig: AnalogRig) -> None:
    driver, _model, line, port = rig.fxs()
    driver.ring()
    rig.run(0.5)
    assert line.ringing
    line.set_hook(True)
    rig.run(0.2)
    assert not line.ringing and line.feed is Feed.ACTIVE
    assert kinds(port.events) == ["OffHook"]
    assert not driver.ringing
    rig.run(10)  # no further ring bursts
    assert not line.ringing


def test_answer_between_bursts(rig: AnalogRig) -> None:
    driver, _, line, port = rig.fxs()
    driver.ring()
    rig.run(2.0)  # in the 4 s pause: on-hook transmission
    assert line.feed is Feed.ONHOOK_TX
    line.set_hook(True)
    rig.run(0.1)
    assert kinds(port.events) == ["OffHook"] and line.feed is Feed.ACTIVE
    rig.run(5)
    assert not line.ringing


def test_cannot_ring_an_off_hook_phone(rig: AnalogRig) -> None:
    driver, _, line, _ = rig.fxs()
    line.set_hook(True)
    rig.run(0.1)
    with pytest.raises(SlicError) as exc:
        driver.ring()
    assert exc.value.errno == errno.EBUSY


def test_polarity_reversal_both_directions(rig: AnalogRig) -> None:
    driver, _, line, port = rig.fxs()
    line.set_hook(True)
    rig.run(0.1)
    driver.set_polarity(True)
    rig.run(0.04)
    assert line.reversed and line.feed is Feed.ACTIVE
    driver.set_polarity(False)
    rig.run(0.04)
    assert not line.reversed
    assert kinds(port.events) == ["OffHook"]  # a reversal is not a hook event
    changes = [c for c in line.feed_log if c.feed is Feed.ACTIVE]
    assert [c.reversed for c in changes[-3:]] == [False, True, False]


def test_onhook_transmission_passes_audio_while_on_hook(rig: AnalogRig) -> None:
    driver, _, line, _ = rig.fxs(timeslot=3)
    frame = bytes(range(160))
    rig.highway.firmware.write(3, frame)
    rig.run(TICK)
    assert line.to_phone.last == frame  # forward active passes audio too
    driver.set_onhook_transmission(True)
    rig.run(TICK)
    assert line.feed is Feed.ONHOOK_TX
    rig.highway.firmware.write(3, frame[::-1])
    rig.run(TICK)
    assert line.to_phone.last == frame[::-1]
    driver.set_open_loop(True)
    rig.highway.firmware.write(3, frame)
    rig.run(TICK)
    assert line.feed is Feed.OPEN and line.to_phone.last != frame


def test_timeslot_assignment_moves_audio(rig: AnalogRig) -> None:
    driver, _, line, _ = rig.fxs(timeslot=0)
    line.set_hook(True)
    rig.run(0.1)
    driver.assign_timeslot(5)
    voice = bytes([0x2A]) * 160
    for _ in range(3):
        line.from_phone.put(voice)
        rig.highway.firmware.write(5, bytes([0x55]) * 160)
        rig.run(TICK)
    assert rig.highway.firmware.read(5) == voice
    assert rig.highway.firmware.read(0) != voice
    assert line.to_phone.last == bytes([0x55]) * 160
    with pytest.raises(ValueError):
        driver.assign_timeslot(128)


def test_bad_timing_is_rejected() -> None:
    with pytest.raises(ValueError):
        FxsTiming(flash_min_ms=10)  # below the debounce
    with pytest.raises(ValueError):
        FxsTiming(ring_cadence_ms=(1000.0,))
    with pytest.raises(ValueError):
        FxsTiming(debounce_ms=400)
