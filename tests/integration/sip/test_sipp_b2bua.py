"""SIPp on both sides of the box's B2BUA: SIPp A (caller) -> box -> SIPp B (callee).

B registers as extension 201 (digest, MD5: the only algorithm SIPp 3.6 knows) and
answers from the port it registered from. A is either extension 101 (registers and
authenticates its INVITE) or a trunk trusted by its source address. Every test asserts
SIPp's own verdict (exit code 0, call counters) on both sides, reads the SIP messages
each side saw where the box must have rewritten something (status codes, SDP), and
checks the box afterwards: its CDRs (data directory) and that no call is left up (every
CDR closed, and a BYE into any dialog either SIPp had with the box gets 481).
"""

from __future__ import annotations

import itertools
import re

import pytest
from peers.sipp import SipMessage, SippResult, free_udp_ports
from peers.sipp_rig import PASSWORDS, SCENARIOS, Rig, dialogs_with_box, tag_of

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def assert_request_in_dialog(uac: SippResult, request: SipMessage) -> None:
    """A request the box sent to the caller belongs to the caller's dialog (RFC 3261
    12.2.1.1): its Call-ID, the caller's Contact as Request-URI, the box's tag in From
    and the caller's in To."""
    call_id = request.header("Call-ID") or ""
    dialogs = dialogs_with_box(uac)
    assert call_id in dialogs, f"not one of the caller's dialogs:\n{request}"
    party_tag, box_tag = dialogs[call_id]
    assert (tag_of(request.header("From")), tag_of(request.header("To"))) == (box_tag, party_tag), (
        f"tags swapped or wrong:\n{request}"
    )
    invite = next(m for m in uac.sent(method="INVITE") if m.header("Call-ID") == call_id)
    contact = (invite.header("Contact") or "").strip("<>")
    assert request.start_line.split()[1] == contact, f"not sent to {contact}:\n{request}"


