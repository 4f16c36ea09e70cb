"""Si3215 model at register level: SPI framing, identity, indirect access, IRQ, audio per state."""

from __future__ import annotations

import pytest

from board.sim.analog_line import IDLE_FRAME, Feed, FxsLine
from board.sim.gpio import SimGpioChip
from board.sim.pcm import PcmHighway
from board.sim.si3215 import Si3215
from board.sim.spi import SimSpiBus


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class Bench:
    def __init__(self) -> None:
        self.clock = Clock()
        self.gpio = SimGpioChip(16)
        self.highway = PcmHighway(8)
        self.line = FxsLine(self.clock)
        self.chip = Si3215(
            self.line, self.clock, highway=self.highway, gpio=self.gpio, irq_line=0, reset_line=8
        )
        self.bus = SimSpiBus("spi0")
        self.bus.attach(0, self.chip)
        self.dev = self.bus.open(0)

    def rd(self, reg: int) -> int:
        assert self.dev.transfer(bytes([0x80 | reg])) == b"\xff"
        return self.dev.transfer(b"\x00")[0]

    def wr(self, reg: int, value: int) -> None:
        self.dev.transfer(bytes([reg]))
        self.dev.transfer(bytes([value]))

    def run(self, seconds: float) -> None:
        end = self.clock.now + seconds
        while self.clock.now + 0.02 <= end + 1e-9:
            self.clock.now += 0.02
            self.highway.tick()
        self.clock.now = end

    def bring_up(self) -> None:
        self.wr(14, 0x00)
        self.run(0.12)
        self.wr(96, 0x5F)
        self.run(0.1)


def test_identity_and_reset_values() -> None:
    b = Bench()
    assert b.rd(0) == 0x05 and b.rd(1) == 0x88 and b.rd(8) == 0x02 and b.rd(11) == 0x33
    b.wr(0, 0x3F)  # read-only
    b.wr(1, 0x20)  # bit 7 stays: it marks a Si3215
    assert b.rd(0) == 0x05 and b.rd(1) == 0xA0
    b.wr(8, 0)
    assert b.rd(8) == 0


def test_multi_byte_transfer_is_a_framing_error() -> None:
    b = Bench()
    assert b.dev.transfer(b"\x80\x00") == b"\xff\xff"
    assert b.chip.framing.errors == 1
    assert b.rd(11) == 0x33  # the next single-byte access is framed afresh


def test_reset_line_restores_defaults_and_floats_miso() -> None:
    b = Bench()
    b.wr(8, 0x00)
    reset = b.gpio.open(8, "low")
    assert b.dev.transfer(b"\x88") == b"\xff" and b.dev.transfer(b"\x00") == b"\xff"
    reset.write(True)
    assert b.rd(8) == 0x02
    reset.close()


def test_indirect_registers_write_then_read_with_busy_flag() -> None:
    b = Bench()
    b.wr(28, 0x34)
    b.wr(29, 0x12)
    b.wr(30, 7)  # data written first: an indirect write
    assert b.rd(31) == 1 and b.rd(31) == 0  # busy, then done
    b.wr(28, 0)
    b.wr(30, 7)  # no data written: an indirect read
    assert b.rd(28) == 0x34 and b.rd(29) == 0x12
    assert b.chip.indirect[7] == 0x1234


def test_linefeed_drives_nothing_until_powered_and_calibrated() -> None:
    b = Bench()
    b.wr(64, 1)
    b.run(0.05)
    assert b.rd(64) == 0x01 and b.line.feed is Feed.OPEN  # applied state (bits 6:4) open
    b.wr(96, 0x5F)  # calibration without battery never completes
    b.run(0.5)
    assert b.rd(96) == 0x5F
    b.wr(14, 0)
    b.run(0.05)
    assert 0 < b.rd(82) < 0xC0  # battery ramping
    b.run(0.1)
    assert b.rd(82) >= 0xC0
    b.wr(96, 0x5F)
    b.run(0.1)
    assert b.rd(96) == 0 and b.rd(64) == 0x11 and b.line.feed is Feed.ACTIVE


