"""FXO driver for the Si3050 DAA (+ Si3018/19 line side), over periphery-shaped SPI/GPIO.

Sans-I/O like the FXS driver: ``init_steps()`` yields waits, ``handle_interrupt``
serves INT, ``poll`` runs timers, ``take_events`` hands out events.

Ring detection: the chip validates the ring frequency and a minimum burst length
(RCC, the largest of its steps not above ``ring_validation_ms``); the driver checks the
rest of the validation time itself against the raw ring-detect bits, so a burst shorter
than ``ring_validation_ms`` never becomes a ``RingStart``. ``RingStop`` comes when the
chip's ring timeout passes with no ring voltage; ``RingingEnded`` when no burst follows
within ``ring_cycle_timeout_ms``. While seized, a loop-current dropout (DOD) longer than
``disconnect_ms`` is a ``Disconnect``. The on-hook line monitor stays on while idle so
caller ID sent before or between rings reaches the PCM timeslot.
"""

from __future__ import annotations

import errno
import math

from .analog_events import (
    AnalogEvent,
    ChipError,
    Clock,
    Disconnect,
    GpioLine,
    LoopCurrentDrop,
    LoopCurrentRestored,
    PolarityReversal,
    RingingEnded,
    RingStart,
    RingStop,
    SpiDevice,
    Steps,
)
from .line_timing import FxoTiming

REG_CTRL1, REG_CTRL2, REG_IMASK, REG_ISRC, REG_DAA1, REG_DAA2 = 1, 2, 3, 4, 5, 6
REG_REVS, REG_LSS, REG_LSREV = 11, 12, 13
REG_IC1, REG_IC4 = 16, 19
REG_RVC1, REG_RVC2, REG_RVC3 = 22, 23, 24
REG_DCT, REG_LCS2, REG_LVS, REG_ACT, REG_DAA5 = 26, 28, 29, 30, 31
REG_PCM = 33
REG_TXS_LO, REG_TXS_HI, REG_RXS_LO, REG_RXS_HI = 34, 35, 36, 37

CTRL_WRITE, CTRL_READ = 0x20, 0x60
SR = 0x80
INTE, RDI, CTRL2_DEFAULT = 0x80, 0x04, 0x03
OH, RDT, ONHM, RDTP, RDTN = 0x01, 0x04, 0x08, 0x20, 0x40
FDT = 0x40
DOD = 0x02
RNGV = 0x80
RDTI, DODI, POLI = 0x80, 0x08, 0x01
PCME = 0x20
# TBR21 (CTR21) dc and ac termination: DCV = 11, ILIM = 1 (60 mA limit); ACIM = 0010
# (270 ohm + 750 ohm || 150 nF), the complex impedance European lines use.
DCT_TBR21 = 0xC2
ACIM_TBR21 = 0x02

RCC_MS = (100, 150, 200, 256, 384, 512, 640, 1024)
KNOWN_LINE_SIDES = {0x1: "Si3018", 0x3: "Si3019", 0x4: "Si3011"}
LINK_TIMEOUT_S = 1.0
POLL_S = 0.01
SUPERVISION_S = 0.02
MAX_TIMESLOT = 127


class DaaError(ChipError):
    """The DAA is missing, its line side does not come up, or a register misbehaves."""


def ring_validation_registers(t: FxoTiming) -> tuple[int, int, int, float]:
    """(reg 22, reg 23, reg 24, RCC seconds) for the timing's validation and frequencies."""
    ras = min(63, math.ceil(1000.0 / (2 * t.ring_frequency_min_hz) / 2.0))
    rmx = math.floor(ras - 1 - 1000.0 / (2 * t.ring_frequency_max_hz) / 2.0) + 1
    rmx = max(0, min(63, rmx))
    rcc_code = max(i for i, ms in enumerate(RCC_MS) if ms <= t.ring_validation_ms)
    rto_code = 0 if t.ring_end_ms <= 80 else min(15, math.ceil(t.ring_end_ms / 128.0))
    reg22 = rmx  # RDLY = 0: report a ring as soon as it is validated
    reg23 = (rto_code << 3) | rcc_code
    reg24 = RNGV | ras
    return reg22, reg23, reg24, RCC_MS[rcc_code] / 1000.0


def rto_seconds(reg23: int) -> float:
    code = (reg23 >> 3) & 0x0F
    return 0.080 if code == 0 else code * 0.128


