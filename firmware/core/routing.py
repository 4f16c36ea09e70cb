"""Who may call and where a dialled number rings: the B2BUA's injected ``Router``.

Who: an extension calls by digest-authenticating its INVITE (the same password and
brute-force guard as REGISTER); a call from a configured trunk is trusted by its source
address (as carriers' SIP trunks are: IP-authenticated, no digest).

Where: the dial plan (``firmware.core.dialplan``) reads the dialled number. A feature
code changes the caller's own features (``firmware.core.features``) and the box answers
it itself (``LocalAnswer``); only a caller that authenticated as an extension may, a
trunk caller gets 403 whatever its From says. An extension rings the phone(s)
registered for it, reached where their REGISTER came from (NAT-safe), after its
features have had their say:

- unconditional forward: the target rings instead; chains are followed up to
  ``MAX_FORWARD_HOPS`` forwards. A forward that would lead back into the chain (a
  loop), back to the caller, to a number that is no longer an extension, or beyond
  the hop limit is not followed: the extension reached so far rings itself (as PBXs
  break forwarding loops), so the call still reaches someone;
- DND: the call is treated as busy. With a busy forward set it goes there (that is
  what the user asked for when busy: DND means "I cannot take calls"), else 486;
- no answer: the extension rings for its N seconds (``RouteStep.timeout``), then its
  no-answer target rings; an extension with no phone registered counts as not
  answering, so its no-answer target rings at once (else 480);
- busy: a busy/declined answer (486, 600, 603) moves on to the busy target.

A forward target rings after its own unconditional forward and DND (DND: that step
is left out), but its busy/no-answer forwards are not applied again (one level, so a
plan stays a short list). Numbers that are not extensions are refused (404; 484 for
the start of one) until trunks route them out.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from firmware.sip.b2bua import Caller, ConferenceRoom, LocalAnswer, RouteStep, Target
from firmware.sip.dialog import new_tag
from firmware.sip.digest import DigestAuthenticator, DigestError, parse_credentials
from firmware.sip.location import LocationService
from firmware.sip.message import Request, Response
from firmware.sip.peer import Peer
from firmware.sip.registrar import AuthGuard, UserDirectory
from firmware.sip.uri import SipUri, unescape

from .dialplan import DialPlan, ExtensionMatch, FeatureMatch, NoMatch
from .features import FeatureError, FeatureStore

log = logging.getLogger(__name__)


MAX_FORWARD_HOPS: Final = 5
# Final statuses that mean "busy" (a decline is a busy by the user's choice) and "did not
# answer" (408 also stands for the step's own timeout); each moves on to its forward.
BUSY: Final = frozenset({486, 600, 603})
NO_ANSWER: Final = frozenset({408, 480})


@dataclass(frozen=True)
class AuthenticatedCaller(Caller):
    """A caller that proved by digest to be extension ``number``: the only caller that
    may change that extension's features with a feature code."""


