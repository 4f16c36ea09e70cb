"""Register-level model of a Silicon Labs Si3050 DAA (with an Si3018 line side) for the sim.

What the FXO driver touches is modelled after the public Si3050 register map:

* SPI: three bytes, each in its own chip-select assertion: a control byte (bit 5 set,
  bit 6 = read), the register address, then the data byte (on a read the register
  comes back on the third byte). A control byte without bit 5 is a framing error.
* Identity: reg 2 reads 0x03 after reset; reg 11 carries the system-side revision in
  bits 3:0 and, once the isolation link is up, the line-side device ID in bits 7:4
  (0001 = Si3018); reg 13 bits 5:2 the line-side revision. Reg 1 bit 7 is a soft reset.
* Power: the line side is powered down (reg 6 bit 4, PDL) after reset; clearing it
  brings the isolation link up after 20 ms (reg 12 bit 6, FDT). Until then the DAA
  neither rings, measures, nor goes off-hook.
* DAA control reg 5: bit 0 OH (off-hook), bit 3 ONHM (on-hook line monitor: line
  audio reaches the PCM bus while on-hook, for caller ID), bit 2 RDT (validated ring),
  bits 5/6 RDTP/RDTN (raw ring signal present).
* Ring validation regs 22-24: RNGV (reg 24 bit 7) enables it; RAS/RMX (2 ms units)
  bound the ring frequency; RCC (reg 23 bits 2:0: 100/150/200/256/384/512/640/1024 ms)
  is how long a ring must last to count; RTO (reg 23 bits 6:3: 80 ms, then n*128 ms)
  how long after the ring voltage stops RDT falls; RDLY (reg 22 bits 7:6 + reg 23
  bit 7, 256 ms units) delays the indication. Without RNGV, RDT follows the raw ring.
* Measurements: reg 29 LVS, signed line voltage in volts (bit 7 = polarity, forced to
  0 at 3 V or less); reg 12 bits 4:0 LCS (3.3 mA/bit) and reg 28 LCS2 (1.1 mA/bit)
  loop current off-hook; reg 19 bit 1 DOD (line-derived supply dropped out off-hook).
* Interrupts: source reg 4 (write 0 to clear a bit), mask reg 3: bit 7 RDTI (ring; at
  start, and at end too with RDI, reg 2 bit 2), bit 3 DODI (loop current lost while
  off-hook), bit 0 POLI (LVS bit 7 changed). INT is driven only with INTE (reg 2 bit
  7); active low unless INTP (reg 2 bit 6).
* PCM reg 33: bit 5 enables, bits 4:3 format (00 A-law); start counts regs 34-37.

Between two changes (the line's next ring, battery or polarity change, the link coming
up, ring validation timers) nothing in the chip moves, so a PCM tick before the next
one, with no SPI write and no line change scheduled since, only carries audio.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .analog_line import IDLE_FRAME, Clock, FxoLine
from .gpio import SimGpioChip
from .pcm import PcmHighway
from .si3215 import ChipPins

EPS = 1e-9

CTRL1, CTRL2, IMASK, ISRC, DAA1, DAA2 = 1, 2, 3, 4, 5, 6
REVS, LSS, LSREV = 11, 12, 13
IC1, IC2, IC3, IC4 = 16, 17, 18, 19
RVC1, RVC2, RVC3 = 22, 23, 24
DCT, LCS2, LVS, ACT, DAA5 = 26, 28, 29, 30, 31
PCM_CTRL = 33
TXS_LO, TXS_HI, RXS_LO, RXS_HI = 34, 35, 36, 37

SR = 0x80
INTE, INTP, RDI = 0x80, 0x40, 0x04
OH, RDT, ONHM, RDTP, RDTN = 0x01, 0x04, 0x08, 0x20, 0x40
PDL = 0x10
FDT = 0x40
DOD = 0x02
RNGV = 0x80
RDTI, DODI, POLI = 0x80, 0x08, 0x01
PCME, PCMF_MASK = 0x20, 0x18

RESET_VALUES = {CTRL2: 0x03, DAA2: PDL, RVC1: 0x96, RVC2: 0x2D, RVC3: 0x19}
READ_ONLY = {REVS, LSS, LSREV, IC4, LCS2, LVS}
DAA1_READ_ONLY = RDT | RDTP | RDTN
RCC_MS = (100, 150, 200, 256, 384, 512, 640, 1024)
LINK_S = 0.020
SI3018_LSID = 0x1


def rto_seconds(code: int) -> float:
    return 0.080 if code == 0 else code * 0.128


class Si3050:
    """One DAA: ``exchange`` is its SPI slave side, ``line`` the PSTN pair it terminates."""

    chip = "si3050"

    def __init__(
        self,
        line: FxoLine,
        clock: Clock,
        *,
        highway: PcmHighway | None = None,
        clock_slot: int | None = None,
        gpio: SimGpioChip | None = None,
        irq_line: int | None = None,
        reset_line: int | None = None,
        revision: int = 3,
        line_side_revision: int = 2,
    ) -> None:
        if not 1 <= revision <= 14:
            raise ValueError("a DAA revision is 1..14")
        self.line = line
        self.clock = clock
        self.highway = highway
        self.pins = ChipPins(gpio, irq_line, reset_line)
        self.revision = revision
        self.line_side_revision = line_side_revision & 0xF
        self.framing_errors = 0
        self.pcm_errors = 0
        self._was_in_reset = False
        self._tick_cb: Callable[[int, bytes], None] | None = None
        self._quiet_until = -math.inf  # before this, with _line_edits seen, nothing is due
        self._line_edits = -1
        # audio while nothing changes: line -> timeslot (tx), timeslot -> line (rx)
        self._route: tuple[int | None, int | None] = (None, None)
        self._route_error = False  # audio should pass but PCM is set up wrong
        self._power_on_reset(clock())
        if highway is not None:
            slot = 0 if clock_slot is None else clock_slot
            self._tick_cb = self._on_pcm_tick
            highway.device.subscribe(slot, self._tick_cb)
            self._clock_slot = slot

    def _power_on_reset(self, now: float) -> None:
        self.regs = bytearray(64)
        for reg, value in RESET_VALUES.items():
            self.regs[reg] = value
        self.regs[REVS] = self.revision
        self._bytes: list[int] = []
        self._t = now
        self._link_at: float | None = None
        self._raw_ring = False
        self._validate_at: float | None = None
        self._indicate_at: float | None = None
        self._timeout_at: float | None = None
        self._lvs_sign = False
        self._quiet_until = -math.inf
        self.line.set_daa_hook(False, now)
        self._update_irq()

    def close(self) -> None:
        if self.highway is not None and self._tick_cb is not None:
            self.highway.device.unsubscribe(self._clock_slot, self._tick_cb)
            self._tick_cb = None

    def _check_reset(self, now: float) -> bool:
        if self.pins.in_reset():
            if not self._was_in_reset:
                self._was_in_reset = True
                self.line.set_daa_hook(False, now)
                self.pins.set_irq(False)
            return True
        if self._was_in_reset:
            self._was_in_reset = False
            self._power_on_reset(now)
        return False

    # --- derived state --------------------------------------------------------------

    def link_up(self, t: float) -> bool:
        return self._link_at is not None and t + EPS >= self._link_at

    def off_hook(self, t: float) -> bool:
        return bool(self.regs[DAA1] & OH) and self.link_up(t)

    def _rcc(self) -> float:
        return RCC_MS[self.regs[RVC2] & 0x07] / 1000.0

    def _rto(self) -> float:
        return rto_seconds((self.regs[RVC2] >> 3) & 0x0F)

    def _rdly(self) -> float:
        code = (self.regs[RVC1] >> 6) | ((self.regs[RVC2] >> 5) & 0x04)
        return code * 0.256

    def _frequency_ok(self) -> bool:
        f = self.line.ring_frequency_hz
        if f <= 0:
            return False
        half_period_ms = 1000.0 / (2 * f)
        ras = self.regs[RVC3] & 0x3F
        rmx = self.regs[RVC1] & 0x3F
        return (ras - rmx - 1) * 2.0 <= half_period_ms <= ras * 2.0

    def lvs(self, t: float) -> int:
        if not self.link_up(t):
            return 0
        volts = self.line.line_volts(t)
        if abs(volts) <= 3.0:
            return 0
        return max(-127, min(127, round(volts))) & 0xFF

    # --- time ------------------------------------------------------------------------

    def _deadlines(self) -> list[float]:
        out = [
            t
            for t in (
                self.line.ring.next_change_after(self._t),
                self.line.battery.next_change_after(self._t),
                self.line.polarity.next_change_after(self._t),
                self._link_at,
                self._validate_at,
                self._indicate_at,
                self._timeout_at,
            )
            if t is not None
        ]
        return out

    def _edits(self) -> int:
        line = self.line
        return line.ring.edits + line.battery.edits + line.polarity.edits

    def advance(self, now: float) -> None:
        if self._check_reset(now):
            self._t = now
            self._quiet_until = -math.inf
            self._plan_route(now)
            return
        while True:
            due = [t for t in self._deadlines() if self._t + EPS < t <= now + EPS]
            if not due:
                break
            self._t = min(due)
            self._evaluate(self._t)
        self._t = max(self._t, now)
        self._evaluate(self._t)
        for timeline in (self.line.ring, self.line.battery, self.line.polarity):
            timeline.forget_before(self._t - 1.0)
        # _evaluate is a function of the time only through these deadlines: until the
        # first, evaluating again changes nothing (unless a write or the line intervenes)
        later = [t for t in self._deadlines() if t > self._t + EPS]
        self._quiet_until = min(later, default=math.inf)
        self._line_edits = self._edits()
        self._plan_route(self._t)

    def _evaluate(self, t: float) -> None:
        r = self.regs
        link = self.link_up(t)
        r[LSS] = (FDT if link else 0) | (r[LSS] & 0x1F)
        r[REVS] = ((SI3018_LSID << 4) if link else 0) | self.revision
        r[LSREV] = (self.line_side_revision << 2) if link else 0
        off = self.off_hook(t)
        self.line.set_daa_hook(off, t)
        # ring detection (on-hook only)
        raw = link and not off and self.line.ring.value_at(t)
        daa1 = r[DAA1] & ~DAA1_READ_ONLY & 0xFF
        rdt_before = bool(r[DAA1] & RDT)
        rdt = rdt_before
        if raw != self._raw_ring:
            self._raw_ring = raw
            if raw:
                self._timeout_at = None
                if not rdt and self._validate_at is None and self._indicate_at is None:
                    self._validate_at = t + self._rcc()
            else:
                self._validate_at = None
                if rdt or self._indicate_at is not None:
                    self._timeout_at = t + self._rto()
        if r[RVC3] & RNGV:
            if self._validate_at is not None and t + EPS >= self._validate_at:
                self._validate_at = None
                if self._frequency_ok():
                    self._indicate_at = t + self._rdly()
            if self._indicate_at is not None and t + EPS >= self._indicate_at:
                self._indicate_at = None
                rdt = True
            if self._timeout_at is not None and t + EPS >= self._timeout_at:
                self._timeout_at = None
                self._indicate_at = None
                rdt = False
        else:
            self._validate_at = self._indicate_at = self._timeout_at = None
            rdt = raw
        ring_end_reported = rdt_before and not rdt and bool(r[CTRL2] & RDI)
        if (rdt and not rdt_before) or ring_end_reported:
            r[ISRC] |= RDTI
        r[DAA1] = daa1 | (RDT if rdt else 0) | ((RDTP | RDTN) if raw else 0)
        # measurements
        lvs = self.lvs(t)
        r[LVS] = lvs
        sign = bool(lvs & 0x80)
        if link and sign != self._lvs_sign:
            r[ISRC] |= POLI
        self._lvs_sign = sign
        current = self.line.loop_current_ma(t) if off else 0.0
        r[LSS] = (r[LSS] & FDT) | min(31, int(current / 3.3))
        r[LCS2] = min(127, int(current / 1.1))
        dod = off and current == 0.0
        if dod and not r[IC4] & DOD:
            r[ISRC] |= DODI
        r[IC4] = (r[IC4] & ~DOD & 0xFF) | (DOD if dod else 0)
        self._update_irq()

    def _update_irq(self) -> None:
        r = self.regs
        pending = bool(r[ISRC] & r[IMASK]) and bool(r[CTRL2] & INTE)
        self.pins.set_irq(pending, active_high=bool(r[CTRL2] & INTP))

    # --- PCM -------------------------------------------------------------------------

    def _slot(self, lo: int) -> int | None:
        count = self.regs[lo] | ((self.regs[lo + 1] & 0x03) << 8)
        if count % 8 or self.highway is None or count // 8 >= self.highway.timeslots:
            return None
        return count // 8

    @property
    def tx_slot(self) -> int | None:
        """Timeslot the DAA drives (line -> firmware), None if PCM is off or invalid."""
        return self._slot(TXS_LO) if self.regs[PCM_CTRL] & PCME else None

    @property
    def rx_slot(self) -> int | None:
        return self._slot(RXS_LO) if self.regs[PCM_CTRL] & PCME else None

    def _plan_route(self, t: float) -> None:
        """Where audio goes from ``t`` until the chip's state changes (an SPI write forces
        the next tick to advance, which plans again)."""
        self._route, self._route_error = (None, None), False
        if self.highway is None or self._was_in_reset:
            return
        off = self.off_hook(t)
        listening = off or (self.link_up(t) and bool(self.regs[DAA1] & ONHM))
        tx, rx = self.tx_slot, self.rx_slot
        alaw = (self.regs[PCM_CTRL] & PCMF_MASK) == 0
        if (listening or off) and (not alaw or tx is None or rx is None):
            self._route_error = True
            return
        self._route = (tx if listening else None, rx if off else None)

    def tick(self) -> None:
        """One 20 ms frame: line audio up while off-hook or monitoring, PCM audio down off-hook."""
        now = self.clock()
        if (
            now + EPS < self._quiet_until
            and self._edits() == self._line_edits
            and not self.pins.in_reset()
        ):
            if now > self._t:
                self._t = now
        else:
            self.advance(now)
        from_network = self.line.from_network.take()
        tx, rx = self._route
        device = self.highway.device if self.highway is not None else None
        if self._route_error:
            self.pcm_errors += 1
        if tx is not None and device is not None:
            device.write(tx, from_network)
        if rx is not None and device is not None:
            self.line.to_network.deliver(device.read(rx))
        else:
            self.line.to_network.deliver(IDLE_FRAME)

    def _on_pcm_tick(self, _slot: int, _frame: bytes) -> None:
        self.tick()

    # --- SPI -------------------------------------------------------------------------

    def exchange(self, data: bytes) -> bytes:
        now = self.clock()
        self.advance(now)
        if self._was_in_reset:
            return b"\xff" * len(data)
        if len(data) != 1:
            self.framing_errors += 1
            self._bytes = []
            return b"\xff" * len(data)
        byte = data[0]
        if not self._bytes:
            if not byte & 0x20:
                self.framing_errors += 1
                return b"\xff"
            self._bytes.append(byte)
            return b"\xff"
        if len(self._bytes) == 1:
            self._bytes.append(byte)
            return b"\xff"
        control, reg = self._bytes
        self._bytes = []
        reg &= 0x3F
        if control & 0x40:
            return bytes([self.regs[reg]])
        self.write(reg, byte, now)
        return b"\xff"

    def write(self, reg: int, value: int, now: float) -> None:
        r = self.regs
        if reg in READ_ONLY:
            return
        if reg == CTRL1 and value & SR:
            self._power_on_reset(now)
            return
        if reg == ISRC:
            r[ISRC] &= value
        elif reg == DAA1:
            r[DAA1] = (r[DAA1] & DAA1_READ_ONLY) | (value & ~DAA1_READ_ONLY & 0xFF)
        elif reg == DAA2:
            was_down = bool(r[DAA2] & PDL)
            r[DAA2] = value
            if was_down and not value & PDL:
                self._link_at = now + LINK_S
            elif value & PDL:
                self._link_at = None
        else:
            r[reg] = value
        self._quiet_until = -math.inf  # deadlines, audio route: work them out again
        self._evaluate(now)

    def describe(self) -> dict[str, object]:
        now = self.clock()
        return {
            "chip": self.chip,
            "off_hook": self.off_hook(now),
            "link_up": self.link_up(now),
            "tx_slot": self.tx_slot,
            "rx_slot": self.rx_slot,
            "irq": self.pins.irq_asserted,
            "line": self.line.describe(),
        }
