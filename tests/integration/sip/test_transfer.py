"""Transfers (omstilling) through the box with pjsua2 phones: blind transfer by REFER,
and attended transfer by REFER with Replaces after a consultation call. The box
handles the REFER itself (the transferee never sees it) and the referrer hears the
outcome in NOTIFYs; afterwards the two remaining parties talk through the box."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from peers.audio import dominant_frequency, tone_wav
from peers.box import Daemon, free_port, start_daemon, stop_daemon
from peers.pjsua import PjPhone

pytestmark = [pytest.mark.peer, pytest.mark.slow]

USERS = "users:\n" + "".join(
    f'  - {{extension: "{ext}", name: User {ext}, sip_password: "pass-{ext}-secret"}}\n'
    for ext in ("101", "201", "202")
)


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Daemon]:
    d = start_daemon(tmp_path, USERS)
    try:
        d.wait_healthy()
        yield d
    finally:
        stop_daemon(d)


def phone(box: Daemon, ext: str, **options: object) -> PjPhone:
    p = PjPhone(
        domain=f"127.0.0.1:{box.sip_port}",
        user=ext,
        password=f"pass-{ext}-secret",
        port=free_port(),
        register=True,
        **options,
    )
    p.wait_for("reg_state", code=200)
    return p


def test_blind_transfer(box: Daemon, tmp_path: Path) -> None:
    """101 calls 201; 201 transfers 101 to 202 blind; 101 and 202 talk."""
    tone, recorded = tmp_path / "tone.wav", tmp_path / "heard.wav"
    tone_wav(tone, 1000.0, seconds=8.0)
    a = phone(box, "101")
    b = phone(box, "201", auto_answer=True)
    c = phone(box, "202", auto_answer=True)
    domain = f"127.0.0.1:{box.sip_port}"
    try:
        a.send("call", uri=f"sip:201@{domain}")
        a.wait_for("call_state", state="CONFIRMED")
        b.wait_for("call_state", state="CONFIRMED")
        b.send("xfer", uri=f"sip:202@{domain}")
        incoming = c.wait_for("incoming", timeout=20)
        assert incoming["remote"].startswith("<sip:101@"), incoming  # the transferee calls
        final = b.wait_for("xfer_status", final=True, timeout=20)
        assert final["code"] == 200, final
        b.send("hangup")
        b.wait_for("call_state", state="DISCONNECTED")
        c.wait_for("call_state", state="CONFIRMED")
        a.send("play", wav=str(tone))
        c.send("record", wav=str(recorded))
        time.sleep(2.5)
        a.send("hangup")
        a.wait_for("call_state", state="DISCONNECTED")
        c.wait_for("call_state", state="DISCONNECTED", timeout=20)
    finally:
        for p in (a, b, c):
            p.close()
    freq, peak = dominant_frequency(recorded)
    assert peak > 2000 and abs(freq - 1000) < 60, (freq, peak)
    status, health = box.healthz()
    assert status == 200, health


def test_attended_transfer(box: Daemon, tmp_path: Path) -> None:
    """101 calls 201; 201 holds, consults 202, then joins 101 and 202 (Replaces)."""
    tone, recorded = tmp_path / "tone.wav", tmp_path / "heard.wav"
    tone_wav(tone, 1000.0, seconds=8.0)
    a = phone(box, "101")
    b = phone(box, "201", auto_answer=True)
    c = phone(box, "202", auto_answer=True)
    domain = f"127.0.0.1:{box.sip_port}"
    try:
        a.send("call", uri=f"sip:201@{domain}")
        a.wait_for("call_state", state="CONFIRMED")
        b.wait_for("call_state", state="CONFIRMED")
        b.send("hold", index=0)
        time.sleep(0.5)
        b.send("call", uri=f"sip:202@{domain}")  # consultation
        c.wait_for("incoming", timeout=20)
        c.wait_for("call_state", state="CONFIRMED")
        time.sleep(0.5)
        b.send("xfer_replaces", index=0, other=1)
        final = b.wait_for("xfer_status", final=True, timeout=20)
        assert final["code"] == 200, final
        b.send("hangup")
        time.sleep(1.0)
        a.send("play", wav=str(tone))
        c.send("record", wav=str(recorded))
        time.sleep(2.5)
        c.send("hangup")
        c.wait_for("call_state", state="DISCONNECTED", timeout=20)
        a.wait_for("call_state", state="DISCONNECTED", timeout=20)
    finally:
        for p in (a, b, c):
            p.close()
    freq, peak = dominant_frequency(recorded)
    assert peak > 2000 and abs(freq - 1000) < 60, (freq, peak)