def test_loop_closure_debounce_status_and_irq_line() -> None:
    b = Bench()
    b.bring_up()
    b.wr(64, 1)
    b.wr(69, 16)  # 20 ms
    b.wr(22, 0x02)  # loop closure interrupt enabled
    assert b.gpio.level(0) is True  # INT idles high
    b.line.set_hook(True)
    b.run(0.01)
    b.line.set_hook(False)  # 10 ms bounce
    b.run(0.1)
    assert b.rd(68) & 1 == 0 and b.rd(19) == 0 and b.gpio.level(0) is True
    b.line.set_hook(True)
    b.run(0.04)
    assert b.rd(68) & 1 and b.rd(19) & 0x02
    assert b.gpio.level(0) is False  # INT pulled low
    b.wr(19, 0x02)  # write 1 to clear
    assert b.rd(19) == 0 and b.gpio.level(0) is True


def test_ring_timers_alternate_ringing_and_onhook_transmission() -> None:
    b = Bench()
    b.bring_up()
    on, off = 8000, 32000  # 1 s, 4 s in 125 us units
    for reg, value in ((48, on & 0xFF), (49, on >> 8), (50, off & 0xFF), (51, off >> 8)):
        b.wr(reg, value)
    b.wr(34, 0x18)
    start = b.clock.now
    b.wr(64, 4)
    b.run(11)
    periods = b.line.ring_periods(since=start)
    assert [round(e - s, 3) for s, e in periods if e is not None] == [1.0, 1.0, 1.0]
    assert round(periods[1][0] - start, 3) == 5.0
    assert b.rd(18) & 0x30 == 0x30  # active and inactive timer expiries


def test_audio_passes_only_in_active_and_onhook_transmission() -> None:
    b = Bench()
    b.bring_up()
    b.wr(2, 24)  # transmit on slot 3
    b.wr(4, 24)  # receive on slot 3
    b.wr(1, 0x20)  # PCM on, A-law
    frame = bytes(range(160))
    for code, passes in ((1, True), (2, True), (5, True), (6, True), (0, False), (4, False)):
        b.wr(64, code)
        b.highway.firmware.write(3, frame)
        b.line.from_phone.put(frame[::-1])
        b.run(0.02)  # the firmware's frame reaches the chip and the phone
        assert (b.line.to_phone.last == frame) is passes, code
        if not passes:
            assert b.line.to_phone.last == IDLE_FRAME
        b.run(0.02)  # the phone's frame, taken last tick, reaches the firmware
        assert (b.highway.firmware.read(3) == frame[::-1]) is passes, code
    b.wr(2, 25)  # not a multiple of 8: no valid slot
    b.wr(64, 1)
    b.run(0.04)
    assert b.chip.pcm_errors > 0


def test_idle_ticks_do_no_chip_work_yet_miss_no_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing due, a PCM tick only carries audio; a hook change scheduled meanwhile,
    a reset pulse and an SPI write are still seen, each at its tick (no SPI polling here)."""
    b = Bench()
    b.bring_up()
    b.wr(64, 1)
    b.wr(22, 0x02)  # loop closure interrupt enabled
    b.run(0.1)
    evaluated: list[float] = []
    evaluate = Si3215._evaluate

    def counting(chip: Si3215, t: float) -> None:
        evaluated.append(t)
        evaluate(chip, t)

    monkeypatch.setattr(Si3215, "_evaluate", counting)
    b.run(2.0)
    assert evaluated == []  # idle: no state machine ran
    lift = b.clock.now + 0.5
    b.line.set_hook(True, at=lift)  # scheduled while idle
    b.run(0.5 + 0.0125 - 0.001)  # just short of the 12.5 ms debounce
    assert b.gpio.level(0) is True
    b.run(0.02)
    assert b.gpio.level(0) is False and lift in evaluated  # INT low, from the exact time
    b.wr(19, 0x02)
    assert b.gpio.level(0) is True and b.line.feed is Feed.ACTIVE
    b.run(0.1)
    reset = b.gpio.open(8, "low")
    b.run(0.02)
    assert b.line.feed is Feed.OPEN  # held in reset: the line goes dead at the next tick
    reset.write(True)
    b.run(0.02)
    assert b.chip.regs[64] == 0 and not b.chip.calibrated  # out of reset: reset values
    reset.close()
