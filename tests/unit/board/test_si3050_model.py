"""Si3050 model at register level: 3-byte framing, link-up, ring validation, LVS/POLI, DOD, audio."""

from __future__ import annotations

import pytest

from board.sim.analog_line import IDLE_FRAME, FxoLine
from board.sim.gpio import SimGpioChip
from board.sim.pcm import PcmHighway
from board.sim.si3050 import Si3050
from board.sim.spi import SimSpiBus


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


class Bench:
    def __init__(self) -> None:
        self.clock = Clock()
        self.gpio = SimGpioChip(32)
        self.highway = PcmHighway(16)
        self.line = FxoLine(self.clock)
        self.chip = Si3050(
            self.line, self.clock, highway=self.highway, gpio=self.gpio, irq_line=16, reset_line=20
        )
        self.bus = SimSpiBus("spi1")
        self.bus.attach(0, self.chip)
        self.dev = self.bus.open(0)

    def rd(self, reg: int) -> int:
        self.dev.transfer(b"\x60")
        self.dev.transfer(bytes([reg]))
        return self.dev.transfer(b"\x00")[0]

    def wr(self, reg: int, value: int) -> None:
        self.dev.transfer(b"\x20")
        self.dev.transfer(bytes([reg]))
        self.dev.transfer(bytes([value]))

    def run(self, seconds: float) -> None:
        end = self.clock.now + seconds
        while self.clock.now + 0.02 <= end + 1e-9:
            self.clock.now += 0.02
            self.highway.tick()
        self.clock.now = end

    def link(self) -> None:
        self.wr(6, 0x00)
        self.run(0.04)


def lvs(raw: int) -> int:
    return raw - 256 if raw & 0x80 else raw


def test_framing_identity_and_link_up() -> None:
    b = Bench()
    assert b.rd(2) == 0x03 and b.rd(11) == 0x03 and b.rd(12) & 0x40 == 0
    assert b.dev.transfer(b"\x00") == b"\xff"  # no REGS bit: not a control byte
    assert b.chip.framing_errors == 1
    assert b.dev.transfer(b"\x60\x02\x00") == b"\xff\xff\xff"
    assert b.chip.framing_errors == 2
    b.link()
    assert b.rd(11) == 0x13 and b.rd(12) & 0x40 and b.rd(13) >> 2 & 0xF == 2
    b.wr(2, 0x87)
    b.wr(1, 0x80)  # soft reset
    assert b.rd(2) == 0x03 and b.rd(11) == 0x03


def test_off_hook_only_with_the_link_up() -> None:
    b = Bench()
    b.wr(5, 0x01)
    b.run(0.04)
    assert not b.line.daa_off_hook
    b.link()
    assert b.line.daa_off_hook and b.rd(28) == int(28 / 1.1) and b.rd(12) & 0x1F == int(28 / 3.3)
    assert lvs(b.rd(29)) == 8


def test_ring_validation_counts_from_rcc_and_times_out_after_rto() -> None:
    b = Bench()
    b.link()
    b.wr(23, (1 << 3) | 4)  # RTO 128 ms, RCC 384 ms
    b.wr(24, 0x80 | 17)  # RNGV, RAS 34 ms: >= 14.7 Hz
    b.wr(22, 13)  # RMX: <= 83 Hz
    b.wr(2, 0x80 | 0x04 | 0x03)  # INTE, RDI
    b.wr(3, 0x80)
    b.line.ring_burst(0.3)  # too short
    b.run(1.0)
    assert b.rd(4) == 0 and b.gpio.level(16) is True
    b.line.ring_burst(1.0)
    b.run(0.37)
    assert b.rd(5) & 0x04 == 0 and b.rd(5) & 0x60 == 0x60  # raw ring seen, not yet valid
    b.run(0.04)
    assert b.rd(5) & 0x04 and b.rd(4) & 0x80 and b.gpio.level(16) is False
    b.wr(4, 0x00)
    assert b.gpio.level(16) is True
    b.run(0.59 + 0.1)  # ring stopped at 1.0 s, RTO 128 ms later RDT falls
    assert b.rd(5) & 0x04
    b.run(0.06)
    assert b.rd(5) & 0x04 == 0 and b.rd(4) & 0x80  # end-of-ring interrupt (RDI)


