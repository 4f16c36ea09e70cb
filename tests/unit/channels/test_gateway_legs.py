"""Gateway port legs end to end on the analog rig: virtual device <-> chip model <-> driver
<-> PortLeg <-> channel, with a recording CallControl standing in for the SIP side."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from unit.devices.bench import dominant_hz, tone
from unit.drivers.analog_rig import TICK, AnalogRig, Port

from board.sim.devices import AnalogPhone, PstnLine
from board.sim.devices.pstn_line import LineState
from firmware.core.analog_gateway import PortLeg, plan_ports
from firmware.core.channels import FxoChannel, FxsChannel, FxsState
from firmware.core.dialplan import DialPlan
from firmware.dsp import load_profile
from firmware.media.codecs.g711 import alaw_decode, alaw_encode

DK = load_profile("dk")


class Calls:
    def __init__(self) -> None:
        self.log: list[tuple[str, object]] = []
        self.sent: list[bytes] = []

    def place_call(self, leg: PortLeg, number: str, caller: str | None, slot: int) -> None:
        self.log.append(("place", (number, caller)))

    def answer_call(self, leg: PortLeg) -> None:
        self.log.append(("answer", None))

    def clear_call(self, leg: PortLeg, cause: int, slot: int) -> None:
        self.log.append(("clear", cause))

    def media(self, leg: PortLeg, connected: bool, slot: int) -> None:
        self.log.append(("media", connected))
        leg.media_out = self.sent.append if connected else None

    def hold(self, leg: PortLeg, slot: int) -> None:
        self.log.append(("hold", slot))

    def resume(self, leg: PortLeg, slot: int) -> None:
        self.log.append(("resume", slot))

    def transfer(self, leg: PortLeg, slot: int, number: str, replaces: int | None) -> None:
        self.log.append(("transfer", (slot, number, replaces)))


@pytest.fixture
def rig() -> Iterator[AnalogRig]:
    r = AnalogRig()
    try:
        yield r
    finally:
        r.close()


def run(rig: AnalogRig, port: Port, leg: PortLeg, seconds: float) -> None:
    seen = len(port.events)
    for _ in range(round(seconds / TICK)):
        rig.run(TICK)
        for _, event in port.events[seen:]:
            leg.on_event(event)
        seen = len(port.events)


def test_default_numbering_avoids_user_numbers() -> None:
    plans = plan_ports(["fxs2", "fxs1", "fxo1", "fxs3"], {"fxs3": ("300", None)}, ["102"])
    got = {p.name: (p.extension, p.destination) for p in plans}
    assert got == {
        "fxs1": ("101", None),
        "fxs2": ("8102", None),
        "fxs3": ("300", None),
        "fxo1": (None, "101"),
    }
    plans = plan_ports(["fxo1"], {"fxo1": (None, "201")}, [])
    assert plans[0].destination == "201"


def test_fxs_outgoing_call_dial_tone_digits_ringback_media_and_hangup(rig: AnalogRig) -> None:
    driver, _, line, port = rig.fxs()
    phone = AnalogPhone(line, DK)
    calls = Calls()
    ch = FxsChannel("fxs1", "101", DK, DialPlan(["101", "201"]), rig.clock)
    leg = PortLeg(ch, driver, rig.highway.firmware, 0, DK, calls)
    phone.off_hook()
    run(rig, port, leg, 2.0)
    assert phone.tone == "dial"
    phone.dial("201")
    run(rig, port, leg, 1.0)
    assert calls.log == [("place", ("201", "101"))]
    ch.remote_ringing()
    leg.run_actions()
    run(rig, port, leg, 6.0)
    assert phone.tone == "ringback"
    ch.remote_answered()
    leg.run_actions()
    far = tone(1000, 2.0)
    frames = [alaw_encode(far[i : i + 160]) for i in range(0, len(far), 160)]
    leg.media_in = lambda: frames.pop(0) if frames else None
    start = rig.clock()
    phone.say(tone(700, 1.0))
    run(rig, port, leg, 1.2)
    assert abs(dominant_hz(phone.heard(since=start + 0.2)) - 1000) < 10
    sent = alaw_decode(b"".join(calls.sent))
    assert abs(dominant_hz(sent) - 700) < 10
    phone.on_hook()
    run(rig, port, leg, 0.6)
    assert ("clear", 16) in calls.log and calls.log[-1] == ("media", False)
    assert ch.state is FxsState.IDLE and not leg.in_use


def test_fxs_incoming_caller_id_and_danish_ringing_then_answer(rig: AnalogRig) -> None:
    driver, _, line, port = rig.fxs()
    phone = AnalogPhone(line, DK)
    calls = Calls()
    ch = FxsChannel("fxs1", "101", DK, DialPlan(["101", "201"]), rig.clock)
    leg = PortLeg(ch, driver, rig.highway.firmware, 0, DK, calls)
    start = rig.clock()
    assert ch.incoming("4512345678")
    leg.run_actions()
    run(rig, port, leg, 8.0)
    assert phone.display == "4512345678"
    rings = phone.rings(since=start)
    assert len(rings) == 2
    (s1, e1), (s2, _) = rings
    assert e1 is not None and abs(e1 - s1 - 1.0) < 0.05 and abs(s2 - s1 - 5.0) < 0.05
    assert phone.calls[-1].at < s1  # caller ID came before the first ring
    phone.off_hook()
    run(rig, port, leg, 0.3)
    assert calls.log == [("answer", None), ("media", True)]
    assert not phone.ringing


def test_fxo_incoming_with_caller_id_routes_seizes_and_clears(rig: AnalogRig) -> None:
    driver, _, line, port = rig.fxo()
    pstn = PstnLine(line, DK)
    calls = Calls()
    ch = FxoChannel("fxo1", "101", DK, rig.clock)
    leg = PortLeg(ch, driver, rig.highway.firmware, 8, DK, calls)
    pstn.ring("4512345678")
    run(rig, port, leg, 3.0)
    assert calls.log == [("place", ("101", "4512345678"))]
    ch.remote_answered()
    leg.run_actions()
    run(rig, port, leg, 0.3)
    assert pstn.state is LineState.CONNECTED
    pstn.play(tone(1000, 0.5))
    run(rig, port, leg, 0.6)
    assert abs(dominant_hz(alaw_decode(b"".join(calls.sent))) - 1000) < 10
    pstn.hang_up()
    run(rig, port, leg, 1.5)
    assert calls.log[-1] == ("clear", 16)
    assert not leg.in_use and pstn.state is LineState.IDLE


def test_caller_id_still_gets_through_after_a_long_idle_both_ways(rig: AnalogRig) -> None:
    """Idle lines are skipped by the caller-ID receivers (phone display, FXO channel) once
    settled; the next caller ID is decoded all the same."""
    fxs_driver, _, fxs_line, fxs_port = rig.fxs()
    fxo_driver, _, fxo_line, fxo_port = rig.fxo()
    phone, pstn, calls = AnalogPhone(fxs_line, DK), PstnLine(fxo_line, DK), Calls()
    fxs = FxsChannel("fxs1", "101", DK, DialPlan(["101"]), rig.clock)
    fxo = FxoChannel("fxo1", "101", DK, rig.clock)
    fxs_leg = PortLeg(fxs, fxs_driver, rig.highway.firmware, 0, DK, calls)
    fxo_leg = PortLeg(fxo, fxo_driver, rig.highway.firmware, 8, DK, calls)

    def both(seconds: float) -> None:
        for _ in range(round(seconds / TICK)):
            run(rig, fxs_port, fxs_leg, TICK)
            for _, event in fxo_port.events:
                fxo_leg.on_event(event)
            fxo_port.events.clear()

    both(12.0)
    assert phone._cid.skipping and fxo._cid is not None and fxo._cid.skipping
    assert fxs.incoming("4512345678")
    fxs_leg.run_actions()
    pstn.ring("4587654321")
    both(3.0)
    assert phone.display == "4512345678"
    assert ("place", ("101", "4587654321")) in calls.log


def test_fxo_outgoing_dials_dtmf_down_the_line(rig: AnalogRig) -> None:
    driver, _, line, port = rig.fxo()
    pstn = PstnLine(line, DK)
    calls = Calls()
    ch = FxoChannel("fxo1", "101", DK, rig.clock, answer_supervision=True)
    leg = PortLeg(ch, driver, rig.highway.firmware, 8, DK, calls)
    assert ch.outgoing("88123456")
    leg.run_actions()
    run(rig, port, leg, 3.5)
    assert pstn.digits == "88123456"
    pstn.answer()
    run(rig, port, leg, 0.3)
    assert calls.log[:2] == [("answer", None), ("media", True)]
    assert np.all(np.abs(pstn.heard(since=rig.clock() - 0.1)) < 50)  # no tone after answer


def test_fxs_flash_on_the_wire_holds_consults_and_transfers(rig: AnalogRig) -> None:
    """The R key's timed break through the chip model and driver: hold + dial tone on
    the line, DTMF dials the consultation in slot 1, R returns, R + hang-up transfers."""
    driver, _, line, port = rig.fxs()
    phone = AnalogPhone(line, DK)
    calls = Calls()
    ch = FxsChannel("fxs1", "101", DK, DialPlan(["101", "201", "202"]), rig.clock)
    leg = PortLeg(ch, driver, rig.highway.firmware, 0, DK, calls)
    assert ch.incoming("201")
    leg.run_actions()
    phone.answer_after(1)
    run(rig, port, leg, 3.0)
    assert ch.state is FxsState.CONNECTED and leg.media_connected
    phone.flash()
    run(rig, port, leg, 2.0)
    assert calls.log[-2:] == [("media", False), ("hold", 0)]
    assert phone.tone == "dial" and not leg.media_connected
    phone.dial("202")
    run(rig, port, leg, 1.0)
    assert calls.log[-1] == ("place", ("202", "101"))
    ch.remote_ringing(1)
    leg.run_actions()
    run(rig, port, leg, 6.0)
    assert phone.tone == "ringback"
    phone.flash()  # back to 201: the consultation is cancelled
    run(rig, port, leg, 1.0)
    assert calls.log[-3:] == [("clear", 16), ("resume", 0), ("media", True)]
    assert ch.state is FxsState.CONNECTED and leg.media_connected and ch.held is None
    phone.flash()
    run(rig, port, leg, 1.5)
    phone.dial("202")
    run(rig, port, leg, 1.0)
    ch.remote_answered(1)
    leg.run_actions()
    phone.on_hook()
    run(rig, port, leg, 1.5)
    assert calls.log[-1] == ("transfer", (0, "202", 1))
    assert ch.state is FxsState.TRANSFERRING
    ch.transfer_result(True)
    leg.run_actions()
    assert calls.log[-2:] == [("clear", 16), ("clear", 16)]
    assert ch.state is FxsState.IDLE
