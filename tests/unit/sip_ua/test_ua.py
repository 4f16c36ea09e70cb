"""The gateway's SIP user agent against another instance of itself over loopback UDP:
INVITE/180/200/ACK, refusal, CANCEL before the answer, BYE from either side, a session
refresh re-INVITE, and nothing left in either UA afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from firmware.sip.dialog import Dialog
from firmware.sip.peer import Peer
from firmware.sip.ua import CallState, UaCall, UserAgent
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
