"""Calls through the box between pjsua2 and two more SIP stacks we did not write.

baresip (libre) and linphonec (liblinphone/belle-sip) each register with digest auth and
complete a call with a pjsua2 phone through the B2BUA, with media anchored in the box's RTP
relay. Each stack reads the RFCs its own way (digest, Contact, SDP answers, re-INVITEs), so
these calls catch what a box tested only against PJSIP and SIPp would get wrong.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import struct
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from peers.audio import tone_wav
from peers.baresip import Baresip
from peers.box import Daemon, free_port, start_daemon, stop_daemon
from peers.linphone import Linphonec
from peers.pjsua import PjPhone

pytestmark = [pytest.mark.peer, pytest.mark.slow]

USERS = """
users:
  - {extension: "101", name: Anne, sip_password: "pass-101-secret"}
  - {extension: "201", name: Bo, sip_password: "pass-201-secret"}
"""
# baresip 1.0 (libre) fails on a SHA-256 challenge ("Register: Function not implemented")
# instead of taking the MD5 one that follows it: its box offers MD5 only.
MD5_ONLY = USERS + "sip: {digest_algorithms: [MD5]}\n"


def running_box(tmp_path: Path, config: str) -> Iterator[Daemon]:
    d = start_daemon(tmp_path, config)
    try:
        d.wait_healthy()
        yield d
    finally:
        stop_daemon(d)


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Daemon]:
    yield from running_box(tmp_path, USERS)


@pytest.fixture
def md5_box(tmp_path: Path) -> Iterator[Daemon]:
    yield from running_box(tmp_path, MD5_ONLY)


def finished_calls(box: Daemon, n: int, timeout: float = 10) -> list[sqlite3.Row]:
    """The CDRs of ended calls, once there are ``n`` of them (or ``timeout`` has passed)."""
    deadline = time.monotonic() + timeout
    while True:
        db = sqlite3.connect(box.data / "cdr.db")
        db.row_factory = sqlite3.Row
        try:
            rows = db.execute("SELECT * FROM calls WHERE end_epoch IS NOT NULL ORDER BY id")
            done = rows.fetchall()
        finally:
            db.close()
        if len(done) >= n or time.monotonic() > deadline:
            return done
        time.sleep(0.1)


def heard_frequency(path: Path) -> float:
    """Frequency of the first loud second of a recording (zero crossings); 0.0 if silent."""
    with wave.open(str(path)) as w:
        data = w.readframes(w.getnframes())
    samples = struct.unpack(f"<{len(data) // 2}h", data)
    loud = next((i for i, s in enumerate(samples) if abs(s) > 2000), None)
    if loud is None or len(samples) - loud < 8000:
        return 0.0
    second = samples[loud : loud + 8000]
    return sum(1 for a, b in itertools.pairwise(second) if (a < 0) != (b < 0)) / 2


def test_baresip_registers_and_calls_a_pjsua_phone(md5_box: Daemon, tmp_path: Path) -> None:
    """baresip 101 -> box -> pjsua2 201: answered, BYE from baresip, audio relayed both ways."""
    domain = f"127.0.0.1:{md5_box.sip_port}"
    tone = tmp_path / "tone.wav"
    tone_wav(tone, freq=1000, seconds=10)  # longer than the call: at its end baresip hangs up
    heard = tmp_path / "heard-by-201.wav"
    callee = PjPhone(domain=domain, user="201", password="pass-201-secret", port=free_port(), register=True, auto_answer=True)  # fmt: skip
    caller: Baresip | None = None
    try:
        caller = Baresip(tmp_path / "baresip", user="101", password="pass-101-secret", registrar=domain, port=free_port(), audio=tone)  # fmt: skip
        callee.wait_for("reg_state", code=200)
        caller.wait_registered()
        callee.send("record", wav=str(heard))
        caller.command(f"/dial sip:201@{domain}")
        assert "101" in callee.wait_for("incoming")["remote"]  # caller's number reaches the callee
        callee.wait_for("call_state", state="CONFIRMED")
        caller.wait_for(r"Call established")
        time.sleep(2)
        caller.command("/hangup")
        caller.wait_for(r"terminated")
        callee.wait_for("call_state", state="DISCONNECTED")
    finally:
        if caller is not None:
            caller.close()
        callee.close()
    (row,) = finished_calls(md5_box, 1)
    assert (row["caller_number"], row["callee_dialled"]) == ("101", "201")
    assert (row["disposition"], row["hangup_by"]) == ("answered", "caller")
    media = json.loads(row["extra"])["media"]
    # ~2 s at 50 packets/s each way, through the anchored relay
    assert media["rtp_a_to_b_packets"] > 50 and media["rtp_b_to_a_packets"] > 50, media
    assert abs(heard_frequency(heard) - 1000) < 60  # baresip's tone, intact, at pjsua


def test_pjsua_phone_calls_linphonec_which_answers(box: Daemon, tmp_path: Path) -> None:
    """pjsua2 101 -> box -> linphonec 201 (SHA-256 digest): answered, BYE from the caller."""
    domain = f"127.0.0.1:{box.sip_port}"
    tone = tmp_path / "tone.wav"
    tone_wav(tone, freq=600, seconds=10)
    heard = tmp_path / "heard-by-101.wav"
    caller = PjPhone(domain=domain, user="101", password="pass-101-secret", port=free_port(), register=True)  # fmt: skip
    callee: Linphonec | None = None
    try:
        callee = Linphonec(tmp_path / "linphone", user="201", password="pass-201-secret", registrar=domain, port=free_port(), rtp_port=free_port())  # fmt: skip
        callee.command(f"play {tone}")
        callee.enable_autoanswer()
        caller.wait_for("reg_state", code=200)
        callee.wait_registered()
        caller.send("record", wav=str(heard))
        caller.send("call", uri=f"sip:201@{domain}")
        callee.wait_for(r"Receiving new incoming call from sip:101@")
        caller.wait_for("call_state", state="CONFIRMED")
        callee.wait_for(r"Call \d+ with .* connected")
        time.sleep(2)
        caller.send("hangup")
        caller.wait_for("call_state", state="DISCONNECTED")
        callee.wait_for(r"Call \d+ with .* ended")
    finally:
        if callee is not None:
            callee.close()
        caller.close()
    (row,) = finished_calls(box, 1)
    assert (row["caller_number"], row["callee_dialled"]) == ("101", "201")
    assert (row["disposition"], row["hangup_by"]) == ("answered", "caller")
    media = json.loads(row["extra"])["media"]
    assert media["rtp_a_to_b_packets"] > 50 and media["rtp_b_to_a_packets"] > 50, media
    assert abs(heard_frequency(heard) - 600) < 40  # linphonec's tone, intact, at pjsua
