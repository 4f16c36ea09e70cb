"""RFC extensions of the B2BUA against SIPp on both sides: 100rel/PRACK (RFC 3262) on
each leg, a late offer (INVITE without SDP), parallel forking to two registered
contacts of one extension, and session timers (RFC 4028) refreshed by the box on
both legs. SIPp's scenarios check each header the RFCs ask for (``check_it``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from peers.box import Daemon, rtp_range, start_daemon, stop_daemon
from peers.sipp import SippProcess, SippRunner, free_udp_ports

pytestmark = [pytest.mark.peer, pytest.mark.slow]

SCENARIOS = Path(__file__).with_name("scenarios")
PASSWORD = "pass-201-secret"


@dataclass
class Rig:
    box: Daemon
    sipp: SippRunner
    trunk_port: int
    work: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.box.sip_port}"

    def callee(self, scenario: str, name: str, timeout_s: float = 60) -> SippProcess:
        """A SIPp UAS registered as 201 from its own port, answering with ``scenario``."""
        port = free_udp_ports()
        users = self.work / f"users-{name}.csv"
        users.write_text("SEQUENTIAL\n201;\n")
        reg = self.sipp.run(
            f"{name}-register", "-inf", str(users), "-au", "201", "-ap", PASSWORD,
            scenario=SCENARIOS / "register.xml", target=self.target, port=port, timeout_s=30,
        )  # fmt: skip
        assert reg.returncode == 0, reg.describe()
        uas = self.sipp.start(name, scenario=SCENARIOS / scenario, port=port, timeout_s=timeout_s)
        uas.wait_listening(port)
        return uas

    def caller(self, scenario: str, timeout_s: float = 60) -> SippProcess:
        """A SIPp UAC on the trunk's address (trusted) calling 201."""
        return self.sipp.start(
            "a", "-s", "201", "-key", "caller", "4533221100",
            scenario=SCENARIOS / scenario, target=self.target, port=self.trunk_port,
            timeout_s=timeout_s,
        )  # fmt: skip

    def wait_cdr_closed(self, timeout: float = 20) -> None:
        import sqlite3

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            db = sqlite3.connect(f"file:{self.box.data / 'cdr.db'}?mode=ro", uri=True)
            try:
                rows = db.execute("SELECT end_epoch FROM calls").fetchall()
            finally:
                db.close()
            if rows and all(r[0] is not None for r in rows):
                return
            time.sleep(0.2)
        raise AssertionError("CDRs still open: " + self.box.log.read_text()[-2000:])


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    trunk_port = free_udp_ports()
    config = (
        'users:\n  - {extension: "201", name: Bo, sip_password: "pass-201-secret"}\n'
        f"trunks:\n  - {{name: carrier, host: 127.0.0.1, port: {trunk_port}, registration: false}}\n"
        "sip: {digest_algorithms: [MD5]}\n"
    )
    box = start_daemon(tmp_path, config, rtp_ports=rtp_range())
    sipp = SippRunner(tmp_path / "sipp")
    try:
        box.wait_healthy()
        yield Rig(box, sipp, trunk_port, tmp_path)
    finally:
        sipp.close()
        stop_daemon(box)


def both_succeed(a: SippProcess, b: SippProcess, timeout: float = 60) -> None:
    ra = a.wait(timeout)
    rb = b.wait(timeout)
    assert ra.returncode == 0 and ra.successful == 1, ra.describe()
    assert rb.returncode == 0 and rb.successful == 1, rb.describe()


def test_prack_on_both_legs(rig: Rig) -> None:
    b = rig.callee("rfc_prack_uas.xml", "b")
    a = rig.caller("rfc_prack_uac.xml")
    both_succeed(a, b)
    # the box's reliable 180 toward the caller carried its own RSeq, not the callee's 7
    ringing = [m for m in a.result().received(status=180)]
    assert ringing and ringing[0].header("RSeq") not in (None, "7"), ringing
    rig.wait_cdr_closed()


def test_late_offer_answer_travels_in_the_ack(rig: Rig) -> None:
    b = rig.callee("rfc_late_offer_uas.xml", "b")
    a = rig.caller("rfc_late_offer_uac.xml")
    both_succeed(a, b)
    (ack,) = b.result().received(method="ACK")
    assert "c=IN IP4 127.0.0.1" in ack.body and "o=skillepunkt" in ack.body, ack
    rig.wait_cdr_closed()


def test_forking_rings_every_contact_and_cancels_the_losers(rig: Rig) -> None:
    ringer = rig.callee("b2bua_uas_ring.xml", "ringer")
    answerer = rig.callee("b2bua_uas.xml", "answerer")
    a = rig.caller("b2bua_uac.xml")
    both_succeed(a, answerer)
    r = ringer.wait(30)
    assert r.returncode == 0 and r.successful == 1, r.describe()  # it got the CANCEL
    assert r.received(method="CANCEL"), r.describe()
    rig.wait_cdr_closed()


def test_session_timers_refreshed_by_the_box_on_both_legs(rig: Rig) -> None:
    """90 s sessions: the box refreshes each leg with an UPDATE after about 45 s."""
    b = rig.callee("rfc_timer_uas.xml", "b", timeout_s=100)
    started = time.monotonic()
    a = rig.caller("rfc_timer_uac.xml", timeout_s=100)
    both_succeed(a, b, timeout=100)
    elapsed = time.monotonic() - started
    assert 44 <= elapsed <= 80, elapsed
    (update,) = b.result().received(method="UPDATE")
    assert update.header("Session-Expires") == "90;refresher=uac", update
    rig.wait_cdr_closed()
