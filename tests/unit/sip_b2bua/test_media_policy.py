"""The B2BUA's media policy: which calls need the media bridge, and the SDP it offers
the callee and answers the caller (SRTP terminated, codecs transcoded)."""

from __future__ import annotations

import re

import pytest

from firmware.media.sdes import CryptoSuite, SrtpPolicy, Verdict, answer_offer, new_crypto
from firmware.sip.b2bua.media import (
    MediaRefused,
    answer_to_caller,
    offer_to_callee,
    plan_for_offer,
)
from firmware.sip.sdp import parse_sdp

BASE = "v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"


def sdp(media: str):  # type: ignore[no-untyped-def]
    return parse_sdp((BASE + media).encode())


def test_g711_calls_take_the_relay() -> None:
    plan = plan_for_offer(
        sdp("m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"),
        SrtpPolicy.OPTIONAL,
    )
    assert not plan.bridge
    assert not plan_for_offer(None, SrtpPolicy.OPTIONAL).bridge  # late offer


def test_one_law_only_widens_the_offer_and_bridges_only_for_another_answer() -> None:
    offer = sdp("m=audio 4000 RTP/AVP 0\r\n")
    plan = plan_for_offer(offer, SrtpPolicy.OPTIONAL)
    assert plan.widen and plan.shapes_sdp and not plan.bridge and not plan.secure
    offer_to_callee(plan, offer)
    assert offer.media[0].formats == ["0", "8"]
    answer = sdp("m=audio 5000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")
    caller, callee = answer_to_caller(plan, sdp("m=audio 4000 RTP/AVP 0\r\n"), answer)
    assert (caller.codec, callee.codec) == ("PCMU", "PCMA")
    assert answer.media[0].formats == ["0"]


def test_srtp_caller_gets_the_box_keys_and_the_callee_plain_rtp() -> None:
    key = new_crypto(1, CryptoSuite.AES_CM_128_HMAC_SHA1_80)
    text = f"m=audio 4000 RTP/SAVP 8 0\r\na=crypto:{key}\r\n"
    plan = plan_for_offer(sdp(text), SrtpPolicy.OPTIONAL)
    assert plan.bridge and plan.secure and plan.srtp is not None
    assert plan.srtp.verdict is Verdict.SRTP
    offer = sdp(text)
    offer_to_callee(plan, offer)
    assert offer.media[0].proto == "RTP/AVP" and not offer.media[0].values("crypto")
    answer = sdp("m=audio 5000 RTP/AVP 8\r\n")
    caller, _ = answer_to_caller(plan, sdp(text), answer)
    media = answer.media[0]
    assert media.proto == "RTP/SAVP" and caller.codec == "PCMA"
    (crypto,) = media.values("crypto")
    assert crypto.startswith("1 AES_CM_128_HMAC_SHA1_80 inline:") and str(key) not in crypto


def test_refusals() -> None:
    with pytest.raises(MediaRefused):  # SAVP without keys (DTLS-style): cannot serve
        plan_for_offer(sdp("m=audio 4000 RTP/SAVP 8\r\n"), SrtpPolicy.OPTIONAL)
    plan = plan_for_offer(sdp("m=audio 4000 RTP/AVP 0\r\n"), SrtpPolicy.OPTIONAL)
    with pytest.raises(MediaRefused):  # the caller offered nothing the box can transcode
        answer_to_caller(plan, sdp("m=audio 4000 RTP/AVP 3\r\n"), sdp("m=audio 5000 RTP/AVP 8\r\n"))


@pytest.mark.parametrize("policy", list(SrtpPolicy))
@pytest.mark.parametrize("proto", ["RTP/AVP", "RTP/AVPF", "RTP/SAVP", "UDP/TLS/RTP/SAVPF", "udptl"])
def test_offers_without_crypto_are_decided_as_sdes_decides(policy: SrtpPolicy, proto: str) -> None:
    """Decisions for offers without a=crypto are shared between calls (cached): each
    is still the one `answer_offer` makes, call after call."""
    expected = answer_offer(policy, proto, [])
    for _ in range(2):
        offer = sdp(f"m=audio 4000 {proto} 0\r\n")
        if expected.verdict is Verdict.REFUSE:
            with pytest.raises(MediaRefused, match=re.escape(expected.reason)):
                plan_for_offer(offer, policy)
        else:
            assert plan_for_offer(offer, policy).srtp == expected


def test_every_srtp_caller_gets_fresh_box_keys() -> None:
    key = new_crypto(1, CryptoSuite.AES_CM_128_HMAC_SHA1_80)
    text = f"m=audio 4000 RTP/SAVP 8 0\r\na=crypto:{key}\r\n"
    first, second = (plan_for_offer(sdp(text), SrtpPolicy.OPTIONAL) for _ in range(2))
    assert first.srtp is not None and second.srtp is not None
    assert first.srtp.local is not None and second.srtp.local is not None
    assert str(first.srtp.local) != str(second.srtp.local)


def test_leg_settings_follow_each_answer() -> None:
    """Leg settings are shared between calls (cached): each call still gets its own."""
    plan = plan_for_offer(sdp("m=audio 4000 RTP/AVP 0 8\r\n"), SrtpPolicy.OPTIONAL)
    for answer, ptime, codec in (
        ("m=audio 5000 RTP/AVP 8\r\na=ptime:30\r\n", 30, "PCMA"),
        ("m=audio 5000 RTP/AVP 0\r\n", 20, "PCMU"),
    ):
        offer = sdp("m=audio 4000 RTP/AVP 0 8\r\n")
        caller, callee = answer_to_caller(plan, offer, sdp(answer))
        assert (callee.codec, callee.payload_type, callee.ptime) == (
            codec,
            int(codec == "PCMA") * 8,
            ptime,
        )
        assert (caller.codec, caller.ptime, caller.event_pt) == (codec, 20, None)
