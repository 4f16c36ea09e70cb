"""The analog ports end to end: the real daemon on the sim board, its virtual phone and
PSTN line driven through `skillepunkt sim` and the sim REST API, pjsua2 phones on SIP.

Paths: FXS -> SIP (real DTMF dialling, audio both ways), SIP -> FXS (Danish ring
cadence, DTMF caller ID on the display), FXO -> SIP (caller ID as the caller); each
cleared from either side, after which the gateway holds no channel, call, RTP port or
timeslot (``GET /api/v1/analog`` in_use counters).
"""

from __future__ import annotations

import base64
import json
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from peers.audio import dominant_frequency, tone_wav
from peers.box import Daemon, free_port, start_daemon, stop_daemon
from peers.pjsua import PjPhone

from firmware.localapi import request

pytestmark = [pytest.mark.peer, pytest.mark.slow]

CONFIG = """
users:
  - {extension: "201", name: Anne, sip_password: "pass-201-secret"}
  - {extension: "202", name: Bo, sip_password: "pass-202-secret"}
ports:
  - {name: fxo1, destination: "201"}
"""


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = start_daemon(tmp_path_factory.mktemp("analog"), CONFIG)
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
                register=True,
            )  # fmt: skip
        for phone in started.values():
            phone.wait_for("reg_state", code=200)
        yield started
    finally:
        for phone in started.values():
            phone.close()


def sim(box: Daemon, *args: str) -> dict[str, Any]:
    result = box.cli("sim", *args)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def device(box: Daemon, name: str) -> dict[str, Any]:
    board = request(box.data, "GET", "/api/v1/sim")
    return next(d for d in board["attached"] if d["name"] == name)


