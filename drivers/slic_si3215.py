"""FXS driver for the Si3215 ProSLIC, over python-periphery shaped SPI and GPIO.

Sans-I/O: the driver holds no sockets or timers. ``init_steps()`` is the bring-up
sequence as a generator of waits (reset, chip check, ring oscillator, DC-DC power-up,
calibration, PCM, interrupts, idle linefeed); ``handle_interrupt(now)`` serves INT;
``poll(now)`` runs the driver's timers; ``take_events()`` hands out what happened.
``PortRunner`` (drivers.analog_events) runs it on asyncio.

Hook handling: the chip debounces loop closure itself (LCDI = ``debounce_ms``), so a
shorter bounce never reaches the driver. An on-hook period is then classified when
it ends: shorter than ``flash_min_ms`` is ignored, up to ``flash_max_ms`` is a
``HookFlash``; an on-hook lasting past ``flash_max_ms`` is an ``OnHook``.
"""

from __future__ import annotations

import errno
import math
from collections.abc import Callable, Sequence

from .analog_events import (
    AnalogEvent,
    ChipError,
    Clock,
    GpioLine,
    HookFlash,
    OffHook,
    OnHook,
    SpiDevice,
    Steps,
)
from .line_timing import FxsTiming, check_cadence

# direct registers (Si3215)
REG_ID = 0
REG_PCM_MODE = 1
REG_TXS_LO, REG_TXS_HI, REG_RXS_LO, REG_RXS_HI = 2, 3, 4, 5
REG_LOOPBACK = 8
REG_HYBRID = 11
REG_POWERDOWN = 14
REG_IS1, REG_IS2, REG_IS3 = 18, 19, 20
REG_IE1, REG_IE2, REG_IE3 = 21, 22, 23
REG_IDA_LO, REG_IDA_HI, REG_IAA, REG_IAS = 28, 29, 30, 31
REG_RING_OSC_CTL = 34
REG_RAT_LO, REG_RAT_HI, REG_RIT_LO, REG_RIT_HI = 48, 49, 50, 51
REG_LINEFEED = 64
REG_LOOP_STATUS = 68
REG_LCDI = 69
REG_RTDI = 70
REG_VBATH = 74
REG_VBAT_SENSE = 82
REG_DCDC_PERIOD = 92
REG_DCDC = 93
REG_CAL = 96
REG_CAL_SELECT = 97

SI3215_MARK = 0x80
PCME = 0x20  # A-law is PCMF = 00
RTAE, RTIE = 0x10, 0x08
LCR, RTP = 0x01, 0x02
IS2_LCIP, IS2_RTIP = 0x02, 0x01
CAL_ALL, CAL_START = 0x1F, 0x40
DCCAL = 0x80

# indirect registers, Si3215 numbering
IND_RING_OFFSET, IND_RCO, IND_RNGX, IND_RNGY = 6, 7, 8, 9

LF_OPEN, LF_FWD, LF_FWD_OHT, LF_RING, LF_REV, LF_REV_OHT = 0, 1, 2, 4, 5, 6

VBATH_CODE = 0x32  # 75 V high battery (1.5 V/bit)
VBAT_READY = 0xC0  # reg 82 (376 mV/bit): about 72 V
RING_VPK = 70.0
POWER_TIMEOUT_S = 0.5
CAL_TIMEOUT_S = 2.0
POLL_S = 0.01
IAS_TRIES = 100
MAX_TIMESLOT = 127  # 10-bit start count / 8 bits per A-law sample


class SlicError(ChipError):
    """The ProSLIC is missing, is not a Si3215, or failed a step of its bring-up."""


def ring_oscillator(frequency_hz: float, vpk: float) -> tuple[int, int]:
    """RCO and RNGX for sine ringing: the oscillator runs at 1 kHz, amplitude vs. 96 V."""
    coeff = math.cos(2 * math.pi * frequency_hz / 1000.0)
    rco = round(coeff * 32768)
    rngx = round(0.25 * math.sqrt((1 - coeff) / (1 + coeff)) * (vpk / 96.0) * 32768)
    return rco, rngx