def sdp_media(message: SipMessage) -> tuple[str, int, str]:
    """(connection address, audio port, direction attribute) of a message's SDP."""
    body = message.body
    conn = re.search(r"^c=IN IP4 (\S+)", body, re.MULTILINE)
    media = re.search(r"^m=audio (\d+) ", body, re.MULTILINE)
    direction = re.search(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", body, re.MULTILINE)
    assert conn and media, f"no usable SDP in:\n{message}"
    return conn.group(1), int(media.group(1)), direction.group(1) if direction else "sendrecv"


def assert_anchored(rig: Rig, message: SipMessage, *, not_port: int) -> tuple[str, int, str]:
    """The message's SDP names the box's relay (its address and a port of its media
    range), never the party on the other side (``not_port``)."""
    address, port, direction = sdp_media(message)
    first, last = rig.rtp
    assert address == "127.0.0.1" and first <= port <= last and port != not_port, (
        f"SDP not anchored at the box ({rig.rtp}):\n{message}"
    )
    return address, port, direction


def media_port(result: SippResult) -> int:
    """The audio port a SIPp instance offered in its first SDP (its -mp)."""
    for message in result.sent():
        if "m=audio" in message.body:
            return sdp_media(message)[1]
    raise AssertionError(f"SIPp {result.name} sent no SDP")


# -- 1, 2: calls with BYE from either side ------------------------------------------------


def test_registered_extensions_call_with_digest_and_the_caller_hangs_up(rig: Rig) -> None:
    """Both extensions REGISTER with MD5 digest; 101 calls 201 (407, authenticated
    INVITE) and sends the BYE."""
    uas = rig.callee("b2bua_uas.xml", calls=3)
    a_port = free_udp_ports()
    rig.register("101", a_port, name="a-register")
    uac = rig.sipp.run(
        "a", "-s", "201", "-key", "caller", "101", "-au", "101", "-ap", PASSWORDS["101"],
        "-d", "300", scenario=SCENARIOS / "uac_auth.xml", target=rig.target, port=a_port,
        calls=3, rate=2,
    )  # fmt: skip
    assert uac.returncode == 0 and uac.successful == 3, uac.describe()
    b = uas.wait(30)
    assert b.returncode == 0 and b.successful == 3, b.describe()
    rows = rig.wait_idle(3, uac, b)
    assert [(r["caller_number"], r["callee_dialled"], r["disposition"], r["hangup_by"])
            for r in rows] == [("101", "201", "answered", "caller")] * 3  # fmt: skip
    # B saw the caller's number at the box (topology hiding), never A's own address
    invite = b.received(method="INVITE")[0]
    assert f"<sip:101@127.0.0.1:{rig.box.sip_port}>" in (invite.header("From") or "")
    assert f":{a_port}" not in invite.text


def test_callee_hangs_up(rig: Rig) -> None:
    """B sends the BYE; the box answers it and BYEs A."""
    uas = rig.callee("b2bua_uas_bye.xml", "-d", "500", calls=2)
    uac = rig.caller("b2bua_uac_wait_bye.xml", calls=2).wait(60)
    assert uac.returncode == 0 and uac.successful == 2, uac.describe()
    b = uas.wait(30)
    assert b.returncode == 0 and b.successful == 2, b.describe()
    rows = rig.wait_idle(2, uac, b)
    assert {(r["disposition"], r["hangup_by"]) for r in rows} == {("answered", "callee")}
    byes = uac.received(method="BYE")
    assert len(byes) >= 2
    for bye in byes:
        assert_request_in_dialog(uac, bye)


def test_callee_hangs_up_before_the_callers_ack(rig: Rig) -> None:
    """A misses the box's first 200 (it ignores 1.2 s after its INVITE, as if the
    network lost it) while B hangs up 100 ms after answering. The box must answer B's
    BYE, keep retransmitting its 200 to A until A's ACK (RFC 3261 13.3.1.4), and only
    then BYE A (RFC 3261 15: not before the ACK or the 2xx timing out)."""
    uas = rig.callee("b2bua_uas_bye.xml", "-d", "100")
    uac = rig.caller(
        "b2bua_uac_late_ack.xml", "-pause_msg_ign", "-recv_timeout", "8000", timeout_s=40
    ).wait(60)
    b = uas.collect(20)
    acked_at = next(
        (i for i, m in enumerate(uac.messages) if m.direction == "sent" and m.method == "ACK"),
        len(uac.messages),
    )
    early = [m for m in uac.messages[:acked_at] if m.direction == "received" and m.method == "BYE"]
    assert not early, f"the box BYEd the caller before its ACK:\n{early[0]}"
    assert uac.returncode == 0 and uac.successful == 1, uac.describe(12)
    assert b.returncode == 0 and b.successful == 1, b.describe(12)
    (row,) = rig.wait_idle(1, uac, b)
    assert (row["disposition"], row["hangup_by"]) == ("answered", "callee")


# -- 3, 4: CANCEL ---------------------------------------------------------------------------


def final_statuses(result: SippResult) -> dict[str, int]:
    """Call-ID -> the final status of its first INVITE, as received by a UAC."""
    out: dict[str, int] = {}
    for m in result.received(method="INVITE"):
        if m.status is not None and m.status >= 200:
            out.setdefault(m.header("Call-ID") or "", m.status)
    return out


def assert_cancels_answered(result: SippResult) -> None:
    """Every CANCEL the UAC sent got its own response (200, or 481 once the INVITE
    was already answered)."""
    cancelled = {m.header("Call-ID") for m in result.sent(method="CANCEL")}
    answered = {
        m.header("Call-ID")
        for m in result.received(method="CANCEL")
        if m.status is not None and m.status in (200, 481)
    }
    assert cancelled <= answered, f"CANCELs without a response: {cancelled - answered}"


def test_cancel_racing_the_answer_leaves_no_call_up(rig: Rig) -> None:
    """A cancels 100-350 ms after its 180; B answers 250 ms after its 180 unless the
    CANCEL came within 150 ms. Both SIPps ignore what arrives during a pause
    (-pause_msg_ign), as if it were still on the wire, so the 200 and the CANCEL cross
    on either leg:
    - CANCEL before 150 ms: B gets it before answering; A gets 487;
    - 150-250 ms, crossed at B: the box has given A 487 and must ACK and BYE B's 200
      (and retransmit its CANCEL until B answers it);
    - after 250 ms, crossed at A: the box must answer the CANCEL without ending the
      call and retransmit its 200 until A ACKs; A then BYEs.
    A gets 487 or 200 (never both) and nothing stays up."""
    calls = 30
    uas = rig.callee("b2bua_uas_answer_or_cancel.xml", "-pause_msg_ign", calls=calls, timeout_s=90)
    uac = rig.caller(
        "b2bua_uac_cancel.xml", "-pause_msg_ign", calls=calls, rate=10, timeout_s=90
    ).wait(120)
    assert uac.returncode == 0 and uac.successful == calls, uac.describe()
    b = uas.wait(60)
    assert b.returncode == 0 and b.successful == calls, b.describe()
    finals: dict[str, set[int]] = {}
    for m in uac.received(method="INVITE"):
        if m.status is not None and m.status >= 200:
            finals.setdefault(m.header("Call-ID") or "", set()).add(m.status)
    assert all(len(s) == 1 for s in finals.values()), f"487 and 200 for one call: {finals}"
    outcomes = final_statuses(uac)
    a_cancelled = sum(1 for s in outcomes.values() if s == 487)
    a_answered = sum(1 for s in outcomes.values() if s == 200)
    assert a_cancelled + a_answered == calls, outcomes
    assert_cancels_answered(uac)
    b_answered = len({m.header("Call-ID") for m in b.sent(status=200, method="INVITE")})
    b_rejected = len({m.header("Call-ID") for m in b.sent(status=487, method="INVITE")})
    assert b_answered + b_rejected == calls
    # every call A got answered was answered by B; B's other answers crossed the CANCEL
    # and were ACKed and hung up by the box
    crossed_at_b = b_answered - a_answered
    assert crossed_at_b >= 0
    assert len({m.header("Call-ID") for m in b.received(method="BYE")}) == b_answered
    assert len({m.header("Call-ID") for m in b.received(method="ACK")}) == calls
    # B lets a CANCEL that crosses its 200 go unanswered (SIPp: ignored during the pause,
    # or taken as still on the wire by the global receive): the box must resend it until
    # B answers (RFC 3261 17.1.2.2), so every call the box cancelled at B got B's 200
    cancelled_at_b = {m.header("Call-ID") for m in b.received(method="CANCEL")}
    cancel_answered = {m.header("Call-ID") for m in b.sent(status=200, method="CANCEL")}
    assert cancelled_at_b == cancel_answered, (
        f"CANCELs B never answered: {cancelled_at_b - cancel_answered}"
    )
    rows = rig.wait_idle(calls, uac, b)
    dispositions = [r["disposition"] for r in rows]
    assert dispositions.count("answered") == a_answered, dispositions
    assert dispositions.count("cancelled") == a_cancelled, dispositions
    print(
        f"CANCEL race: {b_rejected} cancelled before B answered, {crossed_at_b} crossed "
        f"B's 200, {a_answered} crossed at A (answered)"
    )
    # the race really went every way (the pauses straddle both crossing windows)
    assert b_rejected and crossed_at_b and a_answered, outcomes


def test_cancel_before_answer(rig: Rig) -> None:
    """B rings and never answers; A's CANCEL reaches B, A gets 487, no call is left."""
    calls = 5
    uas = rig.callee("b2bua_uas_ring.xml", calls=calls)
    uac = rig.caller("b2bua_uac_cancel.xml", calls=calls).wait(60)
    assert uac.returncode == 0 and uac.successful == calls, uac.describe()
    b = uas.wait(30)
    assert b.returncode == 0 and b.successful == calls, b.describe()
    assert set(final_statuses(uac).values()) == {487}
    assert_cancels_answered(uac)
    # the box's CANCEL matches its INVITE: same Request-URI, Call-ID, CSeq number and
    # branch (RFC 3261 9.1)
    invites = {m.header("Call-ID"): m for m in b.received(method="INVITE")}
    cancels = {m.header("Call-ID"): m for m in b.received(method="CANCEL")}
    assert cancels.keys() == invites.keys() and len(cancels) == calls
    for call_id, cancel in cancels.items():
        invite = invites[call_id]
        assert cancel.start_line.split()[1] == invite.start_line.split()[1]
        assert via_branch(cancel) == via_branch(invite)
        assert (cancel.header("CSeq") or "").split()[0] == (invite.header("CSeq") or "").split()[0]
    rows = rig.wait_idle(calls, uac, b)
    assert {(r["disposition"], r["hangup_by"], r["answer_epoch"]) for r in rows} == {
        ("cancelled", "caller", None)
    }


# -- 5: hold and resume with re-INVITEs ------------------------------------------------------


def origin(message: SipMessage) -> tuple[str, int]:
    """(session id, version) of the SDP's o= line."""
    found = re.search(r"^o=\S+ (\S+) (\d+) ", message.body, re.MULTILINE)
    assert found, f"no o= line in:\n{message}"
    return found.group(1), int(found.group(2))


def assert_offers_and_answers(
    rig: Rig, sdps: list[SipMessage], directions: list[str], *, not_port: int
) -> None:
    """One call's SDPs from the box to one party, in order: anchored at one relay port,
    with the expected directions, one session whose version rises with every change,
    each message with the box's Contact."""
    assert [sdp_media(m)[2] for m in sdps] == directions, "\n".join(map(str, sdps))
    # INVITEs and their 2xx carry the box's Contact (RFC 3261 table 3; 12.1.1, 14)
    assert all(m.header("Contact") for m in sdps), "\n".join(map(str, sdps))
    ports = {assert_anchored(rig, m, not_port=not_port)[1] for m in sdps}
    assert len(ports) == 1, f"the relay port moved: {ports}"
    origins = [origin(m) for m in sdps]
    assert len({sess for sess, _ in origins}) == 1, origins
    versions = [v for _, v in origins]
    assert all(b > a for a, b in itertools.pairwise(versions)), f"o= versions {versions}"


def via_branch(message: SipMessage) -> str:
    found = re.search(r";branch=([^;,\s]+)", message.header("Via") or "")
    assert found, f"no Via branch in:\n{message}"
    return found.group(1)


def by_call(messages: list[SipMessage]) -> dict[str, list[SipMessage]]:
    out: dict[str, list[SipMessage]] = {}
    for m in messages:
        out.setdefault(m.header("Call-ID") or "", []).append(m)
    return out


@pytest.mark.parametrize("holder", ["caller", "callee"])
def test_hold_and_resume_with_reinvites(rig: Rig, holder: str) -> None:
    """The holder re-INVITEs with a=sendonly, then a=sendrecv; the box forwards each
    offer re-anchored (its own address and relay port, the same session with a higher
    o= version), the other side answers recvonly, then sendrecv, and the answer comes
    back re-anchored the same way; then the caller hangs up."""
    calls = 2
    uac_file, uas_file = (
        ("b2bua_uac_hold.xml", "b2bua_uas_held.xml")
        if holder == "caller"
        else ("b2bua_uac_held.xml", "b2bua_uas_hold.xml")
    )
    uas = rig.callee(uas_file, calls=calls)
    uac = rig.caller(uac_file, calls=calls, rate=2).wait(60)
    assert uac.returncode == 0 and uac.successful == calls, uac.describe()
    b = uas.wait(30)
    assert b.returncode == 0 and b.successful == calls, b.describe()
    a_port, b_port = media_port(uac), media_port(b)
    if holder == "caller":
        # B: the initial offer and both re-offers; A: the three answers
        to_b = by_call(b.received(method="INVITE"))
        to_a = by_call([m for m in uac.received(status=200, method="INVITE") if m.body])
        b_dirs, a_dirs = ["sendrecv", "sendonly", "sendrecv"], ["sendrecv", "recvonly", "sendrecv"]
    else:
        # A: the initial answer and both re-offers; B: the initial offer and both answers
        to_a = by_call(
            [m for m in uac.received() if m.body and (m.status == 200 or m.status is None)]
        )
        to_b = by_call(
            [m for m in b.received() if m.body and (m.status == 200 or m.status is None)]
        )
        b_dirs, a_dirs = ["sendrecv", "recvonly", "sendrecv"], ["sendrecv", "sendonly", "sendrecv"]
    assert len(to_a) == len(to_b) == calls
    if holder == "callee":  # the box's re-INVITEs to A: in A's dialog, CSeq rising
        reinvites = by_call([m for m in uac.received(method="INVITE") if m.status is None])
        for requests in reinvites.values():
            for request in requests:
                assert_request_in_dialog(uac, request)
            cseqs = [int((m.header("CSeq") or "0").split()[0]) for m in requests]
            assert len(cseqs) == 2 and cseqs[1] > cseqs[0], cseqs
    for sdps in to_b.values():
        assert_offers_and_answers(rig, sdps, b_dirs, not_port=a_port)
    for sdps in to_a.values():
        assert_offers_and_answers(rig, sdps, a_dirs, not_port=b_port)
    rows = rig.wait_idle(calls, uac, b)
    assert {(r["disposition"], r["hangup_by"]) for r in rows} == {("answered", "caller")}


# -- 6: retransmissions under loss ------------------------------------------------------------


@pytest.mark.parametrize("hangup_by", ["caller", "callee"])
def test_calls_complete_with_ten_percent_loss_on_both_sides(rig: Rig, hangup_by: str) -> None:
    """Both SIPps drop 10 % of what they send and receive (-lost 10): the INVITE, the
    200 and its ACK, the BYE (from the caller or from the callee) and its 200 each get
    lost now and then, and the retransmissions of RFC 3261 (SIPp's, and the box's
    client transactions, 2xx retransmission to A, re-ACK of B's retransmitted 2xx)
    still complete every call."""
    calls = 50
    uac_file, uas_file = (
        ("b2bua_uac.xml", "b2bua_uas_lossy.xml")
        if hangup_by == "caller"
        else ("b2bua_uac_wait_bye.xml", "b2bua_uas_bye.xml")
    )
    lossy = ("-lost", "10", "-d", "1000")  # -d: the call's length, at whichever side ends it
    uas = rig.callee(uas_file, *lossy, calls=calls, timeout_s=170)
    uac = rig.caller(uac_file, *lossy, calls=calls, rate=10, timeout_s=150).wait(180)
    assert uac.returncode == 0 and uac.successful == calls, uac.describe()
    b = uas.wait(60)
    assert b.returncode == 0 and b.successful == calls, b.describe()
    # the loss was real: both sides had to retransmit
    a_retrans, b_retrans = uac.count("Retransmissions(C)"), b.count("Retransmissions(C)")
    assert a_retrans > 0 and b_retrans > 0, (a_retrans, b_retrans)
    rows = rig.wait_idle(calls, uac, b, timeout=60)
    assert len(rows) == calls
    assert {(r["disposition"], r["hangup_by"]) for r in rows} == {("answered", hangup_by)}
    print(f"loss, BYE from the {hangup_by}: {a_retrans} retransmissions by A, {b_retrans} by B")


# -- 7: failure responses ---------------------------------------------------------------------

# B's final response to calls 1, 2, 3 (b2bua_uas_reject.xml) -> the CDR disposition the
# box gives it (firmware.core.cdr rules)
REJECTIONS = {486: "busy", 480: "no-answer", 603: "failed"}


def test_rejections_reach_the_caller_unchanged(rig: Rig) -> None:
    """B's 486, 480 and 603 each reach A as that same status (a B2BUA has no reason to
    map them: one target, no further route), the box ACKs B's and A's ACK completes
    A's, and the CDR keeps the status. One call at a time, in that order."""
    calls = len(REJECTIONS)
    uas = rig.callee("b2bua_uas_reject.xml", calls=calls)
    uac = rig.caller("b2bua_uac_rejected.xml", "-l", "1", calls=calls, rate=2).wait(60)
    assert uac.returncode == 0 and uac.successful == calls, uac.describe()
    b = uas.wait(30)
    assert b.returncode == 0 and b.successful == calls, b.describe()
    sent_by_b = [m.status for m in b.sent(method="INVITE") if m.status and m.status >= 300]
    assert sent_by_b[:calls] == list(REJECTIONS), sent_by_b
    got_by_a = list(final_statuses(uac).values())
    assert got_by_a == list(REJECTIONS), uac.describe()
    # the box's ACK for each refusal is hop-by-hop: the INVITE's branch (RFC 3261 17.1.1.3)
    invites = {m.header("Call-ID"): via_branch(m) for m in b.received(method="INVITE")}
    acks = {m.header("Call-ID"): via_branch(m) for m in b.received(method="ACK")}
    assert acks == invites, (acks, invites)
    rows = rig.wait_idle(calls, uac, b)
    assert [(r["sip_status"], r["disposition"], r["hangup_by"]) for r in rows] == [
        (status, disposition, "callee") for status, disposition in REJECTIONS.items()
    ], [dict(r) for r in rows]


# -- 8: early media ---------------------------------------------------------------------------


def test_early_media_reaches_the_caller_anchored(rig: Rig) -> None:
    """B answers 183 with SDP before its 200: A gets the 183 with the SDP rewritten to
    the box's relay (not B's address), on the same dialog and relay port as the 200."""
    calls = 2
    uas = rig.callee("b2bua_uas_early_media.xml", calls=calls)
    uac = rig.caller("b2bua_uac.xml", "-d", "300", calls=calls, rate=2).wait(60)
    assert uac.returncode == 0 and uac.successful == calls, uac.describe()
    b = uas.wait(30)
    assert b.returncode == 0 and b.successful == calls, b.describe()
    b_port = media_port(b)
    responses = by_call([m for m in uac.received(method="INVITE") if m.status in (183, 200)])
    assert len(responses) == calls
    for early, final in responses.values():
        assert (early.status, final.status) == (183, 200)
        assert early.header("Content-Type") == "application/sdp"
        assert early.header("Contact") and final.header("Contact")  # dialog-establishing
        _, early_port, _ = assert_anchored(rig, early, not_port=b_port)
        _, final_port, _ = assert_anchored(rig, final, not_port=b_port)
        assert early_port == final_port
        assert origin(early)[0] == origin(final)[0]
        # the same early dialog becomes the confirmed one: the box's To-tag
        assert (early.header("To") or "").split("tag=")[-1] == (final.header("To") or "").split(
            "tag="
        )[-1]
        assert "tag=" in (early.header("To") or "")
    rows = rig.wait_idle(calls, uac, b)
    assert {(r["disposition"], r["hangup_by"]) for r in rows} == {("answered", "caller")}


# One message of the hold re-INVITE transaction lost on one side: (caller scenario,
# callee scenario); each "lost" variant ignores that message (-pause_msg_ign).
HOLD_LOSSES = {
    "2xx to the caller": ("b2bua_uac_hold_lost_200.xml", "b2bua_uas_held.xml"),
    "ACK to the callee": ("b2bua_uac_hold.xml", "b2bua_uas_held_lost_ack.xml"),
    "2xx to the callee": ("b2bua_uac_held.xml", "b2bua_uas_hold_lost_200.xml"),
    "ACK to the caller": ("b2bua_uac_held_lost_ack.xml", "b2bua_uas_hold.xml"),
}


@pytest.mark.parametrize(
    "lost",
    [
        "2xx to the caller",
        "ACK to the callee",
        "2xx to the callee",
        "ACK to the caller",
    ],
)
def test_hold_survives_a_lost_2xx_or_ack(rig: Rig, lost: str) -> None:
    """The holder's re-INVITE crosses the box; one message of it is lost at one side
    (that SIPp ignores it, as if the network dropped it):
    - the box's 200 to the holder: the box must send its 2xx again (it retransmits
      until the ACK, RFC 3261 13.3.1.4 applied to re-INVITEs by 14.2; or answers the
      retransmitted re-INVITE);
    - the box's ACK to the held side: that side retransmits its 200 and the box must
      ACK it again, with the re-INVITE's CSeq number (RFC 3261 13.2.2.4).
    Then the call resumes and ends normally."""
    uac_file, uas_file = HOLD_LOSSES[lost]
    # a message the box never sends again fails the call after 8 s instead of 32
    uas = rig.callee(uas_file, "-pause_msg_ign", "-recv_timeout", "8000", timeout_s=60)
    uac = rig.caller(uac_file, "-pause_msg_ign", "-recv_timeout", "8000", timeout_s=60).wait(90)
    b = uas.collect(20)
    losing = uac if lost.endswith("caller") else b
    if lost.startswith("2xx"):  # the holder sent the hold re-INVITE and lost its 200
        hold = next(m for m in losing.sent(method="INVITE") if "a=sendonly" in m.body)
        answers = losing.received(status=200, method="INVITE")
        again = [m for m in answers if m.header("CSeq") == hold.header("CSeq")]
        assert len(again) >= 2, f"the box sent its 200 once:\n{losing.describe(16)}"
    else:  # the held side answered the box's hold re-INVITE and lost the ACK
        hold = next(m for m in losing.received(method="INVITE") if "a=sendonly" in m.body)
        number = (hold.header("CSeq") or "").split()[0]
        acks = [m.header("CSeq") for m in losing.received(method="ACK")]
        assert acks.count(f"{number} ACK") >= 2, (
            f"ACKs for a {number} INVITE whose 200 was retransmitted: {acks}\n"
            + losing.describe(16)
        )
    assert uac.returncode == 0 and uac.successful == 1, uac.describe(16)
    assert b.returncode == 0 and b.successful == 1, b.describe(16)
    rig.wait_idle(1, uac, b)