def wait_until(what: Callable[[], Any], timeout: float = 10.0, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {what}")
        time.sleep(step)


def in_use(box: Daemon) -> dict[str, int]:
    return dict(request(box.data, "GET", "/api/v1/analog")["in_use"])


def assert_released(box: Daemon) -> None:
    idle = {"channels": 0, "calls": 0, "rtp_ports": 0, "timeslots": 0}
    wait_until(lambda: in_use(box) == idle, timeout=5)


def heard_frequency(box: Daemon, name: str, tmp_path: Path, seconds: float = 1.5) -> float:
    """Dominant frequency of the last ``seconds`` a virtual device heard."""
    heard = request(box.data, "GET", f"/api/v1/sim/devices/{name}/heard?seconds={seconds}")
    path = tmp_path / f"{name}-heard.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(base64.b64decode(heard["pcm"]))
    freq, peak = dominant_frequency(path)
    assert peak > 1000, f"{name} heard silence"
    return freq


def say(box: Daemon, name: str, hz: int, seconds: float) -> None:
    request(box.data, "POST", f"/api/v1/sim/phones/{name}", {"action": "tone", "hz": hz,
                                                              "seconds": seconds})  # fmt: skip


@pytest.mark.parametrize("hangup_by", ["far", "analog"])
def test_fxs_dials_201_audio_both_ways_and_release(
    box: Daemon, phones: dict[str, PjPhone], tmp_path: Path, hangup_by: str
) -> None:
    anne = phones["201"]
    tone = tmp_path / "tone.wav"
    tone_wav(tone, 1000.0, 8.0)
    recorded = tmp_path / "heard-by-201.wav"
    anne.send("play", wav=str(tone))
    anne.send("record", wav=str(recorded))
    sim(box, "phone", "fxs1", "offhook")
    wait_until(lambda: device(box, "fxs1")["tone"] == "dial", timeout=5)
    sim(box, "phone", "fxs1", "dial", "201")  # real DTMF into the port
    incoming = anne.wait_for("incoming", timeout=15)
    assert incoming["remote"].startswith("<sip:101@"), incoming  # fxs1 = 101 by default
    wait_until(lambda: device(box, "fxs1")["tone"] == "ringback", timeout=5)
    anne.send("answer")
    anne.wait_for("call_state", state="CONFIRMED")
    say(box, "fxs1", 700, 4.0)
    time.sleep(3.0)
    assert abs(heard_frequency(box, "fxs1", tmp_path) - 1000) < 60
    if hangup_by == "far":
        anne.send("hangup")
        anne.wait_for("call_state", state="DISCONNECTED")
        wait_until(lambda: device(box, "fxs1")["tone"] == "busy", timeout=5)
        sim(box, "phone", "fxs1", "onhook")
    else:
        sim(box, "phone", "fxs1", "onhook")
        anne.wait_for("call_state", state="DISCONNECTED")
    assert_released(box)
    anne.close()  # writes the recording's WAV header
    freq, peak = dominant_frequency(recorded)
    assert peak > 1000, "201 heard silence"
    assert abs(freq - 700) < 40, freq


@pytest.mark.parametrize("hangup_by", ["far", "analog"])
def test_sip_call_rings_fxs_with_danish_cadence_and_caller_id(
    box: Daemon, phones: dict[str, PjPhone], hangup_by: str
) -> None:
    bo = phones["202"]
    bo.send("call", uri=f"sip:101@127.0.0.1:{box.sip_port}")
    rings = wait_until(lambda: len(device(box, "fxs1")["rings"]) >= 2 and device(box, "fxs1"),
                       timeout=15)  # fmt: skip
    assert rings["display"] == "202"
    (s1, e1), (s2, _) = rings["rings"][-2:]
    assert abs(e1 - s1 - 1.0) < 0.1 and abs(s2 - s1 - 5.0) < 0.1  # DK: 1 s on, 4 s off
    sim(box, "phone", "fxs1", "offhook")
    bo.wait_for("call_state", state="CONFIRMED")
    time.sleep(0.5)
    if hangup_by == "far":
        bo.send("hangup")
        bo.wait_for("call_state", state="DISCONNECTED")
        wait_until(lambda: device(box, "fxs1")["tone"] == "busy", timeout=5)
        sim(box, "phone", "fxs1", "onhook")
    else:
        sim(box, "phone", "fxs1", "onhook")
        bo.wait_for("call_state", state="DISCONNECTED")
    assert_released(box)


@pytest.mark.parametrize("hangup_by", ["far", "line"])
def test_fxo_call_with_caller_id_reaches_201(
    box: Daemon, phones: dict[str, PjPhone], hangup_by: str
) -> None:
    anne = phones["201"]
    sim(box, "line", "fxo1", "ring", "--cli", "4512345678")
    incoming = anne.wait_for("incoming", timeout=15)
    assert incoming["remote"].startswith("<sip:4512345678@"), incoming
    anne.send("answer")
    anne.wait_for("call_state", state="CONFIRMED")
    wait_until(lambda: device(box, "fxo1")["state"] == "connected", timeout=5)
    time.sleep(0.5)
    if hangup_by == "far":
        anne.send("hangup")
        anne.wait_for("call_state", state="DISCONNECTED")
        wait_until(lambda: device(box, "fxo1")["state"] == "idle", timeout=5)
    else:
        sim(box, "line", "fxo1", "hangup")
        anne.wait_for("call_state", state="DISCONNECTED", timeout=10)
    assert_released(box)


def test_sim_cli_refuses_bad_requests(box: Daemon) -> None:
    bad = box.cli("sim", "phone", "fxs1", "dial")
    assert bad.returncode == 2
    on_hook = box.cli("sim", "phone", "fxs2", "dial", "201")
    assert on_hook.returncode == 1 and "off-hook" in on_hook.stderr
    assert box.cli("sim", "line", "fxs1", "ring").returncode == 1  # not a line


def test_port_numbers_follow_a_configuration_change(
    box: Daemon, phones: dict[str, PjPhone], tmp_path: Path
) -> None:
    doc = tmp_path / "renumbered.yaml"
    doc.write_text(CONFIG + '  - {name: fxs1, extension: "301"}\n')
    imported = box.cli("config", "import", str(doc))
    assert imported.returncode == 0, imported.stderr
    port = lambda: request(box.data, "GET", "/api/v1/analog")["ports"]["fxs1"]  # noqa: E731
    wait_until(lambda: port()["extension"] == "301", timeout=10)
    bo = phones["202"]
    bo.send("call", uri=f"sip:301@127.0.0.1:{box.sip_port}")
    wait_until(lambda: device(box, "fxs1")["ringing"], timeout=10)
    bo.send("hangup")
    bo.wait_for("call_state", state="DISCONNECTED")
    assert_released(box)
    bo.send("call", uri=f"sip:101@127.0.0.1:{box.sip_port}")  # the old number is gone
    assert bo.wait_for("call_state", state="DISCONNECTED")["code"] == 404
