"""Channels, bridging, call routing, dial plan and number normalization."""

from .causes import (
    CAUSE_NAMES,
    NORMAL_CLEARING,
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
from .cdr import (
    CallRecord,
    CdrError,
    CdrStore,
    Direction,
    Disposition,
    HangupBy,
    Tech,
    disposition_for,
)

__all__ = [
    "CAUSE_NAMES",
    "NORMAL_CLEARING",
    "CallRecord",
    "CauseClass",
    "CdrError",
    "CdrStore",
    "Direction",
    "Disposition",
    "HangupBy",
    "Reason",
    "Tech",
    "cause_class",
    "cause_for_sip",
    "cause_for_sip_status",
    "cause_name",
    "disposition_for",
    "parse_reason",
    "parse_reasons",
    "reason_header",
    "sip_status_for_cause",
]
