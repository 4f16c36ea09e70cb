"""Register-level model of a Silicon Labs Si3215 ProSLIC (FXS: SLIC + codec) for the sim.

What the FXS driver touches is modelled after the public Si3210/Si3215 register map:

* SPI: one byte per chip-select assertion (the ProSLIC needs CS high between bytes).
  A control byte ``R/W<<7 | address`` is followed by a data byte; on a read the
  register comes back on the second byte. A transfer of more than one byte is a
  framing error (the model answers 0xFF and counts it).
* Identity: reg 0 (part number bits 5:4, revision 3:0), reg 1 bit 7 set on a Si3215,
  reg 8 = 0x02 and reg 11 = 0x33 after reset (what drivers check for a sane chip).
* Indirect registers through regs 28/29 (data) and 30 (address), busy flag in reg 31
  bit 0; Si3215 numbering (ring oscillator: 6 offset, 7 RCO, 8 RNGX, 9 RNGY).
* Power: reg 14 bit 4 powers the DC-DC converter down; after it is cleared the high
  battery (reg 82, 376 mV/bit) ramps to the reg 74 setting (1.5 V/bit) in 100 ms.
* Calibration: writing reg 96 with bit 6 set runs the calibrations selected; reg 96
  reads non-zero until done (60 ms), only completes with the battery up, and the
  linefeed drives nothing until the chip has been calibrated once since reset.
* Linefeed reg 64: bits 2:0 written (0 open, 1 forward active, 2 forward on-hook
  transmission, 3 tip open, 4 ringing, 5 reverse active, 6 reverse on-hook
  transmission, 7 ring open), bits 6:4 read back the state actually applied.
* Ringing: ring oscillator control reg 34 (as modelled: bit 4 active-timer enable,
  bit 3 inactive-timer enable), active/inactive timers regs 48-51 in 125 us units.
  With both timers on, the chip alternates ringing and on-hook transmission itself.
* Loop closure / ring trip status reg 68 (bit 0 LCR, bit 1 RTP), debounced by regs
  69/70 (1.25 ms units). Interrupt status regs 18-20 (write 1 to clear), enables
  21-23; reg 19 bit 1 loop closure, bit 0 ring trip; reg 18 bit 4/5 ring active /
  inactive timer expiry. INT (active low) is pulled low while an enabled one is pending.
* PCM: reg 1 bit 5 enables PCM, bits 4:3 format (00 A-law); transmit/receive start
  counts regs 2-5 in PCLK bits, so timeslot n is count 8n.

Time comes from an injected clock; internal state machines advance on every SPI
access and every PCM tick, processing each change at its own timestamp. Between two
such changes (the next hook change on the line, ring cadence, debounce, calibration,
power ramp) nothing in the chip moves, so a PCM tick before the next one, with no SPI
write and no hook change scheduled since, only carries audio (``_quiet_until``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

from periphery import GPIOError

from .analog_line import IDLE_FRAME, Clock, Feed, FxsLine
from .gpio import SimGpioChip
from .pcm import PcmHighway

EPS = 1e-9

# direct registers
ID = 0
PCM_MODE = 1
TXS_LO, TXS_HI, RXS_LO, RXS_HI = 2, 3, 4, 5
LOOPBACK = 8
HYBRID = 11
POWERDOWN = 14
IS1, IS2, IS3 = 18, 19, 20
IE1, IE2, IE3 = 21, 22, 23
IDA_LO, IDA_HI, IAA, IAS = 28, 29, 30, 31
RING_OSC_CTL = 34
RAT_LO, RAT_HI, RIT_LO, RIT_HI = 48, 49, 50, 51
LINEFEED = 64
AUTO = 67
LOOP_STATUS = 68
LCDI = 69
RTDI = 70
VBATH = 74
VBAT_SENSE = 82
DCDC = 93
CAL = 96
CAL_SELECT = 97
CAL_RESULTS = range(98, 108)

# bits
PCME = 0x20
PCMF_MASK = 0x18
SI3215_MARK = 0x80
PDN_DCDC = 0x10
RTAE = 0x10
RTIE = 0x08
LCR = 0x01
RTP = 0x02
IS2_LCIP = 0x02
IS2_RTIP = 0x01
IS1_RING_TA = 0x10
IS1_RING_TI = 0x20
IS3_CMBAL = 0x04
CAL_START = 0x40
DCCAL = 0x80

# linefeed codes
LF_OPEN, LF_FWD, LF_FWD_OHT, LF_TIP_OPEN, LF_RING, LF_REV, LF_REV_OHT, LF_RING_OPEN = range(8)

# indirect registers (Si3215 numbering)
IND_RING_OFFSET, IND_RCO, IND_RNGX, IND_RNGY = 6, 7, 8, 9

RESET_VALUES = {
    PCM_MODE: 0x88,
    LOOPBACK: 0x02,
    HYBRID: 0x33,
    POWERDOWN: PDN_DCDC,
    LCDI: 0x0A,
    RTDI: 0x0A,
    VBATH: 0x32,
}
READ_ONLY = {ID, IAS, LOOP_STATUS, VBAT_SENSE}
TIMER_UNIT_S = 125e-6
DEBOUNCE_UNIT_S = 1.25e-3
POWER_RAMP_S = 0.100
CAL_S = 0.060
DCDC_CAL_S = 0.010
VBAT_STEP_V = 0.376
VBATH_STEP_V = 1.5


class ChipPins:
    """RESET (active low input) and INT (active low, open drain) of one chip on the board.

    The board pulls both up; the model reproduces that by driving them high from the
    hardware side, so INT idles high and a chip whose reset nobody opened runs.
    """

    def __init__(self, gpio: SimGpioChip | None, irq_line: int | None, reset_line: int | None):
        self.gpio = gpio
        self.irq_line = irq_line
        self.reset_line = reset_line
        self._irq_asserted = False
        self._level = True
        self._reset_level: Callable[[], bool] | None = None
        if gpio is not None and reset_line is not None:
            self._reset_level = gpio.level_probe(reset_line)
            # if firmware already drives it as an output, the pull-up is moot
            with contextlib.suppress(GPIOError):
                gpio.drive(reset_line, True)
        if gpio is not None and irq_line is not None:
            gpio.drive(irq_line, True)

    def in_reset(self) -> bool:
        level = self._reset_level
        if level is None or self.gpio is None or self.gpio.closed:
            return False
        return not level()

    @property
    def irq_asserted(self) -> bool:
        return self._irq_asserted

    def set_irq(self, asserted: bool, active_high: bool = False) -> None:
        """Drive INT: low while asserted (or high, for a chip programmed active-high)."""
        self._irq_asserted = asserted
        level = asserted if active_high else not asserted
        if level == self._level:
            return
        self._level = level
        if self.gpio is not None and self.irq_line is not None and not self.gpio.closed:
            self.gpio.drive(self.irq_line, level)


class ByteFraming:
    """Collects the bytes of one register access, one chip-select assertion per byte."""

    def __init__(self) -> None:
        self.pending: list[int] = []
        self.errors = 0

    def reset(self) -> None:
        self.pending = []


class Si3215:
    """One ProSLIC: ``exchange`` is its SPI slave side, ``line`` its two wires."""

    chip = "si3215"

    def __init__(
        self,
        line: FxsLine,
        clock: Clock,
        *,
        highway: PcmHighway | None = None,
        clock_slot: int | None = None,
        gpio: SimGpioChip | None = None,
        irq_line: int | None = None,
        reset_line: int | None = None,
        revision: int = 5,
        part_number: int = 0,
    ) -> None:
        if not 1 <= revision <= 14:
            raise ValueError("a ProSLIC revision is 1..14")
        self.line = line
        self.clock = clock
        self.highway = highway
        self.pins = ChipPins(gpio, irq_line, reset_line)
        self.revision = revision
        self.part_number = part_number & 0x3
        self.framing = ByteFraming()
        self.pcm_errors = 0
        self._was_in_reset = False
        self._tick_cb: Callable[[int, bytes], None] | None = None
        self._quiet_until = -math.inf  # before this, with _hook_edits seen, nothing is due
        self._hook_edits = -1
        self._route: tuple[int, int] | None = None  # (tx, rx) while audio passes
        self._route_error = False  # audio should pass but PCM is set up wrong
        self._power_on_reset(clock())
        if highway is not None:
            slot = 0 if clock_slot is None else clock_slot
            self._tick_cb = self._on_pcm_tick
            highway.device.subscribe(slot, self._tick_cb)
            self._clock_slot = slot

    # --- state ----------------------------------------------------------------------

    def _power_on_reset(self, now: float) -> None:
        self.regs = bytearray(256)
        for reg, value in RESET_VALUES.items():
            self.regs[reg] = value
        self.regs[ID] = (self.part_number << 4) | self.revision
        self.indirect = [0] * 256
        self._ida_written = False
        self._ias_busy_reads = 0
        self._t = now
        self._power_up_at: float | None = None
        self._cal_done_at: float | None = None
        self._dcdc_cal_done_at: float | None = None
        self.calibrated = False
        self._ring_active = False
        self._ring_phase_end: float | None = None
        self._raw_loop = False
        self._raw_loop_since = now
        self._raw_trip = False
        self._raw_trip_since = now
        self.framing.reset()
        self._quiet_until = -math.inf
        self.line.drive(Feed.OPEN, False, now)
        self._update_irq()

    def close(self) -> None:
        if self.highway is not None and self._tick_cb is not None:
            self.highway.device.unsubscribe(self._clock_slot, self._tick_cb)
            self._tick_cb = None

    def _check_reset(self, now: float) -> bool:
        """True while held in reset; a release restarts the chip from its reset values."""
        if self.pins.in_reset():
            if not self._was_in_reset:
                self._was_in_reset = True
                self.line.drive(Feed.OPEN, False, now)
                self.pins.set_irq(False)
            return True
        if self._was_in_reset:
            self._was_in_reset = False
            self._power_on_reset(now)
        return False

    @property
    def linefeed(self) -> int:
        return self.regs[LINEFEED] & 0x07

    def battery_ready(self, t: float) -> bool:
        return self._power_up_at is not None and t + EPS >= self._power_up_at + POWER_RAMP_S

    def _vbat_code(self, t: float) -> int:
        if self._power_up_at is None:
            return 0
        target = self.regs[VBATH] * VBATH_STEP_V / VBAT_STEP_V
        frac = min(1.0, max(0.0, (t - self._power_up_at) / POWER_RAMP_S))
        return min(0xFF, int(target * frac))

    def _timer(self, lo: int) -> float:
        return (self.regs[lo] | (self.regs[lo + 1] << 8)) * TIMER_UNIT_S

    def _applied_state(self, t: float) -> int:
        """The linefeed actually driven: nothing until powered and calibrated."""
        if not (self.calibrated and self.battery_ready(t)):
            return LF_OPEN
        lf = self.linefeed
        if lf == LF_RING and not self._ring_active:
            return LF_FWD_OHT  # between bursts the chip sits in on-hook transmission
        return lf

    def _feed(self, t: float) -> tuple[Feed, bool]:
        state = self._applied_state(t)
        if state in (LF_FWD, LF_REV):
            return Feed.ACTIVE, state == LF_REV
        if state in (LF_FWD_OHT, LF_REV_OHT):
            return Feed.ONHOOK_TX, state == LF_REV_OHT
        if state == LF_RING:
            return Feed.RINGING, False
        return Feed.OPEN, False

    def ring_frequency_hz(self) -> float:
        coeff = self.indirect[IND_RCO] / 32768.0
        if not 0.0 < coeff < 1.0:
            return 0.0
        return math.acos(coeff) * 1000.0 / (2 * math.pi)

    def ring_voltage_vpk(self) -> float:
        coeff = self.indirect[IND_RCO] / 32768.0
        if not 0.0 < coeff < 1.0:
            return 0.0
        scale = 0.25 * math.sqrt((1 - coeff) / (1 + coeff)) * 32768.0
        return self.indirect[IND_RNGX] / scale * 96.0

    # --- time ------------------------------------------------------------------------

    def _deadlines(self) -> list[float]:
        out: list[float] = []
        nxt = self.line.hook.next_change_after(self._t)
        if nxt is not None:
            out.append(nxt)
        if self._ring_phase_end is not None:
            out.append(self._ring_phase_end)
        loop_status = self.regs[LOOP_STATUS]
        if self._raw_loop != bool(loop_status & LCR):
            out.append(self._raw_loop_since + self.regs[LCDI] * DEBOUNCE_UNIT_S)
        if self._raw_trip != bool(loop_status & RTP):
            out.append(self._raw_trip_since + self.regs[RTDI] * DEBOUNCE_UNIT_S)
        for t in (self._cal_done_at, self._dcdc_cal_done_at):
            if t is not None:
                out.append(t)
        if self._power_up_at is not None:
            out.append(self._power_up_at + POWER_RAMP_S)
        return out

    def advance(self, now: float) -> None:
        """Run the chip's state machines up to ``now``, each change at its own time."""
        if self._check_reset(now):
            self._t = now
            self._quiet_until = -math.inf
            self._plan_route()
            return
        while True:
            due = [t for t in self._deadlines() if self._t + EPS < t <= now + EPS]
            if not due:
                break
            self._t = min(due)
            self._evaluate(self._t)
        self._t = max(self._t, now)
        self._evaluate(self._t)
        hook = self.line.hook
        hook.forget_before(self._t - 1.0)
        # _evaluate is a function of the time only through these deadlines: until the
        # first, evaluating again changes nothing (unless a write or the hook intervenes)
        later = [t for t in self._deadlines() if t > self._t + EPS]
        self._quiet_until = min(later, default=math.inf)
        self._hook_edits = hook.edits
        self._plan_route()

    def _evaluate(self, t: float) -> None:
        # ring cadence
        if self.linefeed == LF_RING and self._ring_phase_end is not None:
            while self._ring_phase_end is not None and t + EPS >= self._ring_phase_end:
                start = self._ring_phase_end
                if self._ring_active:
                    self._ring_active = False
                    self.regs[IS1] |= IS1_RING_TA
                    length = self._timer(RIT_LO)
                else:
                    self._ring_active = True
                    self.regs[IS1] |= IS1_RING_TI
                    length = self._timer(RAT_LO)
                self._ring_phase_end = start + length if length > 0 else None
        # calibrations
        if self._cal_done_at is not None and t + EPS >= self._cal_done_at:
            if self.battery_ready(t):
                self._cal_done_at = None
                self.regs[CAL] = 0
                self.calibrated = True
                for i, reg in enumerate(CAL_RESULTS):
                    self.regs[reg] = 0x10 + (i % 3) if reg != 107 else 0x08
                if self.regs[CAL_SELECT] & 0x01:
                    self.regs[IS3] |= IS3_CMBAL
            else:
                self._cal_done_at = None  # stays busy: no battery, no calibration
        if self._dcdc_cal_done_at is not None and t + EPS >= self._dcdc_cal_done_at:
            self._dcdc_cal_done_at = None
            self.regs[DCDC] &= ~DCCAL & 0xFF
        # what goes on the wires
        feed, rev = self._feed(t)
        self.line.ring_frequency_hz = self.ring_frequency_hz()
        self.line.ring_voltage_vpk = self.ring_voltage_vpk()
        self.line.drive(feed, rev, t)
        off_hook = self.line.hook.value_at(t)
        # loop closure (battery fed states) and ring trip (ring burst present)
        loop = off_hook and feed in (Feed.ACTIVE, Feed.ONHOOK_TX)
        trip = off_hook and feed is Feed.RINGING
        if loop != self._raw_loop:
            self._raw_loop, self._raw_loop_since = loop, t
        if trip != self._raw_trip:
            self._raw_trip, self._raw_trip_since = trip, t
        status = self.regs[LOOP_STATUS]
        loop_settled = t + EPS >= self._raw_loop_since + self.regs[LCDI] * DEBOUNCE_UNIT_S
        if loop != bool(status & LCR) and loop_settled:
            status ^= LCR
            self.regs[IS2] |= IS2_LCIP
        trip_settled = t + EPS >= self._raw_trip_since + self.regs[RTDI] * DEBOUNCE_UNIT_S
        if trip and not status & RTP and trip_settled:
            status |= RTP
            self.regs[IS2] |= IS2_RTIP
        if self.linefeed != LF_RING:
            status &= ~RTP & 0xFF
        self.regs[LOOP_STATUS] = status
        self._update_irq()

    def _update_irq(self) -> None:
        r = self.regs
        pending = (r[IS1] & r[IE1]) | (r[IS2] & r[IE2]) | (r[IS3] & r[IE3])
        self.pins.set_irq(bool(pending))

    # --- PCM -------------------------------------------------------------------------

    def _slot(self, lo: int) -> int | None:
        count = self.regs[lo] | ((self.regs[lo + 1] & 0x03) << 8)
        if count % 8 or self.highway is None or count // 8 >= self.highway.timeslots:
            return None
        return count // 8

    @property
    def tx_slot(self) -> int | None:
        """Timeslot the chip drives (phone -> firmware), None if PCM is off or invalid."""
        return self._slot(TXS_LO) if self.regs[PCM_MODE] & PCME else None

    @property
    def rx_slot(self) -> int | None:
        return self._slot(RXS_LO) if self.regs[PCM_MODE] & PCME else None

    def passes_audio(self) -> bool:
        return self._feed(self._t)[0] in (Feed.ACTIVE, Feed.ONHOOK_TX)

    def _plan_route(self) -> None:
        """Where audio goes from now until the chip's state changes (an SPI write forces
        the next tick to advance, which plans again)."""
        self._route, self._route_error = None, False
        if self.highway is None or self._was_in_reset or not self.passes_audio():
            return
        tx, rx = self.tx_slot, self.rx_slot
        if (self.regs[PCM_MODE] & PCMF_MASK) != 0 or tx is None or rx is None:
            self._route_error = True
            return
        self._route = (tx, rx)

    def tick(self) -> None:
        """One 20 ms frame: advance time, then move audio between timeslots and line."""
        now = self.clock()
        # nothing due by now since the last advance: advancing would change nothing
        if (
            now + EPS < self._quiet_until
            and self.line.hook.edits == self._hook_edits
            and not self.pins.in_reset()
        ):
            if now > self._t:
                self._t = now
        else:
            self.advance(now)
        from_phone = self.line.from_phone.take()
        route, highway = self._route, self.highway
        if route is None or highway is None:  # (a route is only planned with a highway)
            if self._route_error:
                self.pcm_errors += 1
            self.line.to_phone.deliver(IDLE_FRAME)
            return
        highway.device.write(route[0], from_phone)
        self.line.to_phone.deliver(highway.device.read(route[1]))

    def _on_pcm_tick(self, _slot: int, _frame: bytes) -> None:
        self.tick()

    # --- SPI -------------------------------------------------------------------------

    def exchange(self, data: bytes) -> bytes:
        now = self.clock()
        self.advance(now)
        if self._was_in_reset:
            return b"\xff" * len(data)
        if len(data) != 1:
            self.framing.errors += 1
            self.framing.reset()
            return b"\xff" * len(data)
        f = self.framing
        if not f.pending:
            f.pending.append(data[0])
            return b"\xff"
        control = f.pending[0]
        f.reset()
        reg = control & 0x7F
        if control & 0x80:
            return bytes([self.read(reg, now)])
        self.write(reg, data[0], now)
        return b"\xff"

    def read(self, reg: int, now: float) -> int:
        if reg == IAS:
            if self._ias_busy_reads:
                self._ias_busy_reads -= 1
                return 0x01
            return 0x00
        if reg == VBAT_SENSE:
            return self._vbat_code(now)
        if reg == LINEFEED:
            return (self._applied_state(now) << 4) | self.linefeed
        return self.regs[reg]

    def write(self, reg: int, value: int, now: float) -> None:
        if reg in READ_ONLY:
            return
        if reg in (IS1, IS2, IS3):
            self.regs[reg] &= ~value & 0xFF
        elif reg == PCM_MODE:
            self.regs[reg] = SI3215_MARK | (value & 0x7F)
        elif reg == IDA_HI:
            self.regs[reg] = value
            self._ida_written = True
        elif reg == IAA:
            self.regs[reg] = value
            self._indirect_access(value)
        elif reg == POWERDOWN:
            was_on = not self.regs[POWERDOWN] & PDN_DCDC
            self.regs[reg] = value
            on = not value & PDN_DCDC
            if on and not was_on:
                self._power_up_at = now
            elif was_on and not on:
                self._power_up_at = None
        elif reg == CAL:
            self.regs[reg] = value
            self._cal_done_at = now + CAL_S if value & CAL_START else None
            if value & CAL_START:
                self.calibrated = False
        elif reg == DCDC:
            self.regs[reg] = value
            if value & DCCAL:
                self._dcdc_cal_done_at = now + DCDC_CAL_S
        elif reg == LINEFEED:
            old = self.linefeed
            self.regs[reg] = value & 0x07
            if self.linefeed == LF_RING and old != LF_RING:
                self._ring_active = True
                active_s = self._timer(RAT_LO)
                timed = self.regs[RING_OSC_CTL] & (RTAE | RTIE) == (RTAE | RTIE)
                self._ring_phase_end = now + active_s if timed and active_s > 0 else None
            elif self.linefeed != LF_RING:
                self._ring_active = False
                self._ring_phase_end = None
        else:
            self.regs[reg] = value
        self._quiet_until = -math.inf  # deadlines, audio route: work them out again
        self._evaluate(now)

    def _indirect_access(self, address: int) -> None:
        if self._ida_written:
            self.indirect[address] = self.regs[IDA_LO] | (self.regs[IDA_HI] << 8)
        else:
            value = self.indirect[address]
            self.regs[IDA_LO], self.regs[IDA_HI] = value & 0xFF, value >> 8
        self._ida_written = False
        self._ias_busy_reads = 1  # the access takes a moment: the first status read says busy

    def describe(self) -> dict[str, object]:
        return {
            "chip": self.chip,
            "linefeed": self.linefeed,
            "calibrated": self.calibrated,
            "tx_slot": self.tx_slot,
            "rx_slot": self.rx_slot,
            "irq": self.pins.irq_asserted,
            "line": self.line.describe(),
        }