def test_without_validation_rdt_follows_the_raw_ring() -> None:
    b = Bench()
    b.link()
    b.line.ring_burst(0.1)
    b.run(0.02)
    assert b.rd(5) & 0x04
    b.run(0.1)
    assert b.rd(5) & 0x04 == 0


def test_line_voltage_sign_and_polarity_interrupt() -> None:
    b = Bench()
    b.link()
    b.wr(3, 0x01)
    b.wr(2, 0x83)
    assert lvs(b.rd(29)) == 48
    b.line.set_polarity(True)
    b.run(0.02)
    assert lvs(b.rd(29)) == -48 and b.rd(4) & 0x01 and b.gpio.level(16) is False
    b.wr(4, 0xFE)  # write 0 to clear POLI
    assert b.rd(4) & 0x01 == 0
    b.wr(2, 0xC3)  # INTP: active high
    b.line.set_polarity(False)
    b.run(0.02)
    assert b.gpio.level(16) is True and b.rd(4) & 0x01
    b.line.set_battery(False)
    b.run(0.02)
    assert b.rd(29) == 0


def test_dropout_detect_while_off_hook() -> None:
    b = Bench()
    b.link()
    b.wr(3, 0x08)
    b.wr(2, 0x83)
    b.wr(5, 0x01)
    b.run(0.02)
    assert b.rd(19) & 0x02 == 0
    b.line.interrupt_loop(0.1)
    b.run(0.04)
    assert b.rd(19) & 0x02 and b.rd(4) & 0x08 and b.rd(28) == 0
    b.run(0.1)
    assert b.rd(19) & 0x02 == 0 and b.rd(28) > 0


def test_audio_on_hook_monitor_and_off_hook() -> None:
    b = Bench()
    b.link()
    b.wr(34, 16)
    b.wr(36, 16)  # slot 2 both ways
    b.wr(33, 0x20)
    up, down = bytes([0x21]) * 160, bytes([0x42]) * 160
    for daa1, listens, talks in ((0x00, False, False), (0x08, True, False), (0x01, True, True)):
        b.wr(5, daa1)
        b.line.from_network.put(up)
        b.highway.firmware.write(2, down)
        b.run(0.02)
        assert (b.line.to_network.last == down) is talks, daa1
        if not talks:
            assert b.line.to_network.last == IDLE_FRAME
        b.run(0.02)
        assert (b.highway.firmware.read(2) == up) is listens, daa1


def test_idle_ticks_do_no_chip_work_yet_see_a_scheduled_ring(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With nothing due, a PCM tick only carries audio; a ring scheduled meanwhile is
    validated and interrupts on time without any SPI access to move the chip along."""
    b = Bench()
    b.link()
    b.wr(23, (1 << 3) | 4)  # RTO 128 ms, RCC 384 ms
    b.wr(24, 0x80 | 17)
    b.wr(22, 13)
    b.wr(2, 0x80 | 0x04 | 0x03)  # INTE, RDI
    b.wr(3, 0x80)
    b.run(0.1)
    evaluated: list[float] = []
    evaluate = Si3050._evaluate

    def counting(chip: Si3050, t: float) -> None:
        evaluated.append(t)
        evaluate(chip, t)

    monkeypatch.setattr(Si3050, "_evaluate", counting)
    b.run(2.0)
    assert evaluated == []  # idle: no state machine ran
    start = b.clock.now + 0.3
    b.line.ring_burst(1.0, at=start)
    b.run(0.3 + 0.384 - 0.001)
    assert b.gpio.level(16) is True
    b.run(0.02)
    assert b.gpio.level(16) is False and start + 0.384 in evaluated  # validated on time