class ExtensionRouter:
    def __init__(
        self,
        users: UserDirectory,
        location: LocationService,
        authenticator: DigestAuthenticator,
        guard: AuthGuard,
        features: FeatureStore | None = None,
    ) -> None:
        """``features`` None keeps feature changes in memory only (tests, tools); call
        `set_users` with the configuration's users before routing calls."""
        self.users = users
        self.location = location
        self.authenticator = authenticator
        self.guard = guard
        self.features = features if features is not None else FeatureStore(None)
        self.plan = DialPlan(())
        self.trunks: dict[tuple[str, int], str] = {}  # (IP, port) -> trunk name
        # the box's own user agents (the analog gateway): trusted sources, static targets
        self.internal: dict[tuple[str, int], str] = {}  # (IP, port) -> name
        self.static: dict[str, Target] = {}  # extension -> where it rings (no REGISTER)
        self._user_numbers: frozenset[str] = frozenset()
        self.rooms: frozenset[str] = frozenset()  # dial-in conference rooms

    def set_users(self, users: Iterable[Mapping[str, Any]]) -> None:
        """The ``users`` section changed (or the service starts): new dial plan, and the
        features reconciled with the new configuration (``FeatureStore.configure``)."""
        entries = [u for u in users if isinstance(u.get("extension"), str)]
        self._user_numbers = frozenset(str(u["extension"]) for u in entries)
        self.plan = DialPlan(self._user_numbers | self.static.keys() | self.rooms)
        try:
            self.features.configure(entries)
        except FeatureError as exc:  # stale overrides stay until the next change; calls go on
            log.error("feature defaults not applied", extra={"error": str(exc)})

    def set_conference_rooms(self, rooms: Iterable[str]) -> None:
        """Numbers that join a conference room instead of ringing anyone."""
        self.rooms = frozenset(str(r) for r in rooms)
        self.plan = DialPlan(self._user_numbers | self.static.keys() | self.rooms)

    def set_trunks(self, trunks: list[dict[str, object]]) -> None:
        """Trust calls from these trunks' addresses (IP literals; names need DNS, later)."""
        table: dict[tuple[str, int], str] = {}
        for trunk in trunks:
            host, port = trunk.get("host"), trunk.get("port", 5060)
            if isinstance(host, str) and isinstance(port, int) and _is_ip(host):
                table[(host, port)] = str(trunk.get("name"))
        self.trunks = table

    def set_internal(self, name: str, host: str, port: int, extensions: Iterable[str]) -> None:
        """A user agent of the box itself (``name``, e.g. the analog gateway) at
        ``host:port``: its calls are trusted by source address like a trunk's (the caller
        in its From is believed), and ``extensions`` ring it there with no REGISTER.
        Replaces what ``name`` had; port 0 removes it."""
        self.internal = {k: v for k, v in self.internal.items() if v != name}
        self.static = {
            k: t for k, t in self.static.items() if (t.peer.host, t.peer.port) in self.internal
        }
        if port:
            self.internal[(host, port)] = name
            peer = Peer("udp", host, port)
            for ext in extensions:
                uri = SipUri("sip", ext, host, port)
                self.static[ext] = Target(uri=uri, peer=peer, callee=ext)
        self.plan = DialPlan(self._user_numbers | self.static.keys() | self.rooms)

    def authenticate(self, request: Request, peer: Peer) -> Caller | Response:
        """Trunk or internal UA by source address, else digest auth (407 challenge, as PBXes do)."""
        source = (peer.host, peer.port)
        if source in self.trunks or source in self.internal:
            uri = request.from_.uri
            number = uri.user if isinstance(uri, SipUri) and uri.user else "anonymous"
            display = request.from_.display_name
            target = self.static.get(number)
            if target is not None and (target.peer.host, target.peer.port) == source:
                # the box's own UA vouches for its port's extension: feature codes allowed
                return AuthenticatedCaller(number=number, display=display)
            return Caller(number=number, display=display)
        if self.guard.blocked(peer.host, ()):
            return request.make_response(403, to_tag=new_tag())
        credentials = None
        for value in request.headers.get_all("Proxy-Authorization"):
            try:
                parsed = parse_credentials(value)
            except DigestError:
                return request.make_response(400, "Malformed Proxy-Authorization", to_tag=new_tag())
            if parsed.get("realm") == self.authenticator.realm:
                credentials = parsed
        if credentials is None:
            return self._challenge(request)
        verdict = self.authenticator.verify(credentials, "INVITE", self.users.password_for)
        if not verdict.ok:
            if verdict.reason in ("wrong password", "unknown user"):
                self.guard.failed(peer.host, credentials.get("username") or "")
                log.warning(
                    "INVITE authentication failed",
                    extra={"source": str(peer), "username": credentials.get("username")},
                )
            return self._challenge(request, stale=verdict.stale)
        self.guard.succeeded(peer.host, verdict.username or "")
        display = request.from_.display_name
        return AuthenticatedCaller(number=verdict.username or "", display=display)

    def _challenge(self, request: Request, *, stale: bool = False) -> Response:
        headers = [("Proxy-Authenticate", c) for c in self.authenticator.challenges(stale=stale)]
        return request.make_response(407, to_tag=new_tag(), headers=headers)

    # -- routing ------------------------------------------------------------------------------

    def route(
        self, caller: Caller, dialled: str
    ) -> list[RouteStep] | LocalAnswer | ConferenceRoom | int:
        match = self.plan.match(unescape(dialled), final=True)
        if isinstance(match, FeatureMatch):
            return self._feature(caller, match)
        if isinstance(match, ExtensionMatch) and match.number in self.rooms:
            return ConferenceRoom(match.number)
        if isinstance(match, ExtensionMatch):
            return self._ring(caller, match.number)
        return 484 if isinstance(match, NoMatch) and match.partial else 404

    def _feature(self, caller: Caller, code: FeatureMatch) -> LocalAnswer | int:
        if not isinstance(caller, AuthenticatedCaller) or caller.number not in self.plan.extensions:
            log.warning(
                "feature code refused: caller is not an authenticated extension",
                extra={"caller": caller.number, "feature": code.feature.value},
            )
            return 403
        outcome = self.features.apply(caller.number, code, self.plan.extensions)
        return LocalAnswer(ok=outcome.ok, text=outcome.text)

    def _ring(self, caller: Caller, dialled: str) -> list[RouteStep] | int:
        callee, chain = self._follow(caller, dialled, [])
        state = self.features.state(callee)
        busy = self._diverted(caller, state.forward_busy, chain)
        if state.dnd:
            log.info("do not disturb", extra={"callee": callee, "to": state.forward_busy})
            return [RouteStep(busy)] if busy else 486
        own = self._contacts(callee)
        no_answer = self._diverted(caller, state.forward_no_answer, chain)
        if not own:
            return [RouteStep(no_answer)] if no_answer else 480
        if no_answer and busy and no_answer != busy:
            # the plan branches: busy goes to one target, no answer to the other; each
            # forward target's own failure ends the call (next_on empty)
            return [
                RouteStep(own, timeout=float(state.no_answer_s), next_on=NO_ANSWER | BUSY),
                RouteStep(busy, when=BUSY, next_on=frozenset()),
                RouteStep(no_answer, when=NO_ANSWER),
            ]
        if no_answer:
            next_on = NO_ANSWER | BUSY if busy else NO_ANSWER
            return [
                RouteStep(own, timeout=float(state.no_answer_s), next_on=next_on),
                RouteStep(no_answer),
            ]
        if busy:
            return [RouteStep(own, next_on=BUSY), RouteStep(busy)]
        return [RouteStep(own)]

    def _follow(self, caller: Caller, number: str, chain: list[str]) -> tuple[str, list[str]]:
        """Where ``number``'s unconditional forwards lead: (extension to ring, the chain
        of extensions passed, ``chain`` + those). See the module docstring for the
        forwards that are not followed."""
        chain = [*chain, number]
        hops = 0
        while True:
            target = self.features.state(number).forward_unconditional
            if target is None:
                return number, chain
            why = None
            if target not in self.plan.extensions:
                why = "target is not an extension"
            elif target in chain:
                why = "forwarding loop"
            elif target == caller.number:
                why = "target is the caller"
            elif hops >= MAX_FORWARD_HOPS:
                why = "too many forwards"
            if why is not None:
                log.info(
                    "forward not followed",
                    extra={"from": number, "to": target, "why": why, "chain": ",".join(chain)},
                )
                return number, chain
            log.info("forwarded", extra={"from": number, "to": target, "reason": "unconditional"})
            number, hops = target, hops + 1
            chain.append(number)

    def _diverted(self, caller: Caller, target: str | None, chain: list[str]) -> tuple[Target, ...]:
        """The contacts a busy/no-answer forward to ``target`` rings (none if it cannot)."""
        if target is None or target not in self.plan.extensions:
            return ()
        if target in chain or target == caller.number:
            return ()
        final, _ = self._follow(caller, target, chain)
        if self.features.state(final).dnd:
            return ()
        return self._contacts(final)

    def _contacts(self, extension: str) -> tuple[Target, ...]:
        """The static target of ``extension`` (an analog port) and every registered
        contact of it (rung together)."""
        static = self.static.get(extension)
        return (*((static,) if static else ()), *(
            Target(uri=binding.uri, peer=binding.peer, callee=extension)
            for binding in self.location.contacts(extension)
            if isinstance(binding.uri, SipUri)
        ))  # fmt: skip


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
