"""Timing parameters of the analog drivers, as plain numbers.

The country profile (firmware/dsp/countries) is mapped onto these by the core; the
drivers only see milliseconds and hertz. The defaults are Danish figures, each with
the reason it was chosen, so a driver built with no profile behaves like a Danish line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LCDI_MAX_MS = 127 * 1.25  # the ProSLIC's loop-closure debounce register is 7 bits of 1.25 ms
RING_TIMER_MAX_MS = 0xFFFF / 8  # ring active/inactive timers: 16 bits of 125 us


@dataclass(frozen=True)
class FxsTiming:
    """What the FXS (SLIC) driver needs to know about the line's timing."""

    # Loop-closure debounce, done by the chip (LCDI): shorter hook bounces never show.
    # 20 ms: above contact bounce of a hook switch (a few ms), far below the shortest
    # deliberate break the driver must see (the flash window's lower end).
    debounce_ms: float = 20.0
    # Hook flash / register recall window. ETSI ES 201 729 (timed break recall for
    # terminals) puts the R-key break near 100 ms, and PBXs commonly accept roughly
    # 70-125 ms for it; Danish practice follows the ETSI figure. The window is widened
    # to 80-300 ms so a flash made by hand on the hook switch also registers, while any
    # break longer than 300 ms is a hang-up and one shorter than 80 ms is a bounce.
    flash_min_ms: float = 80.0
    flash_max_ms: float = 300.0
    # Ring cadence as on/off pairs in ms. Denmark: 1 s ringing, 4 s pause (ITU-T E.180
    # Suppl. 2, Denmark; also the TDC figure).
    ring_cadence_ms: tuple[float, ...] = field(default=(1000.0, 4000.0))
    # Ringing frequency: 25 Hz in Denmark (ETSI EG 201 188 national annex; E.180 Suppl. 2).
    ring_frequency_hz: float = 25.0

    def __post_init__(self) -> None:
        if not 0 < self.debounce_ms <= LCDI_MAX_MS:
            raise ValueError(f"debounce_ms must be in (0, {LCDI_MAX_MS}], not {self.debounce_ms}")
        if not self.debounce_ms < self.flash_min_ms < self.flash_max_ms:
            raise ValueError(
                "need debounce_ms < flash_min_ms < flash_max_ms, got "
                f"{self.debounce_ms} / {self.flash_min_ms} / {self.flash_max_ms}"
            )
        check_cadence(self.ring_cadence_ms)
        if not 15.0 <= self.ring_frequency_hz <= 100.0:
            raise ValueError(f"ring_frequency_hz must be 15..100, not {self.ring_frequency_hz}")


def check_cadence(cadence: tuple[float, ...]) -> None:
    """A ring cadence is one or more (on, off) pairs of positive milliseconds."""
    if not cadence or len(cadence) % 2:
        raise ValueError(f"a ring cadence is (on, off) pairs in ms, got {cadence!r}")
    for ms in cadence:
        if not 0 < ms <= RING_TIMER_MAX_MS:
            raise ValueError(f"cadence step {ms} ms is outside (0, {RING_TIMER_MAX_MS:.0f}]")


@dataclass(frozen=True)
class FxoTiming:
    """What the FXO (DAA) driver needs to know about the exchange's signals."""

    # A ring burst must last this long to count. 400 ms: a Danish ring burst is 1 s, and
    # the ring-pulse alerting signal that may precede FSK caller ID (ETSI EN 300 659-1,
    # 200-300 ms) must not be taken for a ring.
    ring_validation_ms: float = 400.0
    # No ring voltage for this long ends a burst (the chip's ring timeout: 80 ms or a
    # multiple of 128 ms; rounded up). 128 ms spans several 25 Hz ring cycles.
    ring_end_ms: float = 128.0
    # No new burst within this long after one ended: the caller has stopped ringing.
    # Danish pause is 4 s; 6 s leaves room for a slow exchange.
    ring_cycle_timeout_ms: float = 6000.0
    # Loop current gone for this long while seized is a disconnect (clear-down). Chosen
    # value: longer than a register-recall break (<= 300 ms, see FxsTiming) that an
    # exchange or a PBX upstream may pass on, short enough to free the port promptly.
    disconnect_ms: float = 400.0
    # A polarity change must hold this long (line transients during ringing/answer).
    polarity_debounce_ms: float = 40.0
    # Ring frequencies accepted as ringing (ETSI: 25 and 50 Hz nationally; margin both ways).
    ring_frequency_min_hz: float = 15.0
    ring_frequency_max_hz: float = 68.0

    def __post_init__(self) -> None:
        if not 100.0 <= self.ring_validation_ms <= 3000.0:
            raise ValueError("ring_validation_ms must be 100..3000 (the chip counts from 100 ms)")
        if not 0 < self.ring_end_ms <= 1920.0:
            raise ValueError("ring_end_ms must be in (0, 1920]")
        if self.ring_cycle_timeout_ms <= self.ring_end_ms:
            raise ValueError("ring_cycle_timeout_ms must exceed ring_end_ms")
        if self.disconnect_ms <= 0 or self.polarity_debounce_ms < 0:
            raise ValueError("disconnect_ms must be positive, polarity_debounce_ms >= 0")
        if not 5.0 <= self.ring_frequency_min_hz < self.ring_frequency_max_hz <= 100.0:
            raise ValueError("need 5 <= ring_frequency_min_hz < ring_frequency_max_hz <= 100")
