"""RFC extensions of the B2BUA against SIPp on both sides: 100rel/PRACK (RFC 3262) on
each leg, a late offer (INVITE without SDP), parallel forking to two registered
contacts of one extension, and session timers (RFC 4028) refreshed by the box on
both legs. SIPp's scenarios check each header the RFCs ask for (``check_it``)."""

from __future__ import annotations

import time

import pytest
from peers.sipp import SippProcess
from peers.sipp_rig import Rig

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def both_succeed(a: SippProcess, b: SippProcess, timeout: float = 60) -> None:
    ra = a.wait(timeout)
    rb = b.wait(timeout)
    assert ra.returncode == 0 and ra.successful == 1, ra.describe()
    assert rb.returncode == 0 and rb.successful == 1, rb.describe()


def test_prack_on_both_legs(rig: Rig) -> None:
    b = rig.callee("rfc_prack_uas.xml", name="b")
    a = rig.caller("rfc_prack_uac.xml")
    both_succeed(a, b)
    rig.wait_idle(1, a.result(), b.result())
    # the box's reliable 180 toward the caller carried its own RSeq, not the callee's 7
    ringing = [m for m in a.result().received(status=180)]
    assert ringing and ringing[0].header("RSeq") not in (None, "7"), ringing


def test_late_offer_answer_travels_in_the_ack(rig: Rig) -> None:
    b = rig.callee("rfc_late_offer_uas.xml", name="b")
    a = rig.caller("rfc_late_offer_uac.xml")
    both_succeed(a, b)
    (ack,) = b.result().received(method="ACK")
    assert "c=IN IP4 127.0.0.1" in ack.body and "o=skillepunkt" in ack.body, ack
    rig.wait_idle(1, a.result(), b.result())


def test_forking_rings_every_contact_and_cancels_the_losers(rig: Rig) -> None:
    ringer = rig.callee("b2bua_uas_ring.xml", name="ringer")
    answerer = rig.callee("b2bua_uas.xml", name="answerer")
    a = rig.caller("b2bua_uac.xml")
    both_succeed(a, answerer)
    r = ringer.wait(30)
    assert r.returncode == 0 and r.successful == 1, r.describe()  # it got the CANCEL
    assert r.received(method="CANCEL"), r.describe()
    rig.wait_idle(1, a.result(), answerer.result(), r)


def test_session_timers_refreshed_by_the_box_on_both_legs(rig: Rig) -> None:
    """90 s sessions: the box refreshes each leg with an UPDATE after about 45 s."""
    b = rig.callee("rfc_timer_uas.xml", name="b", timeout_s=100)
    started = time.monotonic()
    a = rig.caller("rfc_timer_uac.xml", timeout_s=100)
    both_succeed(a, b, timeout=100)
    elapsed = time.monotonic() - started
    assert 44 <= elapsed <= 80, elapsed
    (update,) = b.result().received(method="UPDATE")
    assert update.header("Session-Expires") == "90;refresher=uac", update
    rig.wait_idle(1, a.result(), b.result())
