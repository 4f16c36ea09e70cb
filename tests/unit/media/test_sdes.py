"""SDES (RFC 4568) parsing, formatting, offer/answer and the SRTP policy decision."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.media.sdes import (
    ALL_SUITES,
    DEFAULT_SUITES,
    CryptoAttribute,
    CryptoSuite,
    KeyParams,
    SdesError,
    SrtpPolicy,
    Verdict,
    accept_answer,
    answer_offer,
    generate_key,
    make_offer,
    new_crypto,
    parse_crypto,
    parse_crypto_lines,
    select_crypto,
)

# RFC 4568 §9.1 / §8.1 / §4 examples (line folding removed).
RFC_EXAMPLES = [
    "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32",
    "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 "
    "FEC_ORDER=FEC_SRTP",
    "2 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;"
    "inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 FEC_ORDER=FEC_SRTP",
    "1 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32",
    "1 AES_CM_128_HMAC_SHA1_32 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^20|1:32",
]


@pytest.mark.parametrize("value", RFC_EXAMPLES)
def test_rfc_examples_parse_and_round_trip(value: str) -> None:
    attribute = parse_crypto(value)
    assert str(attribute) == value
    assert parse_crypto(str(attribute)) == attribute


def test_rfc_example_fields() -> None:
    a = parse_crypto(RFC_EXAMPLES[0])
    assert a.tag == 1
    assert a.known_suite is CryptoSuite.AES_CM_128_HMAC_SHA1_80
    (key,) = a.keys
    assert key.material == base64.b64decode("PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR")
    assert len(key.key(CryptoSuite.AES_CM_128_HMAC_SHA1_80)) == 16
    assert len(key.salt(CryptoSuite.AES_CM_128_HMAC_SHA1_80)) == 14
    assert key.lifetime == 2**20
    assert (key.mki, key.mki_length) == (1, 32)
    assert a.unusable_reason() == "MKI is not supported"

    f8 = parse_crypto(RFC_EXAMPLES[2])
    assert f8.known_suite is None
    assert [k.mki for k in f8.keys] == [1, 2]
    assert f8.session_params == ("FEC_ORDER=FEC_SRTP",)
    assert "unsupported crypto suite" in (f8.unusable_reason() or "")


def test_typical_phone_line_is_usable() -> None:
    line = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
    a = parse_crypto(line)
    assert a.unusable_reason() is None
    assert a.keys[0].lifetime is None and not a.keys[0].has_mki


def test_decimal_lifetime_and_window_hint() -> None:
    a = parse_crypto(
        "7 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1048576 "
        "WSH=256 KDR=0 -FOO=1"
    )
    assert a.keys[0].lifetime == 2**20
    assert a.window_size_hint == 256
    assert a.unusable_reason() is None
    assert str(a).endswith("|1048576 WSH=256 KDR=0 -FOO=1")


@pytest.mark.parametrize(
    "params,reason",
    [
        ("UNENCRYPTED_SRTP", "UNENCRYPTED_SRTP"),
        ("UNAUTHENTICATED_SRTP", "UNAUTHENTICATED_SRTP"),
        ("KDR=24", "key derivation rate"),
        ("FEC_ORDER=SRTP_FEC", "FEC_ORDER"),
    ],
)
def test_unsupported_session_params(params: str, reason: str) -> None:
    a = parse_crypto(
        f"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR {params}"
    )
    assert reason in (a.unusable_reason() or "")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1 AES_CM_128_HMAC_SHA1_80",
        "x AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
        "1234567890 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
        "1 AES_CM_128_HMAC_SHA1_80 uri:https://example.com/key",
        "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64",
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtx",  # short
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^49",
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1:0",
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|256:1",
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1:4|2^20",
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|2^20",
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|a|b|c",
    ],
)
def test_malformed_lines_raise_sdes_error(value: str) -> None:
    with pytest.raises(SdesError):
        parse_crypto(value)


@given(st.text(max_size=200))
def test_parser_raises_only_sdes_error(value: str) -> None:
    with contextlib.suppress(SdesError):
        parse_crypto(value)


@given(
    tag=st.integers(1, 999_999_999),
    suite=st.sampled_from(list(CryptoSuite)),
    data=st.data(),
    lifetime=st.one_of(st.none(), st.integers(0, 48).map(lambda e: (2**e, f"2^{e}"))),
    mki=st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(0, 2**32 - 1))),
    params=st.lists(st.sampled_from(["WSH=64", "KDR=0", "-X=1", "UNENCRYPTED_SRTCP"]), max_size=3),
)
def test_any_valid_line_round_trips(
    tag: int,
    suite: CryptoSuite,
    data: st.DataObject,
    lifetime: tuple[int, str] | None,
    mki: tuple[int, int] | None,
    params: list[str],
) -> None:
    material = data.draw(st.binary(min_size=suite.master_length, max_size=suite.master_length))
    mki_length, mki_value = mki if mki else (None, None)
    if mki_length is not None and mki_value is not None:
        mki_value %= 256**mki_length
    key = KeyParams(
        material,
        lifetime[0] if lifetime else None,
        mki_value,
        mki_length,
        lifetime[1] if lifetime else None,
    )
    attribute = CryptoAttribute(tag, str(suite), (key,), tuple(params))
    assert parse_crypto(str(attribute)) == attribute


@pytest.mark.parametrize("suite", list(CryptoSuite))
def test_generated_keys_round_trip(suite: CryptoSuite) -> None:
    a = new_crypto(3, suite)
    assert len(a.keys[0].material) == suite.master_length
    assert parse_crypto(str(a)) == a
    assert a.unusable_reason() is None
    assert generate_key(suite) != generate_key(suite)


def test_key_params_format_with_mki() -> None:
    key = KeyParams(bytes(30), 2**31, 5, 2, "2^31")
    assert str(key) == "inline:" + base64.b64encode(bytes(30)).decode() + "|2^31|5:2"


def test_select_picks_first_supported_and_echoes_tag() -> None:
    offered = parse_crypto_lines(
        [
            "1 AES_256_CM_HMAC_SHA1_80 inline:" + base64.b64encode(bytes(46)).decode(),
            "2 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4",
            "3 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj",
            "4 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj",
        ]
    )
    chosen = select_crypto(offered)
    assert chosen is not None
    remote, local = chosen
    assert remote.tag == local.tag == 3  # 1: unknown suite, 2: uses MKI
    assert local.suite == remote.suite == "AES_CM_128_HMAC_SHA1_32"
    assert local.keys[0].material != remote.keys[0].material
    only_80 = select_crypto(offered, [CryptoSuite.AES_CM_128_HMAC_SHA1_80])
    assert only_80 is not None and only_80[0].tag == 4
    assert select_crypto(offered, [CryptoSuite.AEAD_AES_128_GCM]) is None


def test_malformed_lines_are_skipped_not_fatal() -> None:
    lines = ["garbage", "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"]
    assert [a.tag for a in parse_crypto_lines(lines)] == [1]


SDES_LINE = "5 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
UNKNOWN_ONLY = "1 F8_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"


@pytest.mark.parametrize(
    "policy,proto,crypto,verdict",
    [
        (SrtpPolicy.OFF, "RTP/AVP", [], Verdict.PLAIN),
        (SrtpPolicy.OFF, "RTP/AVP", [SDES_LINE], Verdict.PLAIN),
        (SrtpPolicy.OFF, "RTP/SAVP", [SDES_LINE], Verdict.REFUSE),
        (SrtpPolicy.OPTIONAL, "RTP/AVP", [], Verdict.PLAIN),
        (SrtpPolicy.OPTIONAL, "RTP/AVP", [SDES_LINE], Verdict.SRTP),
        (SrtpPolicy.OPTIONAL, "RTP/AVP", [UNKNOWN_ONLY], Verdict.PLAIN),
        (SrtpPolicy.OPTIONAL, "RTP/SAVP", [SDES_LINE], Verdict.SRTP),
        (SrtpPolicy.OPTIONAL, "RTP/SAVP", [UNKNOWN_ONLY], Verdict.REFUSE),
        (SrtpPolicy.OPTIONAL, "RTP/SAVP", [], Verdict.REFUSE),
        (SrtpPolicy.MANDATORY, "RTP/AVP", [], Verdict.REFUSE),
        (SrtpPolicy.MANDATORY, "RTP/AVP", [SDES_LINE], Verdict.SRTP),
        (SrtpPolicy.MANDATORY, "RTP/AVP", [UNKNOWN_ONLY], Verdict.REFUSE),
        (SrtpPolicy.MANDATORY, "RTP/SAVP", [SDES_LINE], Verdict.SRTP),
        (SrtpPolicy.MANDATORY, "RTP/SAVPF", [SDES_LINE], Verdict.SRTP),
        (SrtpPolicy.MANDATORY, "RTP/SAVP", ["junk"], Verdict.REFUSE),
        (SrtpPolicy.MANDATORY, "UDP/TLS/RTP/SAVP", [], Verdict.REFUSE),
        (SrtpPolicy.OPTIONAL, "udptl", [], Verdict.REFUSE),
    ],
)
def test_policy_decision_table(
    policy: SrtpPolicy, proto: str, crypto: list[str], verdict: Verdict
) -> None:
    decision = answer_offer(policy, proto, crypto)
    assert decision.verdict is verdict, decision.reason
    assert decision.proto == proto
    if verdict is Verdict.REFUSE:
        assert decision.status == 488 and decision.reason
        assert decision.local is None
    else:
        assert decision.status is None
    if verdict is Verdict.SRTP:
        assert decision.remote is not None and decision.local is not None
        assert decision.local.tag == decision.remote.tag == 5
        assert decision.local.suite == decision.remote.suite
    else:
        assert decision.remote is None and decision.local is None


def test_answer_respects_supported_suites() -> None:
    decision = answer_offer(
        SrtpPolicy.MANDATORY, "RTP/SAVP", [SDES_LINE], [CryptoSuite.AEAD_AES_128_GCM]
    )
    assert decision.verdict is Verdict.REFUSE
    assert "AES_CM_128_HMAC_SHA1_80" in decision.reason or "suite" in decision.reason


def test_offer_per_policy() -> None:
    assert make_offer(SrtpPolicy.OFF).proto == "RTP/AVP"
    assert make_offer(SrtpPolicy.OFF).crypto == ()
    optional = make_offer(SrtpPolicy.OPTIONAL)
    assert optional.proto == "RTP/AVP"
    assert [a.suite for a in optional.crypto] == [str(s) for s in DEFAULT_SUITES]
    assert [a.tag for a in optional.crypto] == [1, 2]
    mandatory = make_offer(SrtpPolicy.MANDATORY, ALL_SUITES)
    assert mandatory.proto == "RTP/SAVP"
    assert len(mandatory.values) == len(ALL_SUITES)
    assert [parse_crypto(v) for v in mandatory.values] == list(mandatory.crypto)
    with pytest.raises(SdesError):
        make_offer(SrtpPolicy.MANDATORY, ())


def test_offer_answer_between_two_boxes() -> None:
    """Our offer, answered by our own answer_offer, accepted by accept_answer: both sides
    end up with mirrored keys."""
    offer = make_offer(SrtpPolicy.MANDATORY)
    decision = answer_offer(SrtpPolicy.OPTIONAL, offer.proto, offer.values)
    assert decision.verdict is Verdict.SRTP and decision.local and decision.remote
    result = accept_answer(SrtpPolicy.MANDATORY, offer, decision.proto, [str(decision.local)])
    assert result.secure
    assert result.local == decision.remote
    assert result.remote is not None
    assert result.remote.keys == decision.local.keys


def test_accept_answer_errors() -> None:
    offer = make_offer(SrtpPolicy.OPTIONAL)
    assert not accept_answer(SrtpPolicy.OPTIONAL, offer, "RTP/AVP", []).secure
    mandatory = make_offer(SrtpPolicy.MANDATORY)
    with pytest.raises(SdesError, match="required"):
        accept_answer(SrtpPolicy.MANDATORY, mandatory, "RTP/SAVP", [])
    other_tag = new_crypto(9, CryptoSuite.AES_CM_128_HMAC_SHA1_80)
    with pytest.raises(SdesError, match="not offered"):
        accept_answer(SrtpPolicy.OPTIONAL, offer, "RTP/AVP", [str(other_tag)])
    wrong_suite = new_crypto(1, CryptoSuite.AES_CM_128_HMAC_SHA1_32)
    with pytest.raises(SdesError, match="we offered"):
        accept_answer(SrtpPolicy.OPTIONAL, offer, "RTP/AVP", [str(wrong_suite)])
    two = [str(new_crypto(1, CryptoSuite.AES_CM_128_HMAC_SHA1_80))] * 2
    with pytest.raises(SdesError, match="expected one"):
        accept_answer(SrtpPolicy.OPTIONAL, offer, "RTP/AVP", two)
    with pytest.raises(SdesError, match="offered none"):
        accept_answer(SrtpPolicy.OFF, make_offer(SrtpPolicy.OFF), "RTP/AVP", two[:1])
    with pytest.raises(SdesError):
        new_crypto(0, CryptoSuite.AES_CM_128_HMAC_SHA1_80)
