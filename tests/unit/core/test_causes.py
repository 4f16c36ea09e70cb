"""Q.850 <-> SIP mapping tables against RFC 3398, cause names/classes, RFC 3326 Reason."""

from __future__ import annotations

import pytest

from firmware.core import (
    CAUSE_NAMES,
    CauseClass,
    Reason,
    cause_class,
    cause_for_sip,
    cause_for_sip_status,
    cause_name,
    parse_reason,
    parse_reasons,
    reason_header,
    sip_status_for_cause,
)
from firmware.core.causes import CAUSE_TO_SIP, SIP_TO_CAUSE

# RFC 3398 §7.2.4.1, every row of the table (cause -> SIP response).
RFC3398_CAUSE_TO_SIP = {
    1: 404, 2: 404, 3: 404, 17: 486, 18: 408, 19: 480, 20: 480, 21: 403, 22: 410,
    23: 410, 26: 404, 27: 502, 28: 484, 29: 501, 31: 480, 34: 503, 38: 503, 41: 503,
    42: 503, 47: 503, 55: 403, 57: 403, 58: 503, 65: 488, 70: 488, 79: 501, 87: 403,
    88: 503, 102: 504, 111: 500, 127: 500,
}  # fmt: skip

# RFC 3398 §8.2.6.1, every row that names a cause (487/488/606 name none).
RFC3398_SIP_TO_CAUSE = {
    400: 41, 401: 21, 402: 21, 403: 21, 404: 1, 405: 63, 406: 79, 407: 21, 408: 102,
    410: 22, 413: 127, 414: 127, 415: 79, 416: 127, 420: 127, 421: 127, 423: 127,
    480: 18, 481: 41, 482: 25, 483: 25, 484: 28, 485: 1, 486: 17, 500: 41, 501: 79,
    502: 38, 503: 41, 504: 102, 505: 127, 513: 127, 600: 17, 603: 21, 604: 1,
}  # fmt: skip


@pytest.mark.parametrize(("cause", "status"), sorted(RFC3398_CAUSE_TO_SIP.items()))
def test_cause_to_sip_matches_rfc3398(cause: int, status: int) -> None:
    assert sip_status_for_cause(cause) == status


@pytest.mark.parametrize(("status", "cause"), sorted(RFC3398_SIP_TO_CAUSE.items()))
def test_sip_to_cause_matches_rfc3398(status: int, cause: int) -> None:
    assert cause_for_sip_status(status) == cause


def test_tables_hold_exactly_the_rfc_rows_plus_documented_choices() -> None:
    assert CAUSE_TO_SIP == RFC3398_CAUSE_TO_SIP
    # 487 "no mapping", 488/606 "by Warning header", 607/608 newer than the RFC.
    assert {k: v for k, v in SIP_TO_CAUSE.items() if k not in RFC3398_SIP_TO_CAUSE} == {
        487: 127,
        488: 65,
        606: 65,
        607: 21,
        608: 21,
    }


def test_footnotes_and_normal_clearing() -> None:
    assert sip_status_for_cause(21, location=0) == 603  # (+): location "user" -> 6xx
    assert sip_status_for_cause(21, location=2) == 403
    # 16 ends an established call with BYE; if a response is still owed: class default.
    assert sip_status_for_cause(16) == 480


def test_unlisted_causes_map_by_class() -> None:
    # Unknown values behave as their class's unspecified cause (Q.850).
    assert sip_status_for_cause(0) == sip_status_for_cause(31) == 480
    assert sip_status_for_cause(5) == 480
    assert sip_status_for_cause(44) == sip_status_for_cause(47) == 503
    assert sip_status_for_cause(50) == sip_status_for_cause(63) == 503
    assert sip_status_for_cause(66) == sip_status_for_cause(79) == 501
    assert sip_status_for_cause(95) == sip_status_for_cause(81) == 500
    assert sip_status_for_cause(103) == sip_status_for_cause(111) == 500
    assert sip_status_for_cause(120) == sip_status_for_cause(127) == 500
    # every value in range maps to a final error response
    assert all(400 <= sip_status_for_cause(c) <= 699 for c in range(128))


def test_unlisted_statuses_map_as_x00() -> None:
    assert cause_for_sip_status(409) == cause_for_sip_status(400) == 41
    assert cause_for_sip_status(580) == cause_for_sip_status(500) == 41
    assert cause_for_sip_status(699) == cause_for_sip_status(600) == 17
    assert cause_for_sip_status(200) == 16  # answered, ended normally
    assert cause_for_sip_status(302) == 23  # redirect not followed
    assert all(0 <= cause_for_sip_status(s) <= 127 for s in range(200, 700))


def test_round_trips_where_the_rfc_has_them() -> None:
    # cause -> status -> cause returns the cause for the causes that own their status.
    for cause in (1, 17, 28, 79, 102):
        assert cause_for_sip_status(sip_status_for_cause(cause)) == cause
    # status -> cause -> status returns the status where the cause maps back to it.
    for status in (404, 486, 484, 501, 410):
        assert sip_status_for_cause(cause_for_sip_status(status)) == status
    # 408 -> 102 -> 504 and 503 -> 41 -> 503: the RFC's tables are not inverses.
    assert sip_status_for_cause(cause_for_sip_status(503)) == 503
    assert sip_status_for_cause(cause_for_sip_status(408)) == 504


