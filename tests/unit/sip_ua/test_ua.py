"""The gateway's SIP user agent against another instance of itself over loopback UDP:
INVITE/180/200/ACK, refusal, CANCEL before the answer, BYE from either side, a session
refresh re-INVITE, and nothing left in either UA afterwards; hold/resume re-INVITEs
(with glare), and REFER blind and attended (Refer-To read back with the B2BUA's own
parser) with the NOTIFY outcomes reaching the listener."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from firmware.sip.b2bua.transfer import ReferTo, Replaces, parse_refer_to
from firmware.sip.dialog import Dialog
from firmware.sip.message import Request
from firmware.sip.peer import Peer
from firmware.sip.ua import CallState, UaCall, UserAgent, sipfrag_status, with_direction
from firmware.sip.uri import unescape

OFFER = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
ANSWER = OFFER.replace(b"o=- 1", b"o=- 2")


class Recorder:
    def __init__(self, refuse: int | None = None) -> None:
        self.refuse = refuse
        self.events: list[tuple[str, object]] = []
        self.changed = asyncio.Event()

    def _add(self, name: str, value: object) -> None:
        self.events.append((name, value))
        self.changed.set()

    def on_incoming(self, call: UaCall) -> int | None:
        self._add("incoming", (call.number, call.caller, call.remote_sdp))
        return self.refuse

    def on_progress(self, call: UaCall, status: int, sdp: bytes) -> None:
        self._add("progress", status)

    def on_answered(self, call: UaCall, sdp: bytes) -> None:
        self._add("answered", sdp)

    def on_failed(self, call: UaCall, status: int) -> None:
        self._add("failed", status)

    def on_ended(self, call: UaCall) -> None:
        self._add("ended", call.status)

    def on_transfer(self, call: UaCall, status: int) -> None:
        self._add("transfer", status)

    async def wait(self, name: str, timeout: float = 3.0) -> object:
        async with asyncio.timeout(timeout):
            while True:
                for event, value in self.events:
                    if event == name:
                        return value
                self.changed.clear()
                await self.changed.wait()


Pair = tuple[UserAgent, Recorder, UserAgent, Recorder]


async def pair(refuse: int | None = None) -> Pair:
    ra, rb = Recorder(), Recorder(refuse)
    a = UserAgent(ra, Peer("udp", "127.0.0.1", 9))
    b = UserAgent(rb, Peer("udp", "127.0.0.1", 9))
    await a.start()
    await b.start()
    a.server = Peer("udp", *b.address)
    b.server = Peer("udp", *a.address)
    return a, ra, b, rb


@pytest.fixture
async def ua_pair() -> AsyncIterator[Pair]:
    p = await pair()
    try:
        yield p
    finally:
        await p[0].close()
        await p[2].close()


def incoming_call(ua: UserAgent) -> UaCall:
    (call,) = ua.calls.values()
    return call


async def test_call_answered_then_caller_hangs_up(ua_pair: Pair) -> None:
    a, ra, b, rb = ua_pair
    out = a.invite("101", "4512345678", OFFER)
    assert await rb.wait("incoming") == ("101", "4512345678", OFFER)
    assert await ra.wait("progress") == 180
    callee = incoming_call(b)
    b.answer(callee, ANSWER)
    assert await ra.wait("answered") == ANSWER
    async with asyncio.timeout(3):
        await callee.acked.wait()
    assert out.state is CallState.CONFIRMED and callee.state is CallState.CONFIRMED
    a.hangup(out)
    assert await rb.wait("ended") == 200
    assert a.active == 0 and b.active == 0
    assert ("failed", 487) not in ra.events


async def test_callee_hangs_up_and_refresh_keeps_sdp(ua_pair: Pair) -> None:
    a, ra, b, rb = ua_pair
    out = a.invite("101", None, OFFER)
    await rb.wait("incoming")
    callee = incoming_call(b)
    assert callee.caller is None  # anonymous
    b.answer(callee, ANSWER)
    await ra.wait("answered")
    assert out.dialog is not None
    refresh = out.dialog.request(
        "INVITE", body=OFFER, headers=[("Content-Type", "application/sdp")]
    )
    response = await a.endpoint.request(refresh, out.dialog.peer)
    assert response.status == 200 and response.body == ANSWER
    ack = Dialog.ack(out.dialog, refresh.cseq.number)
    a.endpoint.send_stateless(ack, out.dialog.peer)
    b.hangup(callee)
    await ra.wait("ended")
    assert a.active == 0 and b.active == 0


async def test_refused_call_fails_with_its_status() -> None:
    a, ra, b, _ = await pair(refuse=486)
    try:
        a.invite("101", "201", OFFER)
        assert await ra.wait("failed") == 486
        assert a.active == 0 and b.active == 0
        assert b.stats["refused"] == 1
    finally:
        await a.close()
        await b.close()


async def test_cancel_before_answer(ua_pair: Pair) -> None:
    a, ra, b, rb = ua_pair
    out = a.invite("101", "201", OFFER)
    await ra.wait("progress")
    a.hangup(out)
    assert await rb.wait("ended") == 487
    async with asyncio.timeout(3):
        while a.active:
            await asyncio.sleep(0.01)
    assert out.status == 487
    assert not any(e == "failed" for e, _ in ra.events)  # our own hang-up is no failure
    assert b.active == 0


async def test_unanswered_incoming_call_refused_by_callee(ua_pair: Pair) -> None:
    a, ra, b, rb = ua_pair
    a.invite("101", "201", OFFER)
    await rb.wait("incoming")
    b.hangup(incoming_call(b), 480)
    assert await ra.wait("failed") == 480
    assert a.active == 0 and b.active == 0


async def test_feature_code_is_escaped_and_arrives_whole(ua_pair: Pair) -> None:
    a, _, _b, rb = ua_pair
    out = a.invite("*21*202#", "101", OFFER)
    assert out.invite is not None and "%23" in str(out.invite.uri)
    number, _, _ = await rb.wait("incoming")  # type: ignore[misc]
    assert unescape(number) == "*21*202#"


async def test_bad_numbers_are_refused(ua_pair: Pair) -> None:
    a = ua_pair[0]
    for number in ("", "1@2", "10 1", "a;b"):
        with pytest.raises(ValueError):
            a.invite(number, None, OFFER)
    assert a.active == 0


# --- hold, resume and transfer -------------------------------------------------------------

SDP = (
    b"v=0\r\no=- 7 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 30000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n"
)


async def connected(
    a: UserAgent, ra: Recorder, b: UserAgent, rb: Recorder
) -> tuple[UaCall, UaCall]:
    seen = len([e for e, _ in ra.events if e == "answered"])
    out = a.invite("101", "201", SDP)
    async with asyncio.timeout(3):
        while not any(
            c.request is not None and c.state is CallState.OFFERED for c in b.calls.values()
        ):
            await asyncio.sleep(0.01)
    callee = next(c for c in b.calls.values() if c.state is CallState.OFFERED)
    b.answer(callee, SDP.replace(b"30000", b"30002"))
    async with asyncio.timeout(3):
        while len([e for e, _ in ra.events if e == "answered"]) <= seen:
            await asyncio.sleep(0.01)
        await callee.acked.wait()
    return out, callee


async def until(check: object, timeout: float = 4.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_hold_and_resume_reoffer_same_rtp_with_new_direction(ua_pair: Pair) -> None:
    a, ra, b, rb = ua_pair
    out, callee = await connected(a, ra, b, rb)
    a.hold(out)
    await until(lambda: b"a=sendonly" in callee.remote_sdp and callee.last_ack == 2)
    assert b"m=audio 30000 RTP/AVP 8" in callee.remote_sdp and b"o=- 7 2 " in callee.remote_sdp
    assert out.held and b"30002" in out.remote_sdp  # the far end's answer, kept
    a.resume(out)
    await until(lambda: b"a=sendrecv" in callee.remote_sdp and callee.last_ack == 3)
    assert b"o=- 7 3 " in callee.remote_sdp and not out.held
    b.hold(callee)  # the called side can hold too (its dialog's CSeq is its own)
    await until(lambda: b"a=sendonly" in out.remote_sdp)
    assert out.state is CallState.CONFIRMED and a.active == 1


async def test_reinvite_glare_is_retried(ua_pair: Pair) -> None:
    a, ra, b, rb = ua_pair
    out, callee = await connected(a, ra, b, rb)
    a.hold(out)
    b.hold(callee)  # both at once: one or both get 491 and try again
    await until(lambda: b"a=sendonly" in callee.remote_sdp and b"a=sendonly" in out.remote_sdp, 8.0)
    assert a.active == 1 and b.active == 1


async def test_hold_needs_a_confirmed_call(ua_pair: Pair) -> None:
    a = ua_pair[0]
    out = a.invite("101", "201", SDP)
    with pytest.raises(ValueError):
        a.hold(out)


class TransferTarget(UserAgent):
    """A UA that accepts REFER (202) and reports ``outcome`` in NOTIFYs (100, then it);
    ``refuse`` answers the REFER with that status instead."""

    def __init__(self, listener: Recorder, outcome: bytes, refuse: int | None = None) -> None:
        super().__init__(listener, Peer("udp", "127.0.0.1", 9))
        self.outcome = outcome
        self.refuse = refuse
        self.refers: list[Request] = []
        self.notify_answers: list[int] = []

    def on_request(self, txn: int, request: Request, peer: Peer) -> None:
        call = self.calls.get((request.call_id, request.to.tag or ""))
        if request.method != "REFER" or call is None or call.dialog is None:
            super().on_request(txn, request, peer)
            return
        call.dialog.check_request(request)
        self.refers.append(request)
        if self.refuse is not None:
            self.endpoint.respond(txn, request.make_response(self.refuse))
            return
        self.endpoint.respond(txn, request.make_response(202))
        dialog = call.dialog

        async def notify() -> None:
            for body, state in ((b"SIP/2.0 100 Trying\r\n", "active;expires=60"),
                                (self.outcome, "terminated;reason=noresource")):  # fmt: skip
                notify = dialog.request(
                    "NOTIFY",
                    headers=[
                        ("Event", "refer"),
                        ("Subscription-State", state),
                        ("Content-Type", "message/sipfrag;version=2.0"),
                    ],
                    body=body,
                )
                response = await self.endpoint.request(notify, dialog.peer)
                self.notify_answers.append(response.status)

        asyncio.get_running_loop().create_task(notify())


async def target_pair(outcome: bytes, refuse: int | None = None) -> Pair:
    ra, rb = Recorder(), Recorder()
    a = UserAgent(ra, Peer("udp", "127.0.0.1", 9))
    b = TransferTarget(rb, outcome, refuse)
    await a.start()
    await b.start()
    a.server = Peer("udp", *b.address)
    b.server = Peer("udp", *a.address)
    return a, ra, b, rb


async def test_attended_transfer_refer_with_replaces_and_notify_200() -> None:
    a, ra, b, rb = await target_pair(b"SIP/2.0 200 OK\r\n")
    assert isinstance(b, TransferTarget)
    try:
        first, _ = await connected(a, ra, b, rb)
        consult, _ = await connected(a, ra, b, rb)
        a.refer(first, "202", replaces=consult)
        assert await ra.wait("transfer") == 200
        (refer,) = b.refers
        target = parse_refer_to(refer.headers.get("Refer-To"))  # as the box reads it
        assert consult.dialog is not None
        assert target.target == "202" and target.replaces == Replaces(
            consult.dialog.call_id, consult.dialog.remote_tag, consult.dialog.local_tag
        )
        await until(lambda: b.notify_answers == [200, 200])
        assert not first.transferring
    finally:
        await a.close()
        await b.close()


async def test_blind_transfer_failure_and_refusal_reach_the_listener() -> None:
    for outcome, refuse, expected in ((b"SIP/2.0 486 Busy Here\r\n", None, 486),
                                      (b"", 403, 403)):  # fmt: skip
        a, ra, b, rb = await target_pair(outcome, refuse)
        assert isinstance(b, TransferTarget)
        try:
            call, _ = await connected(a, ra, b, rb)
            a.refer(call, "*21#")
            assert await ra.wait("transfer") == expected
            (refer,) = b.refers
            assert parse_refer_to(refer.headers.get("Refer-To")) == ReferTo("*21#", None)
        finally:
            await a.close()
            await b.close()


async def test_refer_refuses_what_cannot_be_transferred(ua_pair: Pair) -> None:
    a, ra, b, rb = ua_pair
    call, _ = await connected(a, ra, b, rb)
    ringing = a.invite("101", "201", SDP)
    for number, replaces in (("", None), ("2?x", None), ("202", call), ("202", ringing)):
        with pytest.raises(ValueError):
            a.refer(call, number, replaces)
    with pytest.raises(ValueError):
        a.refer(ringing, "202")


def test_sipfrag_and_direction_helpers() -> None:
    assert sipfrag_status(b"SIP/2.0 180 Ringing\r\n") == 180
    assert sipfrag_status(b"garbage") is None and sipfrag_status(b"") is None
    held = with_direction(SDP, "sendonly")
    assert b"a=sendonly" in held and b"a=sendrecv" not in held and b"o=- 7 2 " in held
    with pytest.raises(ValueError):
        with_direction(b"nonsense", "sendonly")
