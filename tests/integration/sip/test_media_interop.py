"""The media plane in calls between pjsua2 phones through the box: RFC 4733 digits
across, SRTP on one leg and plain RTP on the other, and transcoding between a phone
that speaks only PCMU and one that speaks only PCMA. Audio is a tone played on one
side and measured on the other."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from peers.audio import dominant_frequency, tone_wav
from peers.box import Daemon, free_port, start_daemon, stop_daemon
from peers.pjsua import PjPhone, tone_call

pytestmark = [pytest.mark.peer, pytest.mark.slow]

USERS = "users:\n" + "".join(
    f'  - {{extension: "{ext}", name: User {ext}, sip_password: "pass-{ext}-secret"}}\n'
    for ext in ("101", "201")
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


def call_with_tone(box: Daemon, tmp_path: Path, a: PjPhone, b: PjPhone) -> Path:
    """101 calls 201, plays 1 kHz for ~3 s; 201's recording (complete once it closed)."""
    tone, recorded = tmp_path / "tone.wav", tmp_path / "heard.wav"
    tone_wav(tone, 1000.0, seconds=8.0)
    tone_call(a, b, f"sip:201@127.0.0.1:{box.sip_port}", tone, recorded, talk=3)
    return recorded


def media_of_last_call(box: Daemon) -> dict[str, object]:
    deadline = time.monotonic() + 10
    while True:
        db = sqlite3.connect(box.data / "cdr.db")
        try:
            row = db.execute("SELECT extra, end_epoch FROM calls ORDER BY id DESC").fetchone()
        finally:
            db.close()
        if row is not None and row[1] is not None:
            return dict(json.loads(row[0])["media"])
        assert time.monotonic() < deadline, "no closed CDR"
        time.sleep(0.1)


def test_rfc4733_digits_cross_the_box(box: Daemon) -> None:
    a = phone(box, "101")
    b = phone(box, "201", auto_answer=True)
    try:
        a.send("call", uri=f"sip:201@127.0.0.1:{box.sip_port}")
        a.wait_for("call_state", state="CONFIRMED")
        b.wait_for("media", status=1)
        a.send("dtmf", digits="159#")
        digits = "".join(b.wait_for("dtmf", timeout=10)["digit"] for _ in range(4))
        assert digits == "159#"
        a.send("hangup")
        b.wait_for("call_state", state="DISCONNECTED")
    finally:
        a.close()
        b.close()


def tone_crosses(
    box: Daemon, tmp_path: Path, caller: dict[str, object], callee: dict[str, object]
) -> dict[str, object]:
    """101 (``caller`` options) calls 201 (``callee`` options, auto-answering) with a
    1 kHz tone that must be heard at 201; the call's CDR media figures."""
    a = phone(box, "101", **caller)
    b = phone(box, "201", auto_answer=True, **callee)
    try:
        recorded = call_with_tone(box, tmp_path, a, b)
    finally:
        a.close()
        b.close()
    freq, peak = dominant_frequency(recorded)
    assert peak > 2000 and abs(freq - 1000) < 60, (freq, peak)
    return media_of_last_call(box)


def test_srtp_on_one_leg_plain_rtp_on_the_other(box: Daemon, tmp_path: Path) -> None:
    # 101: RTP/SAVP with SDES keys, mandatory; 201: plain RTP
    quality = tone_crosses(box, tmp_path, {"srtp": True}, {})["quality"]
    assert isinstance(quality, dict)
    assert quality["a"]["srtp"] and not quality["b"]["srtp"], quality


def test_transcoding_pcmu_to_pcma(box: Daemon, tmp_path: Path) -> None:
    quality = tone_crosses(box, tmp_path, {"codecs": "PCMU"}, {"codecs": "PCMA"})["quality"]
    assert isinstance(quality, dict)
    assert (quality["a"]["codec"], quality["b"]["codec"]) == ("PCMU", "PCMA"), quality


def test_one_law_caller_stays_on_the_relay_when_the_callee_speaks_it(
    box: Daemon, tmp_path: Path
) -> None:
    """The box offers the callee both laws, the callee answers the caller's: no
    transcoding, the pass-through relay carries the call (no bridge quality figures)."""
    media = tone_crosses(box, tmp_path, {"codecs": "PCMU"}, {})  # 201: PCMU and PCMA
    assert "quality" not in media, media
    assert int(media["rtp_a_to_b_packets"]) > 100, media  # type: ignore[call-overload]
