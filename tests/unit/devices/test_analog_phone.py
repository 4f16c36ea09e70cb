"""AnalogPhone on a Si3215 model driven by the real FXS driver, fake clock, Danish profile."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from unit.devices.bench import dominant_hz, run_with_audio, tone
from unit.drivers.analog_rig import AnalogRig, events_of

from board.sim.devices.analog_phone import AnalogPhone, PhoneError
from drivers.analog_events import HookFlash, OffHook, OnHook
from firmware.dsp import CallerIdSender, DtmfReceiver, ToneGenerator, load_profile

DK = load_profile("dk")


@pytest.fixture
def rig() -> Iterator[AnalogRig]:
    r = AnalogRig()
    try:
        yield r
    finally:
        r.close()


def test_hook_switch_reaches_the_driver_with_flash(rig: AnalogRig) -> None:
    _, _, line, port = rig.fxs()
    phone = AnalogPhone(line, DK)
    phone.off_hook()
    rig.run(0.2)
    phone.flash(0.1)
    rig.run(0.6)
    phone.on_hook()
    rig.run(0.6)
    assert [type(e) for _, e in port.events] == [OffHook, HookFlash, OnHook]
    ((_, flash),) = events_of(port, HookFlash)
    assert isinstance(flash, HookFlash) and 80 <= flash.duration_ms <= 120
    with pytest.raises(PhoneError):
        phone.flash()  # on-hook


def test_keypad_sends_real_dtmf_that_a_receiver_decodes(rig: AnalogRig) -> None:
    _, _, line, _ = rig.fxs()
    phone = AnalogPhone(line, DK)
    phone.off_hook()
    rig.run(0.1)
    phone.dial("201#")
    audio = run_with_audio(rig, 0, 1.2)
    with DtmfReceiver() as rx:
        assert "".join(rx.feed(audio)) == "201#"
    assert not phone.sending
    with pytest.raises(PhoneError):
        phone.dial("12x")


def test_dialling_on_hook_is_refused(rig: AnalogRig) -> None:
    _, _, line, _ = rig.fxs()
    phone = AnalogPhone(line, DK)
    with pytest.raises(PhoneError):
        phone.dial("1")


def test_earpiece_records_and_recognizes_dial_tone(rig: AnalogRig) -> None:
    _, _, line, _ = rig.fxs()
    phone = AnalogPhone(line, DK)
    phone.off_hook()
    gen = ToneGenerator(DK.tone("dial"))
    start = rig.clock()
    run_with_audio(rig, 0, 2.0, send=gen.read)
    assert phone.tone == "dial"
    assert "dial" in [name for _, name in phone.tones]
    heard = phone.heard(since=start + 0.5)
    assert abs(dominant_hz(heard) - 425) < 5


def test_busy_tone_is_told_from_dial_tone(rig: AnalogRig) -> None:
    _, _, line, _ = rig.fxs()
    phone = AnalogPhone(line, DK)
    phone.off_hook()
    gen = ToneGenerator(DK.tone("busy"))
    run_with_audio(rig, 0, 3.0, send=gen.read)
    assert phone.tone == "busy"
    assert "dial" not in [name for _, name in phone.tones]


def test_display_decodes_dtmf_clip_and_rings_are_timed(rig: AnalogRig) -> None:
    driver, _, line, _ = rig.fxs()
    phone = AnalogPhone(line, DK)
    driver.set_onhook_transmission(True)
    rig.run(0.1)
    clip = CallerIdSender("dtmf").generate("4512345678")
    run_with_audio(rig, 0, len(clip) / 8000 + 0.1, send=clip)
    assert phone.display == "4512345678"
    start = rig.clock()
    driver.ring([1000.0, 4000.0])
    rig.run(11.0)
    periods = phone.rings(since=start)
    assert len(periods) >= 2
    (s1, e1), (s2, _) = periods[0], periods[1]
    assert e1 is not None
    assert abs((e1 - s1) - 1.0) < 0.05 and abs((s2 - s1) - 5.0) < 0.05


def test_answer_after_rings_lifts_the_handset_and_trips_ringing(rig: AnalogRig) -> None:
    driver, _, line, port = rig.fxs()
    phone = AnalogPhone(line, DK)
    phone.answer_after(2)
    driver.ring()
    rig.run(7.0)
    assert phone.is_off_hook and not phone.ringing
    assert len(phone.rings()) == 2
    assert list(events_of(port, OffHook))


def test_mouthpiece_carries_a_test_tone(rig: AnalogRig) -> None:
    _, _, line, _ = rig.fxs()
    phone = AnalogPhone(line, DK)
    phone.off_hook()
    rig.run(0.1)
    phone.say(tone(1000, 0.5))
    audio = run_with_audio(rig, 0, 0.6)
    loud = audio[np.abs(audio) > 1000]
    assert len(loud) > 1000
    assert abs(dominant_hz(audio) - 1000) < 10