class SlicSi3215:
    """One FXS port: a Si3215 behind an SPI chip select, INT and RESET on GPIO lines."""

    def __init__(
        self,
        spi: SpiDevice,
        clock: Clock,
        *,
        port: str = "fxs",
        timeslot: int = 0,
        timing: FxsTiming | None = None,
        irq: GpioLine | None = None,
        reset: GpioLine | None = None,
        ring_vpk: float = RING_VPK,
    ) -> None:
        self.spi = spi
        self.clock = clock
        self.port = port
        self.timing = timing or FxsTiming()
        self.irq = irq
        self.reset = reset
        self.ring_vpk = ring_vpk
        self._check_slot(timeslot)
        self.timeslot = timeslot
        self.ready = False
        self.reversed = False
        self.onhook_transmission = False
        self.open_loop = False
        self._events: list[AnalogEvent] = []
        # hook state as reported, and the open break (on-hook) being timed
        self.off_hook = False
        self._break_at: float | None = None
        # ringing
        self.ringing = False
        self._cadence: tuple[float, ...] = ()
        self._soft_step = 0
        self._soft_next: float | None = None
        self._trip_check_at: float | None = None

    # --- register access -----------------------------------------------------------

    def read(self, reg: int) -> int:
        self.spi.transfer(bytes([0x80 | reg]))
        return self.spi.transfer(b"\x00")[0]

    def write(self, reg: int, value: int) -> None:
        self.spi.transfer(bytes([reg & 0x7F]))
        self.spi.transfer(bytes([value & 0xFF]))

    def _wait_indirect(self) -> None:
        for _ in range(IAS_TRIES):
            if not self.read(REG_IAS) & 0x01:
                return
        raise SlicError(self.port, REG_IAS, 1, errno.ETIMEDOUT, "indirect access stuck busy")

    def write_indirect(self, address: int, value: int) -> None:
        self._wait_indirect()
        self.write(REG_IDA_LO, value & 0xFF)
        self.write(REG_IDA_HI, (value >> 8) & 0xFF)
        self.write(REG_IAA, address)

    def read_indirect(self, address: int) -> int:
        self._wait_indirect()
        self.write(REG_IAA, address)
        self._wait_indirect()
        return self.read(REG_IDA_LO) | (self.read(REG_IDA_HI) << 8)

    def _fail(self, reg: int | str, value: int | None, code: int, why: str) -> SlicError:
        return SlicError(self.port, reg, value, code, why)

    # --- bring-up ---------------------------------------------------------------------

    def init_steps(self) -> Steps:
        """Reset, check, configure, power up and calibrate; yields seconds to wait."""
        self.ready = False
        if self.reset is not None:
            self.reset.write(False)
            yield 0.010
            self.reset.write(True)
            yield 0.010
        self._check_identity()
        for reg in (REG_IE1, REG_IE2, REG_IE3):
            self.write(reg, 0x00)
        self.write(REG_LINEFEED, LF_OPEN)
        self.write(REG_LOOPBACK, 0x00)
        self.write(REG_VBATH, VBATH_CODE)
        self.write(REG_LCDI, max(1, round(self.timing.debounce_ms / 1.25)))
        self.write(REG_RTDI, max(1, round(self.timing.debounce_ms / 1.25)))
        self._program_ring_oscillator()
        # DC-DC converter up, wait for the high battery
        self.write(REG_DCDC_PERIOD, 0xFF)
        self.write(REG_POWERDOWN, 0x00)
        yield from self._wait_for(
            REG_VBAT_SENSE,
            lambda v: v >= VBAT_READY,
            POWER_TIMEOUT_S,
            "DC-DC converter did not bring the battery up",
        )
        # calibrations, then the DC-DC calibration
        self.write(REG_CAL_SELECT, CAL_ALL)
        self.write(REG_CAL, CAL_START | CAL_ALL)
        yield from self._wait_for(REG_CAL, lambda v: v == 0, CAL_TIMEOUT_S, "calibration")
        self.write(REG_DCDC, DCCAL | 0x19)
        yield from self._wait_for(
            REG_DCDC, lambda v: not v & DCCAL, CAL_TIMEOUT_S, "DC-DC calibration"
        )
        self.assign_timeslot(self.timeslot)
        for reg in (REG_IS1, REG_IS2, REG_IS3):
            self.write(reg, 0xFF)
        self.write(REG_IE2, IS2_LCIP | IS2_RTIP)
        self.ready = True
        self._apply_idle()
        applied = self.read(REG_LINEFEED) >> 4 & 0x07
        if applied != LF_FWD:
            raise self._fail(REG_LINEFEED, applied, errno.EIO, "linefeed not applied after init")
        now = self.clock()
        self.off_hook = bool(self.read(REG_LOOP_STATUS) & LCR)
        if self.off_hook:
            self._events.append(OffHook(self.port, now))

    def _check_identity(self) -> None:
        ident = self.read(REG_ID)
        revision = ident & 0x0F
        if revision in (0x0, 0xF):
            raise self._fail(REG_ID, ident, errno.ENODEV, "no ProSLIC answers on this chip select")
        mode = self.read(REG_PCM_MODE)
        if not mode & SI3215_MARK:
            raise self._fail(REG_PCM_MODE, mode, errno.ENODEV, "ProSLIC is not a Si3215")
        for reg, expect in ((REG_LOOPBACK, 0x02), (REG_HYBRID, 0x33)):
            value = self.read(reg)
            if value != expect:
                raise self._fail(
                    reg, value, errno.EIO, f"not in reset state (expected 0x{expect:02x})"
                )

    def _program_ring_oscillator(self) -> None:
        rco, rngx = ring_oscillator(self.timing.ring_frequency_hz, self.ring_vpk)
        wanted = {IND_RING_OFFSET: 0, IND_RCO: rco, IND_RNGX: rngx, IND_RNGY: 0}
        for address, value in wanted.items():
            self.write_indirect(address, value)
        for address, value in wanted.items():
            got = self.read_indirect(address)
            if got != value:
                raise self._fail(
                    f"indirect {address}", got, errno.EIO, "indirect register readback"
                )

    def _wait_for(self, reg: int, done: Callable[[int], bool], timeout: float, what: str) -> Steps:
        deadline = self.clock() + timeout
        while True:
            value = self.read(reg)
            if done(value):
                return
            if self.clock() >= deadline:
                raise self._fail(reg, value, errno.ETIMEDOUT, f"{what}: timed out")
            yield POLL_S

    # --- PCM --------------------------------------------------------------------------

    @staticmethod
    def _check_slot(slot: int) -> None:
        if not isinstance(slot, int) or isinstance(slot, bool) or not 0 <= slot <= MAX_TIMESLOT:
            raise ValueError(f"timeslot must be 0..{MAX_TIMESLOT}, not {slot!r}")

    def assign_timeslot(self, slot: int) -> None:
        """Send and receive on PCM timeslot ``slot`` (A-law, 8 bits per slot)."""
        self._check_slot(slot)
        count = slot * 8
        self.write(REG_PCM_MODE, 0x00)  # PCM off while the start counts change
        self.write(REG_TXS_LO, count & 0xFF)
        self.write(REG_TXS_HI, count >> 8)
        self.write(REG_RXS_LO, count & 0xFF)
        self.write(REG_RXS_HI, count >> 8)
        self.write(REG_PCM_MODE, PCME)
        self.timeslot = slot

    # --- linefeed -----------------------------------------------------------------------

    def _require_ready(self) -> None:
        if not self.ready:
            raise self._fail(REG_LINEFEED, None, errno.EAGAIN, "port not initialised")

    def _idle_code(self) -> int:
        if self.onhook_transmission and not self.off_hook:
            return LF_REV_OHT if self.reversed else LF_FWD_OHT
        return LF_REV if self.reversed else LF_FWD

    def _apply_idle(self) -> None:
        self.write(REG_LINEFEED, LF_OPEN if self.open_loop else self._idle_code())

    def set_polarity(self, reversed_polarity: bool) -> None:
        """Reverse (True) or restore the battery polarity, e.g. answer/clear signalling."""
        self._require_ready()
        self.reversed = bool(reversed_polarity)
        if not self.ringing:
            self._apply_idle()

    def set_onhook_transmission(self, enabled: bool) -> None:
        """Pass audio while on-hook (caller ID, message waiting) instead of plain idle."""
        self._require_ready()
        self.onhook_transmission = bool(enabled)
        if not self.ringing:
            self._apply_idle()

    def set_open_loop(self, enabled: bool) -> None:
        """Remove the battery (a disconnect signal); hook changes are not reported meanwhile."""
        self._require_ready()
        if enabled and self.ringing:
            self.stop_ring()
        self.open_loop = bool(enabled)
        self._apply_idle()
        if not enabled:
            self._resync_hook(self.clock())

    # --- ringing ------------------------------------------------------------------------

    def ring(self, cadence_ms: Sequence[float] | None = None) -> None:
        """Ring with ``cadence_ms`` (on/off pairs; default from the timing) until stopped.

        A single on/off pair runs on the chip's own ring timers; longer cadences are
        stepped by the driver between ringing and on-hook transmission.
        """
        self._require_ready()
        cadence = tuple(float(ms) for ms in (cadence_ms or self.timing.ring_cadence_ms))
        check_cadence(cadence)
        if self.off_hook:
            raise self._fail(REG_LOOP_STATUS, LCR, errno.EBUSY, "cannot ring an off-hook phone")
        if self.open_loop:
            raise self._fail(REG_LINEFEED, LF_OPEN, errno.EBUSY, "loop is open")
        self._cadence = cadence
        self.ringing = True
        self._trip_check_at = None
        self._start_cadence(self.clock())

    def _start_cadence(self, now: float) -> None:
        cadence = self._cadence
        if len(cadence) == 2:
            on, off = (round(ms * 8) for ms in cadence)
            self.write(REG_RAT_LO, on & 0xFF)
            self.write(REG_RAT_HI, on >> 8)
            self.write(REG_RIT_LO, off & 0xFF)
            self.write(REG_RIT_HI, off >> 8)
            self.write(REG_RING_OSC_CTL, RTAE | RTIE)
            self._soft_next = None
        else:
            self.write(REG_RING_OSC_CTL, 0x00)  # continuous while in the ringing state
            self._soft_step = 0
            self._soft_next = now + cadence[0] / 1000.0
        self.write(REG_LINEFEED, LF_RING)

    def stop_ring(self) -> None:
        if not self.ringing:
            return
        self.ringing = False
        self._soft_next = None
        self._trip_check_at = None
        self._apply_idle()
        self.write(REG_RING_OSC_CTL, 0x00)

    def _step_soft_cadence(self, now: float) -> None:
        while self._soft_next is not None and now >= self._soft_next:
            self._soft_step = (self._soft_step + 1) % len(self._cadence)
            ringing_step = self._soft_step % 2 == 0
            self.write(REG_LINEFEED, LF_RING if ringing_step else LF_FWD_OHT)
            self._soft_next += self._cadence[self._soft_step] / 1000.0

    # --- events ---------------------------------------------------------------------

    def handle_interrupt(self, now: float) -> None:
        """Serve INT: read and clear the interrupt status, act on loop closure / ring trip."""
        status = [self.read(reg) for reg in (REG_IS1, REG_IS2, REG_IS3)]
        for reg, value in zip((REG_IS1, REG_IS2, REG_IS3), status, strict=True):
            if value:
                self.write(reg, value)
        is2 = status[1]
        if is2 & IS2_RTIP and self.ringing:
            # Ring trip: take the ring voltage off at once; loop closure then confirms.
            self._soft_next = None
            self.write(REG_LINEFEED, LF_REV if self.reversed else LF_FWD)
            self._trip_check_at = now + 2 * self.timing.debounce_ms / 1000.0 + 0.02
        if is2 & (IS2_LCIP | IS2_RTIP):
            self._resync_hook(now)

    def _resync_hook(self, now: float) -> None:
        if self.open_loop:
            return
        closed = bool(self.read(REG_LOOP_STATUS) & LCR)
        self._loop_changed(closed, now)

    def _loop_changed(self, closed: bool, now: float) -> None:
        if closed:
            if self._break_at is not None:
                length_ms = (now - self._break_at) * 1000.0
                at, self._break_at = self._break_at, None
                if length_ms >= self.timing.flash_min_ms:
                    self._events.append(HookFlash(self.port, at, length_ms))
                return  # shorter: a bounce the chip's debounce let through
            if not self.off_hook:
                self.off_hook = True
                if self.ringing:
                    self.ringing = False
                    self._soft_next = None
                    self._trip_check_at = None
                    self.write(REG_RING_OSC_CTL, 0x00)
                self._apply_idle()
                self._events.append(OffHook(self.port, now))
        elif self.off_hook and self._break_at is None:
            self._break_at = now

    def poll(self, now: float) -> None:
        """Run the driver's timers: hang-up after the flash window, soft cadence, ring trip."""
        if self._break_at is not None and now >= self._break_at + self.timing.flash_max_ms / 1000:
            at, self._break_at = self._break_at, None
            self.off_hook = False
            self._apply_idle()
            self._events.append(OnHook(self.port, at))
        if self.ringing:
            self._step_soft_cadence(now)
        if self._trip_check_at is not None and now >= self._trip_check_at:
            self._trip_check_at = None
            if self.ringing and not self.off_hook:
                self._start_cadence(now)  # the trip was a glitch: ring on

    def next_deadline(self) -> float | None:
        times = [
            t
            for t in (
                None
                if self._break_at is None
                else self._break_at + self.timing.flash_max_ms / 1000,
                self._soft_next if self.ringing else None,
                self._trip_check_at,
            )
            if t is not None
        ]
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
