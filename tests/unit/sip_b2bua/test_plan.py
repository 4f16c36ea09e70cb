"""The pure parts of the B2BUA: route plans (forking steps, branching), best final
response, session-timer negotiation, 100rel bookkeeping and REFER parsing."""

from __future__ import annotations

import pytest

from firmware.sip.b2bua import session_timer as st
from firmware.sip.b2bua.plan import RouteStep, Target, applies, best_final, steps
from firmware.sip.b2bua.reliable import RAck, ReliableReceiver, ReliableSender
from firmware.sip.b2bua.transfer import TransferError, parse_refer_to
from firmware.sip.message import Request, parse_message
from firmware.sip.peer import Peer

BUSY = frozenset({486})
NO_ANSWER = frozenset({408, 480})


def target(n: str) -> Target:
    return Target(uri=f"sip:{n}@127.0.0.1", peer=Peer("udp", "127.0.0.1", 5060), callee=n)


def test_plain_targets_are_one_step() -> None:
    assert steps([target("1"), target("2")]) == [RouteStep((target("1"), target("2")))]


def test_branching_steps() -> None:
    busy_step = RouteStep((target("3"),), when=BUSY)
    assert not applies(busy_step, [])
    assert applies(busy_step, [486])
    assert not applies(busy_step, [408])
    assert applies(RouteStep((target("3"),)), [])


@pytest.mark.parametrize(
    ("statuses", "best"),
    [([], 480), ([480, 486], 486), ([408, 404], 404), ([503, 480], 503), ([486, 603], 603)],
)
def test_best_final(statuses: list[int], best: int) -> None:
    assert best_final(statuses) == best


def invite(*headers: str) -> Request:
    text = (
        "INVITE sip:201@box SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\n"
        "From: <sip:a@x>;tag=1\r\nTo: <sip:201@box>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
        "Contact: <sip:a@127.0.0.1>\r\nMax-Forwards: 70\r\n"
        + "".join(h + "\r\n" for h in headers)
        + "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def test_session_timer_uas_negotiation() -> None:
    timer, headers = st.negotiate_uas(invite(), 1800)
    assert timer.refresher is st.Refresher.KEEPALIVE and headers == []
    timer, headers = st.negotiate_uas(invite("Supported: timer", "Session-Expires: 600"), 1800)
    assert (timer.interval, timer.refresher) == (600, st.Refresher.PEER)
    assert ("Require", "timer") in headers
    timer, headers = st.negotiate_uas(invite("Session-Expires: 300;refresher=uas"), 1800)
    assert (timer.interval, timer.refresher) == (300, st.Refresher.BOX)
    with pytest.raises(st.SessionTimerError) as err:
        st.negotiate_uas(invite("Supported: timer", "Session-Expires: 60"), 1800)
    assert err.value.min_se == 90
    assert st.LegTimer(90, st.Refresher.PEER).expire_after == 60


def test_reliable_provisionals() -> None:
    sender = ReliableSender()
    headers = dict(sender.stamp())
    rseq = int(headers["RSeq"])
    assert not sender.acknowledge(RAck(rseq + 1, 1, "INVITE"), 1)
    assert sender.acknowledge(RAck(rseq, 1, "INVITE"), 1)
    assert sender.pending is None
    receiver = ReliableReceiver()
    assert receiver.accept(5) and not receiver.accept(5) and receiver.accept(6)


def test_refer_to_parsing() -> None:
    blind = parse_refer_to("<sip:203@127.0.0.1>")
    assert blind.target == "203" and blind.replaces is None
    attended = parse_refer_to("<sip:203@127.0.0.1?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>")
    assert attended.replaces is not None
    assert (attended.replaces.call_id, attended.replaces.to_tag) == ("abc@h", "1")
    assert parse_refer_to("<tel:+4512345678>").target == "+4512345678"
    for bad in ("", "<sip:x>", "<sip:203@x?Replaces=abc>"):
        with pytest.raises(TransferError):
            parse_refer_to(bad)
