"""Call quality estimate for the CDR: the ITU-T G.107 E-model, simplified.

API::

    q = estimate("PCMA", loss_percent=1.0, one_way_delay_ms=80, plc=True)
    q.r, q.mos                          # R-factor (0-100) and MOS (1.0-4.5)
    r_to_mos(93.2) == 4.41              # the G.107 Annex B mapping

R = (Ro - Is) - Id - Ie,eff + A, with every parameter the box cannot measure (loudness
ratings, room noise, sidetone, quantizing units, echo loss) at its G.107 default, so
Ro - Is is the constant 93.35 and the default connection (no delay, no loss) scores the
well-known R = 93.2, MOS 4.41. What varies per call:

- Id, delay impairment from the one-way mouth-to-ear delay Ta (ms): Idd (absolute
  delay, with the default mT = 100 ms) plus talker echo Idte (TELR 65 dB, T = Ta) and
  listener echo Idle (WEPL 110 dB, Tr = 2 Ta), as G.107 §7.3 defines them.
- Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl), from the codec's equipment
  impairment Ie and packet-loss robustness Bpl (G.113 Appendix I): G.711 Ie = 0 with
  Bpl = 25.1 with concealment (G.711 Appendix I PLC) or 4.3 without. BurstR = 1 is
  random loss.
- G.722 at 64 kbit/s has Ie,wb = 13 on G.113's wideband scale (Appendix IV), where
  G.711 itself scores about 36 below the wideband maximum of 129; on this narrowband
  scale it is therefore no worse than G.711 (Ie = 0). The box also conceals lost
  G.722 frames with the same waveform PLC as G.711 (on the decoded 8 kHz audio), so
  it gets G.711's Bpl. L16 is uncompressed: Ie = 0, Bpl as G.711.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "DEFAULT_R",
    "IMPAIRMENTS",
    "CodecImpairment",
    "Quality",
    "delay_impairment",
    "effective_equipment_impairment",
    "estimate",
    "r_factor",
    "r_to_mos",
]

#: Ro - Is with all G.107 default parameters (Ro = 94.77, Is = 1.42).
RO_MINUS_IS = 93.35
_RO = 94.77  # basic signal-to-noise ratio at the defaults (used by the echo terms)
_TELR = 65.0  # talker echo loudness rating, dB (default)
_WEPL = 110.0  # weighted echo path loss, dB (default)
_NO = -61.18  # total noise power at the defaults, dBm0p
_RLR = 2.0  # receive loudness rating, dB (default)
_MT = 100.0  # delay sensitivity: ms before absolute delay starts to hurt (default)


@dataclass(frozen=True, slots=True)
class CodecImpairment:
    ie: float  # equipment impairment factor
    bpl_plc: float  # packet-loss robustness with concealment
    bpl_no_plc: float  # and without


_G711 = CodecImpairment(0.0, 25.1, 4.3)
IMPAIRMENTS: dict[str, CodecImpairment] = {
    "pcma": _G711,
    "pcmu": _G711,
    "g722": _G711,  # see the module docstring
    "l16": _G711,
}


@dataclass(frozen=True, slots=True)
class Quality:
    r: float
    mos: float


def _idd(ta: float) -> float:
    """Impairment from absolute one-way delay ``ta`` (ms), G.107 §7.3."""
    if ta <= _MT:
        return 0.0
    x = math.log10(ta / _MT) / math.log10(2)
    return 25.0 * (math.pow(1 + x**6, 1 / 6) - 3 * math.pow(1 + (x / 3) ** 6, 1 / 6) + 2)


def _idte(t: float) -> float:
    """Talker echo impairment at mean one-way echo path delay ``t`` (ms)."""
    roe = -1.5 * (_NO - _RLR)
    terv = _TELR - 40 * math.log10((1 + t / 10) / (1 + t / 150)) + 6 * math.exp(-0.3 * t**2)
    re = 80 + 2.5 * (terv - 14)
    return ((roe - re) / 2 + math.sqrt((roe - re) ** 2 / 4 + 100) - 1) * (1 - math.exp(-t))


def _idle(tr: float) -> float:
    """Listener echo impairment at round-trip delay ``tr`` (ms)."""
    rle = 10.5 * (_WEPL + 7) * math.pow(tr + 1, -0.25)
    return (_RO - rle) / 2 + math.sqrt((_RO - rle) ** 2 / 4 + 169)


def delay_impairment(one_way_delay_ms: float) -> float:
    """Id for a one-way mouth-to-ear delay (echo paths at their defaults)."""
    if one_way_delay_ms < 0:
        raise ValueError("delay cannot be negative")
    t = one_way_delay_ms
    return _idte(t) + _idle(2 * t) + _idd(t)


def effective_equipment_impairment(
    ie: float, bpl: float, loss_percent: float, burst_ratio: float = 1.0
) -> float:
    """Ie,eff: the codec's impairment grown by packet loss (G.107 §7.4)."""
    if not 0 <= loss_percent <= 100:
        raise ValueError(f"loss {loss_percent}% outside 0-100")
    if burst_ratio < 1 or bpl <= 0:
        raise ValueError("burst ratio must be >= 1 and Bpl positive")
    return ie + (95 - ie) * loss_percent / (loss_percent / burst_ratio + bpl)


def r_factor(
    codec: str = "PCMA",
    loss_percent: float = 0.0,
    one_way_delay_ms: float = 0.0,
    *,
    plc: bool = True,
    burst_ratio: float = 1.0,
    advantage: float = 0.0,
) -> float:
    """The transmission rating R (clamped to 0-100) of a call's direction."""
    impairment = IMPAIRMENTS.get(codec.lower())
    if impairment is None:
        raise ValueError(f"no E-model figures for codec {codec!r}")
    bpl = impairment.bpl_plc if plc else impairment.bpl_no_plc
    ie_eff = effective_equipment_impairment(impairment.ie, bpl, loss_percent, burst_ratio)
    r = RO_MINUS_IS - delay_impairment(one_way_delay_ms) - ie_eff + advantage
    return max(0.0, min(100.0, r))


def r_to_mos(r: float) -> float:
    """MOS (conversational quality estimate) from R, G.107 Annex B."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6


def estimate(
    codec: str = "PCMA",
    loss_percent: float = 0.0,
    one_way_delay_ms: float = 0.0,
    *,
    plc: bool = True,
    burst_ratio: float = 1.0,
) -> Quality:
    """R-factor and MOS together, for the CDR."""
    r = r_factor(codec, loss_percent, one_way_delay_ms, plc=plc, burst_ratio=burst_ratio)
    return Quality(round(r, 1), round(r_to_mos(r), 2))


#: R of the G.107 default connection (no delay, no loss, G.711).
DEFAULT_R = r_factor()
