"""Call forwarding and DND through the real box, with pjsua2 (PJSIP) phones.

Feature codes are dialled from a phone like any number (``*21*202#``, the ``#`` escaped
in the Request-URI as ``%23``); the box answers them itself and stores the change in
DATA/features.db; the next calls show where they go.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peers.box import Daemon, free_port, start_daemon, stop_daemon
from peers.pjsua import PjPhone

pytestmark = [pytest.mark.peer, pytest.mark.slow]

USERS = """
users:
  - {extension: "201", name: Anne, sip_password: "pass-201-secret"}
  - {extension: "202", name: Bo, sip_password: "pass-202-secret"}
  - {extension: "203", name: Carl, sip_password: "pass-203-secret"}
"""
NO_ANSWER_AFTER_5_S = """
users:
  - {extension: "201", name: Anne, sip_password: "pass-201-secret",
     forward: {no_answer: "202", no_answer_s: 5}}
  - {extension: "202", name: Bo, sip_password: "pass-202-secret"}
  - {extension: "203", name: Carl, sip_password: "pass-203-secret"}
"""


def boot(tmp_path: Path, config: str | None) -> Daemon:
    d = start_daemon(tmp_path, config)
    try:
        d.wait_healthy()
    except BaseException:
        stop_daemon(d)
        raise
    return d


@contextlib.contextmanager
def phones(box: Daemon, *extensions: str) -> Iterator[dict[str, PjPhone]]:
    domain = f"127.0.0.1:{box.sip_port}"
    started: dict[str, PjPhone] = {}
    try:
        for ext in extensions:
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


def uri(box: Daemon, number: str) -> str:
    return f"sip:{number.replace('#', '%23')}@127.0.0.1:{box.sip_port}"


def overrides(box: Daemon) -> dict[str, dict[str, Any]]:
    """The runtime feature changes as stored on disk."""
    with contextlib.closing(sqlite3.connect(box.data / "features.db")) as db:
        db.row_factory = sqlite3.Row
        return {r["extension"]: dict(r) for r in db.execute("SELECT * FROM overrides")}


def dial_code(box: Daemon, phone: PjPhone, code: str) -> dict[str, Any]:
    """Dial a feature code; the box answers it (confirmation tone) and hangs up."""
    phone.send("call", uri=uri(box, code))
    phone.wait_for("call_state", state="CONFIRMED", timeout=10)
    return phone.wait_for("call_state", state="DISCONNECTED", timeout=15)


def no_call(phone: PjPhone, wait: float = 0.5) -> None:
    with pytest.raises(AssertionError):
        phone.wait_for("incoming", timeout=wait)


def hang_up_all(*all_phones: PjPhone) -> None:
    for phone in all_phones:
        phone.send("hangup")
    for phone in all_phones:
        phone.wait_for("call_state", state="DISCONNECTED", timeout=10)


def restart(tmp_path: Path, old: Daemon) -> Daemon:
    """The same data directory, a new daemon (as after a reboot)."""
    again = tmp_path / "restart"
    again.mkdir()
    (again / "data").symlink_to(old.data)
    return boot(again, None)


def test_feature_code_forwards_unconditionally_and_dnd(tmp_path: Path) -> None:
    box = boot(tmp_path, USERS)
    try:
        with phones(box, "201", "202", "203") as p:
            dial_code(box, p["201"], "*21*202#")
            assert overrides(box)["201"]["forward_unconditional"] == "202"

            p["203"].send("call", uri=uri(box, "201"))
            incoming = p["202"].wait_for("incoming", timeout=10)  # 202 rings, not 201
            assert incoming["remote"].startswith("<sip:203@"), incoming
            no_call(p["201"])
            p["202"].send("answer", code=200)
            p["203"].wait_for("call_state", state="CONFIRMED", timeout=10)
            hang_up_all(p["203"])
            p["202"].wait_for("call_state", state="DISCONNECTED", timeout=10)

            # a code from 203 changes 203, never 201
            dial_code(box, p["203"], "#21#")
            assert overrides(box)["201"]["forward_unconditional"] == "202"

            dial_code(box, p["201"], "#21#")  # back to the configuration: no override
            assert "201" not in overrides(box)
            dial_code(box, p["201"], "*26#")  # DND: callers hear busy
            assert overrides(box)["201"]["dnd"] == 1
            p["203"].send("call", uri=uri(box, "201"))
            assert p["203"].wait_for("call_state", state="DISCONNECTED")["code"] == 486
            no_call(p["201"])
            no_call(p["202"], 0.1)
    finally:
        stop_daemon(box)

    # a restart keeps the change
    box = restart(tmp_path, box)
    try:
        assert overrides(box)["201"]["dnd"] == 1
        with phones(box, "201", "203") as p:
            p["203"].send("call", uri=uri(box, "201"))
            assert p["203"].wait_for("call_state", state="DISCONNECTED")["code"] == 486
            # the installer changes 201's forwarding in the configuration: that wins now
            changed = tmp_path / "changed.yaml"
            changed.write_text(
                USERS.replace('"pass-201-secret"}', '"pass-201-secret", forward: {busy: "202"}}')
            )
            done = box.cli("config", "import", str(changed))
            assert done.returncode == 0, done.stderr
            deadline = time.monotonic() + 10
            while "201" in overrides(box) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "201" not in overrides(box)
            p["203"].send("call", uri=uri(box, "201"))
            p["201"].wait_for("incoming", timeout=10)  # DND is off again
            hang_up_all(p["203"])
    finally:
        stop_daemon(box)


def test_busy_forward_after_the_phone_declines(tmp_path: Path) -> None:
    box = boot(tmp_path, USERS)
    try:
        with phones(box, "201", "202", "203") as p:
            dial_code(box, p["201"], "*67*202#")
            p["203"].send("call", uri=uri(box, "201"))
            p["201"].wait_for("incoming", timeout=10)
            p["201"].send("answer", code=486)  # busy here
            p["201"].wait_for("call_state", state="DISCONNECTED", timeout=10)
            p["202"].wait_for("incoming", timeout=10)
            p["202"].send("answer", code=200)
            p["203"].wait_for("call_state", state="CONFIRMED", timeout=10)
            hang_up_all(p["203"])
    finally:
        stop_daemon(box)


def test_no_answer_forward_after_n_seconds_from_the_configuration(tmp_path: Path) -> None:
    box = boot(tmp_path, NO_ANSWER_AFTER_5_S)
    try:
        with phones(box, "201", "202", "203") as p:
            p["203"].send("call", uri=uri(box, "201"))
            p["201"].wait_for("incoming", timeout=10)
            rang = time.monotonic()
            no_call(p["202"], 3.5)  # 201 rings alone first
            p["202"].wait_for("incoming", timeout=10)
            waited = time.monotonic() - rang
            assert 4.0 <= waited <= 7.5, waited
            p["201"].wait_for("call_state", state="DISCONNECTED", timeout=5)  # CANCELled
            p["202"].send("answer", code=200)
            p["203"].wait_for("call_state", state="CONFIRMED", timeout=10)
            hang_up_all(p["203"])
            print(f"\nno-answer forward: 202 rang {waited:.1f} s after 201 (configured 5 s)")
    finally:
        stop_daemon(box)
