"""What the B2BUA asks of the rest of the box: who calls, where a call goes, CDR hooks.

Routing and authentication are injected (``Router``) so the dial plan, the registrar
and trunks live in ``firmware.core``; the CDR store sits behind ``CallLog``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..message import Request, Response
from ..peer import Peer
from ..uri import SipUri


@dataclass(frozen=True)
class Target:
    """One destination of a call: Request-URI, the peer to send to, and who is called."""

    uri: SipUri | str
    peer: Peer
    callee: str


@dataclass(frozen=True)
class Caller:
    """Who is calling, once authenticated (or trusted, e.g. a trunk)."""

    number: str
    display: str | None = None


# Final statuses of a step after which the next step is tried (busy, no answer, gone).
NEXT_STEP_ON = frozenset({408, 480, 486, 600, 603})


@dataclass(frozen=True)
class RouteStep:
    """Targets rung together (parallel forking: the first to answer wins, the others are
    CANCELled), for at most ``timeout`` seconds (no-answer forwarding); a final status in
    ``next_on`` (or the timeout, as 408) moves on to the next step of the plan. A step
    with ``when`` is skipped unless the previous status is in it: that is how a plan
    branches (busy to one target, no answer to another)."""

    targets: tuple[Target, ...]
    timeout: float | None = None
    next_on: frozenset[int] = NEXT_STEP_ON
    when: frozenset[int] | None = None  # tried only after a step ending with one of these


@dataclass(frozen=True)
class LocalAnswer:
    """The box answers the call itself (a feature code): a short confirmation tone when
    ``ok``, an error tone otherwise, then it hangs up. ``text`` goes to the log."""

    ok: bool
    text: str = ""


@dataclass(frozen=True)
class ConferenceRoom:
    """The call joins dial-in conference room ``name`` (the box answers it)."""

    name: str


class Router(Protocol):
    def authenticate(self, request: Request, peer: Peer) -> Caller | Response:
        """The caller, or the response that refuses or challenges the request."""
        ...

    def route(
        self, caller: Caller, dialled: str
    ) -> list[RouteStep] | list[Target] | LocalAnswer | ConferenceRoom | int:
        """Where to ring ``dialled``: steps tried in order (a plain list of targets is
        one step), a local answer (feature codes), or a SIP status to refuse with."""
        ...


class CallLog(Protocol):
    """CDR sink (firmware.core.cdr.CdrStore fits through a thin adapter)."""

    def started(self, call_id: str, caller: Caller, dialled: str) -> None: ...

    def answered(self, call_id: str) -> None: ...

    def ended(
        self, call_id: str, status: int | None, hangup_by: str, media: dict[str, object]
    ) -> None: ...


def best_final(statuses: list[int]) -> int:
    """The response a forking B2BUA reports when every branch failed (RFC 3261 §16.7):
    a 6xx wins; otherwise busy (486) beats the weaker "not here" answers, then the
    lowest other 4xx, 5xx, 3xx; 408/480 only when nothing says more."""
    if not statuses:
        return 480
    six = [s for s in statuses if s >= 600]
    if six:
        return min(six)
    if 486 in statuses:
        return 486
    weak = {408, 480, 487}

    def rank(status: int) -> tuple[int, int]:
        order = {4: 0, 5: 1, 3: 2}.get(status // 100, 3)
        return (1 if status in weak else 0, order * 1000 + status)

    return min(statuses, key=rank)


def steps(plan: list[RouteStep] | list[Target]) -> list[RouteStep]:
    """A plain list of targets is one step ringing them all."""
    targets = [item for item in plan if isinstance(item, Target)]
    if targets:
        return [RouteStep(tuple(targets))]
    return [item for item in plan if isinstance(item, RouteStep)]


def applies(step: RouteStep, statuses: list[int]) -> bool:
    """Whether a plan's next step is tried, given the statuses of the steps before."""
    return step.when is None or (bool(statuses) and statuses[-1] in step.when)
