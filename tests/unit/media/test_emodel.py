"""E-model (ITU-T G.107): reference values, loss and delay behaviour, MOS mapping."""

from __future__ import annotations

import itertools

import pytest

from firmware.media.emodel import (
    DEFAULT_R,
    delay_impairment,
    effective_equipment_impairment,
    estimate,
    r_factor,
    r_to_mos,
)


def test_default_connection() -> None:
    """G.107: all parameters at their defaults give R = 93.2, MOS 4.41."""
    assert pytest.approx(93.2, abs=0.05) == DEFAULT_R
    assert r_to_mos(93.2) == pytest.approx(4.41, abs=0.005)
    assert estimate() == estimate("PCMU")
    assert estimate().r == 93.2 and estimate().mos == 4.41


@pytest.mark.parametrize(
    ("r", "mos"),
    [
        (-5, 1.0),
        (0, 1.0),
        (50, 2.58),
        (60, 3.1),
        (70, 3.6),
        (80, 4.02),
        (90, 4.34),
        (100, 4.5),
        (120, 4.5),
    ],
)
def test_r_to_mos(r: float, mos: float) -> None:
    assert r_to_mos(r) == pytest.approx(mos, abs=0.01)


def test_loss_with_and_without_plc() -> None:
    # G.711 Bpl 4.3 without PLC: 1 % random loss costs 95/5.3 = 17.9 R points.
    assert effective_equipment_impairment(0, 4.3, 1.0) == pytest.approx(17.92, abs=0.01)
    assert effective_equipment_impairment(0, 25.1, 1.0) == pytest.approx(3.64, abs=0.01)
    assert r_factor("PCMA", 1.0, plc=False) == pytest.approx(DEFAULT_R - 17.92, abs=0.01)
    assert r_factor("PCMA", 1.0) == pytest.approx(DEFAULT_R - 3.64, abs=0.01)
    # Bursty loss hurts more than the same random loss.
    assert r_factor("PCMA", 2.0, burst_ratio=2.0) < r_factor("PCMA", 2.0)
    # 100 % loss: Ie,eff -> 95 * 100 / (100 + Bpl), far below any usable call.
    assert estimate("PCMA", 100.0).mos < 1.5


def test_delay_impairment_shape() -> None:
    # Within 100 ms only the (small) echo terms count.
    assert delay_impairment(0) < 0.2 and delay_impairment(100) < 3
    # Cole & Rosenbluth's fit of G.107 (0.024 d + 0.11 (d - 177.3)) agrees around 150-300 ms.
    for d in (150, 200, 250, 300):
        fit = 0.024 * d + 0.11 * max(0.0, d - 177.3)
        assert delay_impairment(d) == pytest.approx(fit, abs=1.0)
    values = [delay_impairment(d) for d in range(0, 800, 25)]
    assert all(b >= a for a, b in itertools.pairwise(values))
    # G.114: beyond ~400 ms one-way, most users are dissatisfied (R < 70 even without loss).
    assert r_factor("PCMA", 0, 400) < 70 < r_factor("PCMA", 0, 250)


def test_g722_and_l16_known() -> None:
    assert r_factor("G722") == pytest.approx(DEFAULT_R)
    assert r_factor("L16", 3.0) == pytest.approx(r_factor("PCMA", 3.0))


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        r_factor("G729")
    with pytest.raises(ValueError):
        r_factor("PCMA", 120)
    with pytest.raises(ValueError):
        delay_impairment(-1)
    with pytest.raises(ValueError):
        effective_equipment_impairment(0, 4.3, 1, burst_ratio=0.5)
