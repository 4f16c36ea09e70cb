"""Hook flash on an analog port end to end: the real daemon on the sim board, its
virtual phone on fxs1 (101) driven through `skillepunkt sim`, pjsua2 phones 201 and 202.

201 calls fxs1 and the virtual phone answers; R (flash) holds 201, who hears the box's
music; the phone dials 202 (auto-answer) as a consultation call; then either hanging
up transfers (201 and 202 talk, fxs1 holds nothing any more) or R again ends the
consultation and brings 201 back to the analog phone. Hanging up while the
consultation still rings (203, answered by hand) is a blind transfer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.test_analog import assert_released, device, heard_frequency, in_use, sim, wait_until
from peers.audio import frequencies_heard, tone_wav
from peers.box import Daemon, free_port, start_daemon, stop_daemon
from peers.pjsua import PjPhone

from firmware.localapi import request

pytestmark = [pytest.mark.peer, pytest.mark.slow]

CONFIG = """
users:
  - {extension: "201", name: Anne, sip_password: "pass-201-secret"}
  - {extension: "202", name: Bo, sip_password: "pass-202-secret"}
  - {extension: "203", name: Cai, sip_password: "pass-203-secret"}
"""
MUSIC = (440.0, 523.0, 659.0, 784.0)  # the box's built-in music on hold


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = start_daemon(tmp_path_factory.mktemp("analog-transfer"), CONFIG)
    try:
        d.wait_healthy()
        yield d
    finally:
        stop_daemon(d)


@pytest.fixture
def phones(box: Daemon) -> Iterator[dict[str, PjPhone]]:
    domain = f"127.0.0.1:{box.sip_port}"
    started: dict[str, PjPhone] = {}
    try:
        for ext in ("201", "202"):
            started[ext] = PjPhone(
                domain=domain, user=ext, password=f"pass-{ext}-secret", port=free_port(),
                register=True, auto_answer=ext == "202",
            )  # fmt: skip
        for phone in started.values():
            phone.wait_for("reg_state", code=200)
        yield started
    finally:
        for phone in started.values():
            phone.close()


def stats(box: Daemon) -> dict[str, Any]:
    return dict(request(box.data, "GET", "/api/v1/analog")["stats"])


def port_state(box: Daemon) -> str:
    return str(request(box.data, "GET", "/api/v1/analog")["ports"]["fxs1"]["state"])


def anne_calls_fxs1(box: Daemon, anne: PjPhone) -> None:
    anne.send("call", uri=f"sip:101@127.0.0.1:{box.sip_port}")
    wait_until(lambda: device(box, "fxs1")["ringing"], timeout=15)
    sim(box, "phone", "fxs1", "offhook")
    anne.wait_for("call_state", state="CONFIRMED")
    wait_until(lambda: port_state(box) == "connected", timeout=5)


def consult_202(box: Daemon, bo: PjPhone) -> None:
    """R, dial tone, 202 dialled by DTMF and answered by its auto-answer."""
    sim(box, "phone", "fxs1", "flash")
    wait_until(lambda: device(box, "fxs1")["tone"] == "dial", timeout=5)
    sim(box, "phone", "fxs1", "dial", "202")
    incoming = bo.wait_for("incoming", timeout=15)
    assert incoming["remote"].startswith("<sip:101@"), incoming
    bo.wait_for("call_state", state="CONFIRMED")
    wait_until(lambda: port_state(box) == "connected", timeout=5)
    assert in_use(box)["calls"] == 2 and in_use(box)["rtp_ports"] == 2


def near(f: float, targets: tuple[float, ...], within: float = 12.0) -> bool:
    return any(abs(f - t) < within for t in targets)


def test_hang_up_during_consultation_transfers_201_to_202(
    box: Daemon, phones: dict[str, PjPhone], tmp_path: Path
) -> None:
    anne, bo = phones["201"], phones["202"]
    tone, recorded = tmp_path / "tone.wav", tmp_path / "heard-by-202.wav"
    tone_wav(tone, 1000.0, 30.0)
    anne.send("play", wav=str(tone))
    bo.send("record", wav=str(recorded))
    before = stats(box)
    anne_calls_fxs1(box, anne)
    consult_202(box, bo)
    time.sleep(2.0)  # 202 talks to the analog phone (silence) for a while
    sim(box, "phone", "fxs1", "onhook")  # omstilling
    assert_released(box)  # no channel, call, RTP port or timeslot left on fxs1
    after = stats(box)
    assert after["transfers"] == before["transfers"] + 1 and after["holds"] == before["holds"] + 1
    time.sleep(3.0)  # 201 and 202 now talk through the box
    bo.send("hangup")
    anne.wait_for("call_state", state="DISCONNECTED", timeout=10)
    bo.close()  # writes the WAV header
    heard = frequencies_heard(recorded)
    assert sum(near(f, (1000.0,)) for f in heard[-6:]) >= 4, heard  # 201's tone, at the end
    first = next(i for i, f in enumerate(heard) if near(f, (1000.0,)))
    assert first >= 3, heard  # not before the transfer (202 first talked to the analog phone)


def test_second_flash_ends_consultation_and_returns_to_201(
    box: Daemon, phones: dict[str, PjPhone], tmp_path: Path
) -> None:
    anne, bo = phones["201"], phones["202"]
    tone = tmp_path / "tone.wav"
    tone_wav(tone, 1000.0, 30.0)
    anne_calls_fxs1(box, anne)
    consult_202(box, bo)
    sim(box, "phone", "fxs1", "flash")  # back to 201
    bo.wait_for("call_state", state="DISCONNECTED", timeout=10)
    wait_until(lambda: in_use(box)["calls"] == 1 and in_use(box)["rtp_ports"] == 1, timeout=5)
    assert port_state(box) == "connected"
    anne.send("play", wav=str(tone))
    time.sleep(3.0)
    assert abs(heard_frequency(box, "fxs1", tmp_path) - 1000) < 60  # 201 on the earpiece
    sim(box, "phone", "fxs1", "onhook")
    anne.wait_for("call_state", state="DISCONNECTED", timeout=10)
    assert_released(box)


def test_held_201_hears_music_on_hold(
    box: Daemon, phones: dict[str, PjPhone], tmp_path: Path
) -> None:
    anne = phones["201"]
    recorded = tmp_path / "heard-by-201.wav"
    anne.send("record", wav=str(recorded))
    anne_calls_fxs1(box, anne)
    time.sleep(1.0)
    sim(box, "phone", "fxs1", "flash")  # hold: dial tone here, music there
    wait_until(lambda: device(box, "fxs1")["tone"] == "dial", timeout=5)
    time.sleep(4.0)
    sim(box, "phone", "fxs1", "flash")  # back from dial tone without dialling
    wait_until(lambda: port_state(box) == "connected", timeout=5)
    time.sleep(2.0)
    sim(box, "phone", "fxs1", "onhook")
    anne.wait_for("call_state", state="DISCONNECTED", timeout=10)
    assert_released(box)
    anne.close()
    heard = frequencies_heard(recorded, window=0.2)
    notes = {t for f in heard for t in MUSIC if abs(f - t) < 15}
    assert len(notes) >= 3, heard  # the melody's notes, not a single tone
    music = [i for i, f in enumerate(heard) if near(f, MUSIC, 15)]
    assert len(music) >= 8, heard  # seconds of it, while held
    assert music[-1] < len(heard) - 5, heard  # and it stops with the resume


def test_hang_up_while_consultation_rings_is_a_blind_transfer(
    box: Daemon, phones: dict[str, PjPhone], tmp_path: Path
) -> None:
    anne = phones["201"]
    cai = PjPhone(domain=f"127.0.0.1:{box.sip_port}", user="203", password="pass-203-secret",
                  port=free_port(), register=True)  # fmt: skip
    try:
        cai.wait_for("reg_state", code=200)
        tone, recorded = tmp_path / "tone.wav", tmp_path / "heard-by-203.wav"
        tone_wav(tone, 1000.0, 30.0)
        anne.send("play", wav=str(tone))
        cai.send("record", wav=str(recorded))
        before = stats(box)
        anne_calls_fxs1(box, anne)
        sim(box, "phone", "fxs1", "flash")
        wait_until(lambda: device(box, "fxs1")["tone"] == "dial", timeout=5)
        sim(box, "phone", "fxs1", "dial", "203")
        first = cai.wait_for("incoming", timeout=15)
        assert first["remote"].startswith("<sip:101@"), first
        sim(box, "phone", "fxs1", "onhook")  # still ringing: CANCEL, then REFER blind
        second = cai.wait_for("incoming", timeout=15)
        assert second["remote"].startswith("<sip:201@"), second  # the box calls for 201
        assert port_state(box) == "transferring"
        cai.send("answer")
        wait_until(lambda: stats(box)["transfers"] == before["transfers"] + 1, timeout=10)
        assert_released(box)
        time.sleep(3.0)
        cai.send("hangup")
        anne.wait_for("call_state", state="DISCONNECTED", timeout=10)
    finally:
        cai.close()
    heard = frequencies_heard(recorded)
    assert sum(near(f, (1000.0,)) for f in heard[-6:]) >= 4, heard  # 201 reached 203