@pytest.mark.parametrize("bad", [-1, 128, 1000, True, "16", 16.0, None])
def test_bad_cause_is_a_clear_error(bad: object) -> None:
    with pytest.raises(ValueError, match="cause"):
        sip_status_for_cause(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cause"):
        cause_name(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [99, 700, 0, -404, False, "404"])
def test_bad_status_is_a_clear_error(bad: object) -> None:
    with pytest.raises(ValueError, match="status"):
        cause_for_sip_status(bad)  # type: ignore[arg-type]


def test_provisional_status_does_not_end_a_call() -> None:
    with pytest.raises(ValueError, match="provisional"):
        cause_for_sip_status(180)


def test_names_and_classes() -> None:
    assert cause_name(16) == "Normal call clearing"
    assert cause_name(17) == "User busy"
    assert cause_name(127) == "Interworking, unspecified"
    assert "Resource unavailable, unspecified" in cause_name(45)  # unassigned -> class
    assert cause_class(16) is cause_class(1) is CauseClass.NORMAL
    assert cause_class(34) is CauseClass.RESOURCE_UNAVAILABLE
    assert cause_class(58) is CauseClass.SERVICE_UNAVAILABLE
    assert cause_class(65) is CauseClass.NOT_IMPLEMENTED
    assert cause_class(88) is CauseClass.INVALID_MESSAGE
    assert cause_class(102) is CauseClass.PROTOCOL_ERROR
    assert cause_class(127) is CauseClass.INTERWORKING
    assert all(0 < c <= 127 for c in CAUSE_NAMES)
    for cause in RFC3398_CAUSE_TO_SIP:
        assert cause in CAUSE_NAMES


# -- Reason header ----------------------------------------------------------------------


def test_reason_header_build() -> None:
    assert reason_header(16) == 'Q.850;cause=16;text="Normal call clearing"'
    assert reason_header(17, 'say "hi"\\') == 'Q.850;cause=17;text="say \\"hi\\"\\\\"'
    assert reason_header(31, "a\r\nb") == 'Q.850;cause=31;text="a  b"'
    with pytest.raises(ValueError):
        reason_header(200)


def test_reason_header_round_trip() -> None:
    for cause in (0, 1, 16, 17, 41, 127):
        value = reason_header(cause)
        assert parse_reason(value) == cause
        assert parse_reasons(value) == [Reason("Q.850", cause, cause_name(cause))]
    assert parse_reasons(reason_header(17, 'x "y" \\ z'))[0].text == 'x "y" \\ z'


def test_reason_header_parse_variants() -> None:
    assert parse_reason("Q.850;cause=17") == 17
    assert parse_reason('q.850 ; Cause = 34 ; text = "No circuit"') == 34
    # RFC 3326 example: several reason-values, the SIP one first.
    value = 'SIP ;cause=200 ;text="Call completed elsewhere", Q.850 ;cause=16 ;text="Terminated"'
    assert parse_reasons(value) == [
        Reason("SIP", 200, "Call completed elsewhere"),
        Reason("Q.850", 16, "Terminated"),
    ]
    assert parse_reason(value) == 16
    # commas and semicolons inside the quoted text do not split
    assert parse_reason('Q.850;text="a, b; c";cause=21') == 21
    # extension parameters are allowed (RFC 8606 location)
    assert parse_reason("Q.850;cause=18;location=LN") == 18
    assert parse_reason('SIP;cause=487;text="Request Terminated"') is None
    assert parse_reason('Q.850;text="no cause"') is None


@pytest.mark.parametrize(
    "bad",
    ["", ";cause=16", "Q.850;cause=", "Q.850;cause=x1", 'Q.850;text="open', "Q.850 cause=16",
     "Q.850;cause=16,", "Q.850;cause=128", "Q.850;cause=1234567"],
)  # fmt: skip
def test_reason_header_malformed_is_a_clear_error(bad: str) -> None:
    with pytest.raises(ValueError, match=r"Reason|cause"):
        parse_reason(bad)


def test_reason_header_wins_over_the_status_table() -> None:
    # a 503 whose Reason says the PSTN found the user busy: the Reason is what happened
    assert cause_for_sip(503, "Q.850;cause=17") == 17
    assert cause_for_sip(503, None) == 41
    assert cause_for_sip(503, 'SIP;cause=503;text="x"') == 41  # no Q.850 value: table
    assert cause_for_sip(503, "garbage;;;") == 41  # a peer's bad header changes nothing
    assert cause_for_sip(503, "Q.850;cause=200") == 41
    assert cause_for_sip(None, 'Q.850;cause=31;text="Normal"') == 31  # BYE with Reason
    assert cause_for_sip(None) == 16  # plain BYE
    with pytest.raises(ValueError, match="status"):
        cause_for_sip(99, "Q.850;cause=16")
