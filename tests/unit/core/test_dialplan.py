"""The dial plan: complete, incomplete and unmatched digits, every feature code, both
overlap (analog, digit by digit) and en-bloc (SIP) dialling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.core.dialplan import (
    DialPlan,
    ExtensionMatch,
    Feature,
    FeatureMatch,
    Incomplete,
    NoMatch,
)

PLAN = DialPlan(["20", "201", "202", "2031", "301", "55"])

CODES = [
    ("*21*202#", FeatureMatch(Feature.FORWARD_UNCONDITIONAL, "202")),
    ("#21#", FeatureMatch(Feature.FORWARD_UNCONDITIONAL_OFF)),
    ("*67*301#", FeatureMatch(Feature.FORWARD_BUSY, "301")),
    ("#67#", FeatureMatch(Feature.FORWARD_BUSY_OFF)),
    ("*61*202#", FeatureMatch(Feature.FORWARD_NO_ANSWER, "202")),
    ("*61*202*30#", FeatureMatch(Feature.FORWARD_NO_ANSWER, "202", 30)),
    ("*61*004512345678*5#", FeatureMatch(Feature.FORWARD_NO_ANSWER, "004512345678", 5)),
    ("#61#", FeatureMatch(Feature.FORWARD_NO_ANSWER_OFF)),
    ("*26#", FeatureMatch(Feature.DND_ON)),
    ("#26#", FeatureMatch(Feature.DND_OFF)),
    ("*78", FeatureMatch(Feature.DND_ON)),
    ("*79", FeatureMatch(Feature.DND_OFF)),
]


@pytest.mark.parametrize(("digits", "expected"), CODES)
def test_every_feature_code_matches_en_bloc_and_digit_by_digit(
    digits: str, expected: FeatureMatch
) -> None:
    assert PLAN.match(digits, final=True) == expected
    assert PLAN.match(digits) == expected
    for i in range(1, len(digits)):  # every proper prefix waits for more
        assert PLAN.match(digits[:i]) == Incomplete(), digits[:i]


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("*21*202", FeatureMatch(Feature.FORWARD_UNCONDITIONAL, "202")),
        ("#21", FeatureMatch(Feature.FORWARD_UNCONDITIONAL_OFF)),
        ("*61*202*45", FeatureMatch(Feature.FORWARD_NO_ANSWER, "202", 45)),
        ("*26", FeatureMatch(Feature.DND_ON)),
    ],
)
def test_en_bloc_accepts_a_code_whose_hash_the_phone_kept_as_send_key(
    digits: str, expected: FeatureMatch
) -> None:
    assert PLAN.match(digits, final=True) == expected
    assert PLAN.match(digits) == Incomplete()


def test_feature_arguments_are_passed_unchecked_for_the_feature_layer() -> None:
    # out of range seconds and unknown targets are the feature layer's business
    assert PLAN.match("*61*999*500#") == FeatureMatch(Feature.FORWARD_NO_ANSWER, "999", 500)
    assert PLAN.match("*21*99#") == FeatureMatch(Feature.FORWARD_UNCONDITIONAL, "99")


@pytest.mark.parametrize(
    "digits",
    ["*22#", "*21#", "*21*2#", "*21**202#", "*61*202*#", "*61*202*1234#", "#21*", "*26##",
     "*780", "**", "#", "*21*" + "1" * 16 + "#", "*61*202*30*", "*21*20a#"],
)  # fmt: skip
def test_malformed_feature_codes_do_not_match(digits: str) -> None:
    result = PLAN.match(digits, final=True)
    assert isinstance(result, NoMatch), (digits, result)
    # at most a prefix in overlap mode, never a match
    assert not isinstance(PLAN.match(digits), ExtensionMatch | FeatureMatch)


def test_wrong_codes_fail_as_soon_as_a_digit_rules_them_out() -> None:
    assert isinstance(PLAN.match("*22"), NoMatch)
    assert isinstance(PLAN.match("*21*20*"), NoMatch)
    assert isinstance(PLAN.match("#2#"), NoMatch)


def test_incomplete_feature_codes_en_bloc_say_partial() -> None:
    for digits in ("*21*", "*6", "#", "*61*202*"):
        result = PLAN.match(digits, final=True)
        assert isinstance(result, NoMatch) and result.partial, digits


def test_extensions_complete_incomplete_and_unknown() -> None:
    assert PLAN.match("301") == ExtensionMatch("301")
    assert PLAN.match("55", final=True) == ExtensionMatch("55")
    assert PLAN.match("3") == Incomplete()
    assert PLAN.match("203") == Incomplete()
    assert PLAN.match("2031") == ExtensionMatch("2031")
    assert PLAN.match("999") == NoMatch("no extension '999'")
    assert PLAN.match("3011") == NoMatch("no extension '3011'")
    assert PLAN.match("203", final=True) == NoMatch("'203' is the start of an extension", True)
    assert PLAN.match("") == Incomplete()
    assert isinstance(PLAN.match("", final=True), NoMatch)


def test_an_extension_that_starts_a_longer_one_waits_then_has_a_candidate() -> None:
    # 20 and 201 both exist: the analog collector waits, and dials 20 on timeout
    assert PLAN.match("20") == Incomplete(candidate=ExtensionMatch("20"))
    assert PLAN.match("20", final=True) == ExtensionMatch("20")
    assert PLAN.match("2") == Incomplete(candidate=None)


@pytest.mark.parametrize("digits", ["20a", "2 01", "٢٠١", "+4520", "sip", "1" * 33])
def test_non_digits_never_match(digits: str) -> None:
    assert isinstance(PLAN.match(digits), NoMatch)
    assert isinstance(PLAN.match(digits, final=True), NoMatch)


def test_a_plan_refuses_what_is_not_an_extension_number() -> None:
    with pytest.raises(ValueError, match="not an extension"):
        DialPlan(["1"])
    with pytest.raises(ValueError, match="not an extension"):
        DialPlan(["20x"])
    assert DialPlan([]).match("201", final=True) == NoMatch("no extension '201'")


@given(st.text(alphabet="0123456789*#", max_size=20))
def test_overlap_and_en_bloc_agree(digits: str) -> None:
    """A match en-bloc is either a match or an incomplete with that candidate digit by
    digit (or a code whose '#' was left out); digit by digit never matches what en-bloc
    rejects."""
    overlap = PLAN.match(digits)
    bloc = PLAN.match(digits, final=True)
    assert not isinstance(bloc, Incomplete)
    if isinstance(overlap, ExtensionMatch | FeatureMatch):
        assert bloc == overlap
    if isinstance(overlap, NoMatch):
        assert isinstance(bloc, NoMatch)
    if isinstance(bloc, ExtensionMatch):
        assert overlap in (bloc, Incomplete(candidate=bloc))
