"""Session timers (RFC 4028) negotiated per leg, and what the box does on each leg.

Each leg of a call is its own dialog, so each gets its own interval and refresher.
When the box is the refresher it sends an UPDATE (or a re-INVITE with its last SDP
if the peer does not allow UPDATE) every half interval; when the peer is, the box
ends the call if no refresh came before the interval minus min(32 s, interval/3).
A leg whose peer does not do session timers at all still gets an in-dialog OPTIONS
every half interval as a keepalive: 481 or 408 means the other side forgot the call
(its BYE was lost) and the box releases the call and its media ports.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..message import Request, Response

MIN_SE = 90  # RFC 4028 §4: Min-SE is never below 90 s


class Refresher(StrEnum):
    BOX = "box"  # the box sends refreshes on this leg
    PEER = "peer"  # the peer does; the box watches
    KEEPALIVE = "keepalive"  # no session timer agreed: the box probes with OPTIONS


@dataclass(frozen=True)
class LegTimer:
    interval: int  # Session-Expires, seconds
    refresher: Refresher

    @property
    def refresh_after(self) -> float:
        """When the box refreshes (or probes), counted from the last refresh."""
        return self.interval / 2

    @property
    def expire_after(self) -> float:
        """When a silent peer-refreshed session is over (§10)."""
        return self.interval - min(32.0, self.interval / 3)


class SessionTimerError(ValueError):
    """A request whose Session-Expires is too small: answer 422 with ``min_se``."""

    def __init__(self, min_se: int) -> None:
        super().__init__(f"Session-Expires below Min-SE {min_se}")
        self.min_se = min_se


def parse_session_expires(value: str | None) -> tuple[int, str | None] | None:
    """``1800;refresher=uac`` -> (1800, "uac"); None when absent or unreadable."""
    if not value:
        return None
    head, _, params = value.partition(";")
    try:
        seconds = int(head.strip())
    except ValueError:
        return None
    if seconds <= 0:
        return None
    refresher = None
    for param in params.split(";"):
        name, _, val = param.partition("=")
        if name.strip().lower() == "refresher" and val.strip().lower() in ("uac", "uas"):
            refresher = val.strip().lower()
    return seconds, refresher


def _min_se(request: Request) -> int:
    try:
        return max(MIN_SE, int((request.headers.get("Min-SE") or "0").split(";")[0]))
    except ValueError:
        return MIN_SE


def negotiate_uas(
    request: Request, wanted: int, min_se: int = MIN_SE
) -> tuple[LegTimer, list[tuple[str, str]]]:
    """The box answers an INVITE (leg A): the leg's timer and the headers for the 2xx.

    Raises SessionTimerError when the caller asks for less than ``min_se`` (§9: 422).
    """
    asked = parse_session_expires(request.headers.get("Session-Expires"))
    supports = "timer" in request.supported or "timer" in request.require
    if asked is not None and asked[0] < min_se:
        raise SessionTimerError(min_se)
    if asked is None and not supports:
        return LegTimer(max(wanted, _min_se(request)), Refresher.KEEPALIVE), []
    interval = max(_min_se(request), min(asked[0], wanted) if asked else wanted)
    side = asked[1] if asked and asked[1] else ("uac" if supports else "uas")
    headers = [("Session-Expires", f"{interval};refresher={side}")]
    if side == "uac":
        headers.append(("Require", "timer"))
    refresher = Refresher.PEER if side == "uac" else Refresher.BOX
    return LegTimer(interval, refresher), headers


def offer_uac(interval: int, min_se: int = MIN_SE) -> list[tuple[str, str]]:
    """Headers of the box's INVITE on leg B (§7.1): the box offers to refresh."""
    return [
        ("Supported", "timer, 100rel"),
        ("Session-Expires", f"{interval}"),
        ("Min-SE", f"{min_se}"),
    ]


def negotiate_uac(response: Response, fallback: int) -> LegTimer:
    """The timer of leg B from the callee's 2xx (§7.2). Without Session-Expires the
    callee does no session timer: the box keeps the leg alive with OPTIONS probes."""
    answered = parse_session_expires(response.headers.get("Session-Expires"))
    if answered is None:
        return LegTimer(fallback, Refresher.KEEPALIVE)
    seconds, side = answered
    seconds = max(seconds, MIN_SE)
    return LegTimer(seconds, Refresher.PEER if side == "uas" else Refresher.BOX)


def min_se_from_422(response: Response) -> int | None:
    """A 422's Min-SE: the interval to retry with (§7.3)."""
    try:
        value = int((response.headers.get("Min-SE") or "").split(";")[0])
    except ValueError:
        return None
    return value if value >= MIN_SE else None


def refresh_headers(timer: LegTimer) -> list[tuple[str, str]]:
    """Session-Expires of a refresh the box sends: the sender of a refresh names
    itself the refresher, i.e. the UAC of that request (§7.4)."""
    if timer.refresher is Refresher.KEEPALIVE:
        return []
    return [("Session-Expires", f"{timer.interval};refresher=uac"), ("Supported", "timer")]


def answer_refresh(request: Request, timer: LegTimer) -> tuple[LegTimer, list[tuple[str, str]]]:
    """A refresh (re-INVITE/UPDATE) the peer sent: its sender becomes the refresher."""
    asked = parse_session_expires(request.headers.get("Session-Expires"))
    if asked is None:
        return timer, []
    interval = max(asked[0], MIN_SE)
    side = asked[1] or "uac"
    refresher = Refresher.PEER if side == "uac" else Refresher.BOX
    headers = [("Session-Expires", f"{interval};refresher={side}")]
    if side == "uac":
        headers.append(("Require", "timer"))
    return LegTimer(interval, refresher), headers
