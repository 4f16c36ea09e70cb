"""The box's back-to-back user agent: calls between SIP parties through the box.

`core` runs calls, `plan` says what it needs from the rest of the box (routing,
authentication, CDRs), `session_timer`, `reliable` and `transfer` hold the pure rules
of RFC 4028, RFC 3262 and REFER/Replaces, `transfers` and `local` the two ways a call
is rewired or answered by the box itself.
"""

from .call import Branch, Call, CallLeg
from .core import B2BUA
from .plan import (
    NEXT_STEP_ON,
    Caller,
    CallLog,
    ConferenceRoom,
    LocalAnswer,
    Router,
    RouteStep,
    Target,
)

__all__ = [
    "B2BUA",
    "NEXT_STEP_ON",
    "Branch",
    "Call",
    "CallLeg",
    "CallLog",
    "Caller",
    "ConferenceRoom",
    "LocalAnswer",
    "RouteStep",
    "Router",
    "Target",
]
