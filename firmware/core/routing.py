"""Who may call and where a dialled number rings: the B2BUA's injected ``Router``.

The first dial plan of the box: an extension calls by digest-authenticating its INVITE
(the same password and brute-force guard as REGISTER); a call from a configured trunk
is trusted by its source address (as carriers' SIP trunks are: IP-authenticated, no
digest); a dialled extension rings the phone(s) registered for it, reached where their
REGISTER came from (NAT-safe). Calls to numbers that are not extensions are refused
(404) until the core dial plan routes them out through trunks.
"""

from __future__ import annotations

import ipaddress
import logging

from firmware.sip.b2bua import Caller, Target
from firmware.sip.dialog import new_tag
from firmware.sip.digest import DigestAuthenticator, DigestError, parse_credentials
from firmware.sip.location import LocationService
from firmware.sip.message import Request, Response
from firmware.sip.peer import Peer
from firmware.sip.registrar import AuthGuard, UserDirectory
from firmware.sip.uri import SipUri

log = logging.getLogger(__name__)


class ExtensionRouter:
    def __init__(
        self,
        users: UserDirectory,
        location: LocationService,
        authenticator: DigestAuthenticator,
        guard: AuthGuard,
    ) -> None:
        self.users = users
        self.location = location
        self.authenticator = authenticator
        self.guard = guard
        self.trunks: dict[tuple[str, int], str] = {}  # (IP, port) -> trunk name

    def set_trunks(self, trunks: list[dict[str, object]]) -> None:
        """Trust calls from these trunks' addresses (IP literals; names need DNS, later)."""
        table: dict[tuple[str, int], str] = {}
        for trunk in trunks:
            host, port = trunk.get("host"), trunk.get("port", 5060)
            if isinstance(host, str) and isinstance(port, int) and _is_ip(host):
                table[(host, port)] = str(trunk.get("name"))
        self.trunks = table

    def authenticate(self, request: Request, peer: Peer) -> Caller | Response:
        """Trunk by source address, else digest auth (407 challenge, as PBXes do)."""
        if (peer.host, peer.port) in self.trunks:
            uri = request.from_.uri
            number = uri.user if isinstance(uri, SipUri) and uri.user else "anonymous"
            return Caller(number=number, display=request.from_.display_name)
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
        return Caller(number=verdict.username or "", display=display)

    def _challenge(self, request: Request, *, stale: bool = False) -> Response:
        headers = [("Proxy-Authenticate", c) for c in self.authenticator.challenges(stale=stale)]
        return request.make_response(407, to_tag=new_tag(), headers=headers)

    def route(self, caller: Caller, dialled: str) -> list[Target] | int:
        if dialled not in self.users:
            return 404
        bindings = self.location.contacts(dialled)
        if not bindings:
            return 480  # a known extension with no phone registered right now
        targets = []
        for binding in bindings:
            uri = binding.uri
            peer = binding.peer
            if not isinstance(uri, SipUri):
                continue
            targets.append(Target(uri=uri, peer=peer, callee=dialled))
        return targets or 480


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