class DaaSi3050:
    """One FXO port: a Si3050 behind an SPI chip select, INT and RESET on GPIO lines."""

    def __init__(
        self,
        spi: SpiDevice,
        clock: Clock,
        *,
        port: str = "fxo",
        timeslot: int = 0,
        timing: FxoTiming | None = None,
        irq: GpioLine | None = None,
        reset: GpioLine | None = None,
    ) -> None:
        self.spi = spi
        self.clock = clock
        self.port = port
        self.timing = timing or FxoTiming()
        self.irq = irq
        self.reset = reset
        self._check_slot(timeslot)
        self.timeslot = timeslot
        self.ready = False
        self.line_side = ""
        self.off_hook = False
        self.caller_id_capture = True
        self.reversed = False
        self.battery = False
        self._events: list[AnalogEvent] = []
        self._rcc_s = 0.1
        self._rto_s = 0.128
        self._confirm_at: float | None = None
        self._ring_started: float | None = None
        self._cycle_end_at: float | None = None
        self._last_ring_stop = 0.0
        self._pol_check_at: float | None = None
        self._drop_at: float | None = None
        self._last_poll = 0.0

    # --- register access -------------------------------------------------------------

    def read(self, reg: int) -> int:
        self.spi.transfer(bytes([CTRL_READ]))
        self.spi.transfer(bytes([reg]))
        return self.spi.transfer(b"\x00")[0]

    def write(self, reg: int, value: int) -> None:
        self.spi.transfer(bytes([CTRL_WRITE]))
        self.spi.transfer(bytes([reg]))
        self.spi.transfer(bytes([value & 0xFF]))

    def _fail(self, reg: int, value: int | None, code: int, why: str) -> DaaError:
        return DaaError(self.port, reg, value, code, why)

    def line_volts(self) -> int:
        """Signed tip/ring voltage from LVS (negative = reversed polarity)."""
        raw = self.read(REG_LVS)
        return raw - 256 if raw & 0x80 else raw

    def loop_current_ma(self) -> float:
        return self.read(REG_LCS2) * 1.1

    # --- bring-up ----------------------------------------------------------------------

    def init_steps(self) -> Steps:
        self.ready = False
        if self.reset is not None:
            self.reset.write(False)
            yield 0.010
            self.reset.write(True)
            yield 0.010
        ctrl2 = self.read(REG_CTRL2)
        if ctrl2 != CTRL2_DEFAULT:
            raise self._fail(
                REG_CTRL2, ctrl2, errno.ENODEV, "no Si3050 answers on this chip select"
            )
        revs = self.read(REG_REVS)
        if revs & 0x0F in (0x0, 0xF):
            raise self._fail(REG_REVS, revs, errno.ENODEV, "implausible system-side revision")
        self.write(REG_CTRL1, SR)  # soft reset: start from the datasheet defaults
        yield 0.005
        self.assign_timeslot(self.timeslot)
        self.write(REG_IC1, 0x00)  # on-hook speed, ringer impedance/threshold: defaults
        self.write(REG_DCT, DCT_TBR21)
        self.write(REG_ACT, ACIM_TBR21)
        reg22, reg23, reg24, self._rcc_s = ring_validation_registers(self.timing)
        self._rto_s = rto_seconds(reg23)
        self.write(REG_RVC1, reg22)
        self.write(REG_RVC2, reg23)
        self.write(REG_RVC3, reg24)
        self.write(REG_DAA2, 0x00)  # power the line side up over the isolation barrier
        deadline = self.clock() + LINK_TIMEOUT_S
        while True:
            revs = self.read(REG_REVS)
            if revs >> 4 and self.read(REG_LSS) & FDT:
                break
            if self.clock() >= deadline:
                raise self._fail(REG_REVS, revs, errno.ETIMEDOUT, "isolation link did not come up")
            yield POLL_S
        lsid = revs >> 4
        if lsid not in KNOWN_LINE_SIDES:
            raise self._fail(REG_REVS, revs, errno.ENODEV, "unknown line-side device")
        self.line_side = KNOWN_LINE_SIDES[lsid]
        self.write(REG_ISRC, 0x00)
        self.write(REG_IMASK, RDTI | DODI | POLI)
        self.write(REG_CTRL2, INTE | RDI | CTRL2_DEFAULT)
        self.off_hook = False
        self._write_hook()
        volts = self.line_volts()
        self.battery = volts != 0
        self.reversed = volts < 0
        self.ready = True

    @staticmethod
    def _check_slot(slot: int) -> None:
        if not isinstance(slot, int) or isinstance(slot, bool) or not 0 <= slot <= MAX_TIMESLOT:
            raise ValueError(f"timeslot must be 0..{MAX_TIMESLOT}, not {slot!r}")

    def assign_timeslot(self, slot: int) -> None:
        self._check_slot(slot)
        count = slot * 8
        self.write(REG_PCM, 0x00)
        self.write(REG_TXS_LO, count & 0xFF)
        self.write(REG_TXS_HI, count >> 8)
        self.write(REG_RXS_LO, count & 0xFF)
        self.write(REG_RXS_HI, count >> 8)
        self.write(REG_PCM, PCME)  # A-law
        self.timeslot = slot

    # --- line control -------------------------------------------------------------------

    def _require_ready(self) -> None:
        if not self.ready:
            raise self._fail(REG_DAA1, None, errno.EAGAIN, "port not initialised")

    def _write_hook(self) -> None:
        if self.off_hook:
            self.write(REG_DAA1, OH)
        else:
            self.write(REG_DAA1, ONHM if self.caller_id_capture else 0x00)

    def seize(self) -> None:
        """Go off-hook (answer an incoming call or start an outgoing one)."""
        self._require_ready()
        self.off_hook = True
        self._drop_at = None
        self._confirm_at = None
        self._write_hook()

    def release(self) -> None:
        """Go back on-hook."""
        self._require_ready()
        self.off_hook = False
        self._drop_at = None
        self._write_hook()

    def set_caller_id_capture(self, enabled: bool) -> None:
        """Keep the on-hook line monitor on (audio reaches the timeslot while on-hook)."""
        self._require_ready()
        self.caller_id_capture = bool(enabled)
        if not self.off_hook:
            self._write_hook()

    # --- events -----------------------------------------------------------------------

    def handle_interrupt(self, now: float) -> None:
        src = self.read(REG_ISRC)
        if not src:
            return
        self.write(REG_ISRC, ~src & 0xFF)  # writing 0 clears a source bit
        if src & RDTI:
            self._ring_edge(bool(self.read(REG_DAA1) & RDT), now)
        if src & POLI:
            self._pol_check_at = now + self.timing.polarity_debounce_ms / 1000.0
        if src & DODI and self.off_hook and self._drop_at is None:
            self._drop_at = now
            self._events.append(LoopCurrentDrop(self.port, now))

    def _ring_edge(self, rdt: bool, now: float) -> None:
        validation = self.timing.ring_validation_ms / 1000.0
        if rdt:
            if self._ring_started is None and self._confirm_at is None:
                # the chip has seen RCC of valid ringing; check the rest ourselves
                self._confirm_at = now + max(0.0, validation - self._rcc_s)
                self._confirm(now)
        else:
            self._confirm_at = None
            if self._ring_started is not None:
                end = now - self._rto_s
                duration = (end - self._ring_started) * 1000.0
                self._ring_started = None
                self._last_ring_stop = end
                self._cycle_end_at = end + self.timing.ring_cycle_timeout_ms / 1000.0
                self._events.append(RingStop(self.port, end, duration))

    def _confirm(self, now: float) -> None:
        if self._confirm_at is None or now < self._confirm_at:
            return
        self._confirm_at = None
        daa1 = self.read(REG_DAA1)
        if daa1 & RDT and daa1 & (RDTP | RDTN):
            start = now - self.timing.ring_validation_ms / 1000.0
            self._ring_started = start
            self._cycle_end_at = None
            self._events.append(RingStart(self.port, start))

    def poll(self, now: float) -> None:
        self._last_poll = now
        self._confirm(now)
        if self._cycle_end_at is not None and now >= self._cycle_end_at:
            self._cycle_end_at = None
            self._events.append(RingingEnded(self.port, self._last_ring_stop))
        if self._pol_check_at is not None and now >= self._pol_check_at:
            at = self._pol_check_at - self.timing.polarity_debounce_ms / 1000.0
            self._pol_check_at = None
            volts = self.line_volts()
            self.battery = volts != 0
            if volts and (volts < 0) != self.reversed:
                self.reversed = volts < 0
                self._events.append(PolarityReversal(self.port, at, self.reversed))
        if self._drop_at is not None:
            current = self.loop_current_ma()
            dropped = bool(self.read(REG_IC4) & DOD) or current == 0.0
            if not dropped:
                duration = (now - self._drop_at) * 1000.0
                self._drop_at = None
                self._events.append(LoopCurrentRestored(self.port, now, duration))
            elif now >= self._drop_at + self.timing.disconnect_ms / 1000.0:
                at, self._drop_at = self._drop_at, None
                self._events.append(Disconnect(self.port, at))

    def next_deadline(self) -> float | None:
        times = [
            t for t in (self._confirm_at, self._cycle_end_at, self._pol_check_at) if t is not None
        ]
        if self._drop_at is not None:
            times.append(
                min(
                    self._drop_at + self.timing.disconnect_ms / 1000.0,
                    self._last_poll + SUPERVISION_S,
                )
            )
        return min(times) if times else None

    def service(self, now: float) -> None:
        """Poll-mode service: serve INT if the line is low, then run timers."""
        if self.irq is not None:
            for _ in range(4):
                if self.irq.read():
                    break
                self.handle_interrupt(now)
        self.poll(now)

    def take_events(self) -> list[AnalogEvent]:
        events, self._events = self._events, []
        return events


__all__ = ["DaaError", "DaaSi3050", "ring_validation_registers"]
