"""The registrar: REGISTER in, response out (RFC 3261 §10.3), bindings into the location service.

Sans-I/O: ``handle(request, peer)`` returns the response and never raises; time comes from
an injected clock. Decisions worth knowing (each also explained where it is made):

- Any Request-URI host is accepted (phones address the box by IP, hostname or the
  provisioned domain); ``RegistrarSettings.domains`` restricts it (404 otherwise).
- Nothing tells an unauthenticated client whether an extension exists: unknown and known
  extensions are challenged alike, and a wrong password for either gets a fresh 401. This
  is what defeats extension scanners (svwar). Only an authenticated phone registering
  another AOR learns 404 (no such extension) or 403 (not yours).
- Failed password checks are counted per source IP and per account (`AuthGuard`); too many
  in a window answer 403 without looking at the password, for a while.
- §10.3 steps 6-7: a REGISTER with the Call-ID of a binding and a CSeq not higher than the
  one stored is out of order; the RFC says the request "fails" and every binding is left as
  it was. It is answered 500, the status §10.3 uses for a registration that failed.
- A stale or unknown nonce (e.g. issued before a restart: nonce keys are per boot) gets
  ``stale=true`` so phones retry silently; it does not count as a failure.
"""

from __future__ import annotations

import logging
import secrets
import sys
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from firmware.sip.digest import Credentials, DigestAuthenticator, DigestError, parse_credentials
from firmware.sip.errors import SipParseError
from firmware.sip.fields import NameAddr
from firmware.sip.headers import Headers
from firmware.sip.location import Binding, LocationError, LocationService
from firmware.sip.message import Request, Response
from firmware.sip.peer import Peer
from firmware.sip.syntax import quote, unquote
from firmware.sip.uri import SipUri, unescape

if TYPE_CHECKING:
    from firmware.config.store import ConfigStore
    from firmware.config.watch import ConfigChanged
    from firmware.events import EventBus

__all__ = [
    "SUPPORTED",
    "AuthGuard",
    "Registrar",
    "RegistrarSettings",
    "UserDirectory",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
PasswordLookup = Callable[[str], str | None]

#: Option tags a REGISTER may Require (RFC 3327 Path is stored and echoed).
SUPPORTED = ("path",)
_MAX_REG_ID = 2**31 - 1
# Verdict reasons that say nothing about the password: ask again, count nothing.
_RETRY_REASONS = frozenset({"unknown nonce", "nonce count replayed"})
_GUESS_REASONS = frozenset({"wrong password", "unknown user"})


@dataclass(frozen=True)
class RegistrarSettings:
    """Registration policy. Expiry values are seconds."""

    default_expires: int = 3600  # when neither the contact nor the request says
    min_expires: int = 60  # below: 423 Interval Too Brief (keeps refresh load bounded)
    max_expires: int = 3600  # above: shortened (a phone that vanished lapses in an hour)
    domains: frozenset[str] | None = None  # hosts served (lower case); None: any host
    max_failures_per_source: int = 10  # failed password checks from one IP ...
    max_failures_per_account: int = 20  # ... or against one extension ...
    failure_window: float = 300.0  # ... within this many seconds ...
    lockout: float = 900.0  # ... refuse it (403) for this long

    def __post_init__(self) -> None:
        if not 0 < self.min_expires <= self.max_expires:
            raise ValueError("need 0 < min_expires <= max_expires")
        if self.default_expires <= 0:
            raise ValueError("default_expires must be positive")
        if min(self.max_failures_per_source, self.max_failures_per_account) < 1:
            raise ValueError("failure limits must be at least 1")
        if self.failure_window <= 0 or self.lockout <= 0:
            raise ValueError("failure_window and lockout must be positive")


# -- users ------------------------------------------------------------------------------------


class UserDirectory:
    """Extension -> SIP password, cached: a REGISTER must not read the config database.

    ``load`` returns the ``users`` section (dicts with ``extension`` and ``sip_password``);
    `reload` re-reads it when the configuration changed.
    """

    def __init__(self, load: Callable[[], Iterable[Mapping[str, Any]]]) -> None:
        self._load = load
        self._passwords: dict[str, str] = {}
        self.reload()

    @classmethod
    def from_store(cls, store: ConfigStore) -> UserDirectory:
        return cls(lambda: store.section("users"))

    def reload(self) -> set[str]:
        """Re-read the users; return the extensions removed or whose password changed."""
        passwords: dict[str, str] = {}
        for user in self._load():
            extension, password = user.get("extension"), user.get("sip_password")
            if isinstance(extension, str) and isinstance(password, str) and password:
                passwords[extension] = password
        changed = {e for e, p in self._passwords.items() if passwords.get(e) != p}
        self._passwords = passwords
        return changed

    def password_for(self, extension: str) -> str | None:
        return self._passwords.get(extension)

    def __contains__(self, extension: object) -> bool:
        return extension in self._passwords

    def __len__(self) -> int:
        return len(self._passwords)


# -- brute-force guard ------------------------------------------------------------------------


@dataclass(slots=True)
class _Tally:
    first: float  # start of the counting window
    count: int = 0
    until: float = 0.0  # locked out until this clock time


@dataclass
class AuthGuard:
    """Counts failed password checks per source IP and per account; locks out the noisy.

    A success from an IP clears that IP's tally, so one misconfigured phone behind a
    site's NAT is not enough to lock the whole site out while its neighbours register.
    An account lockout does not apply to a source that holds a live binding of that
    account: an attacker hammering extension 101 must not unregister the real phone 101.
    Both tables are bounded (least recently touched forgotten first).
    """

    clock: Clock
    per_source: int = 10
    per_account: int = 20
    window: float = 300.0
    lockout: float = 900.0
    max_tracked: int = 10_000
    _sources: OrderedDict[str, _Tally] = field(default_factory=OrderedDict, repr=False)
    _accounts: OrderedDict[str, _Tally] = field(default_factory=OrderedDict, repr=False)

    def blocked(self, source: str, accounts: Iterable[str], *, bound: bool = False) -> bool:
        """Whether to refuse without checking: ``bound`` means ``source`` is registered."""
        now = self.clock()
        if self._locked(self._sources, source, now):
            return True
        return not bound and any(self._locked(self._accounts, a, now) for a in accounts)

    def failed(self, source: str, account: str) -> bool:
        """Count one wrong password; True when this one starts a lockout."""
        now = self.clock()
        by_source = self._count(self._sources, source, self.per_source, now)
        by_account = self._count(self._accounts, account, self.per_account, now)
        return by_source or by_account

    def succeeded(self, source: str, account: str) -> None:
        self._sources.pop(source, None)
        self._accounts.pop(account, None)

    def locked_out(self) -> tuple[list[str], list[str]]:
        """(sources, accounts) locked out now, for the status page and metrics."""
        now = self.clock()
        return (
            [k for k, t in self._sources.items() if t.until > now],
            [k for k, t in self._accounts.items() if t.until > now],
        )

    def prune(self) -> None:
        """Forget tallies whose window and lockout have passed."""
        now = self.clock()
        for table in (self._sources, self._accounts):
            for key in [k for k, t in table.items() if t.until <= now and not self._open(t, now)]:
                del table[key]

    def _locked(self, table: OrderedDict[str, _Tally], key: str, now: float) -> bool:
        tally = table.get(key)
        if tally is None or tally.until <= now:
            return False
        table.move_to_end(key)  # an attacker still knocking stays remembered
        return True

    def _open(self, tally: _Tally, now: float) -> bool:
        """Whether the tally still counts: its window runs and no lockout of it has ended."""
        return now - tally.first <= self.window and not (tally.until and tally.until <= now)

    def _count(self, table: OrderedDict[str, _Tally], key: str, limit: int, now: float) -> bool:
        tally = table.get(key)
        if tally is None or (tally.until <= now and not self._open(tally, now)):
            tally = table[key] = _Tally(now)
        table.move_to_end(key)
        tally.count += 1
        while len(table) > self.max_tracked:
            table.popitem(last=False)
        if tally.count >= limit and tally.until <= now:
            tally.until = now + self.lockout
            return True
        return False


# -- registrar --------------------------------------------------------------------------------


class _Refuse(Exception):
    """Answer the REGISTER with this status and change nothing."""

    def __init__(
        self, status: int, reason: str | None = None, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        super().__init__(status)
        self.status = status
        self.reason = reason
        self.headers = list(headers)


@dataclass(frozen=True, slots=True)
class _Wanted:
    """One Contact of the request, checked: what the REGISTER asks for it."""

    address: NameAddr
    uri: SipUri
    expires: int
    key: str
    instance: str | None
    reg_id: int | None


class Registrar:
    """Processes REGISTER for the box's extensions (AOR = the extension number).

    ``password_for(extension)`` gives the SIP password, None for unknown extensions
    (`UserDirectory.password_for`). ``stats`` counts outcomes for /metrics.
    """

    def __init__(
        self,
        location: LocationService,
        authenticator: DigestAuthenticator,
        password_for: PasswordLookup,
        *,
        clock: Clock = time.time,
        settings: RegistrarSettings | None = None,
    ) -> None:
        self.location = location
        self.authenticator = authenticator
        self.password_for = password_for
        self.clock = clock
        self.settings = settings = settings or RegistrarSettings()
        self.guard = AuthGuard(
            clock,
            per_source=settings.max_failures_per_source,
            per_account=settings.max_failures_per_account,
            window=settings.failure_window,
            lockout=settings.lockout,
        )
        self.stats: Counter[str] = Counter()

    # -- the one entry point ----------------------------------------------------------------

    def handle(self, request: Request, peer: Peer) -> Response:
        """The response to a REGISTER (or 405 to anything else). Never raises."""
        try:
            return self._register(request, peer)
        except _Refuse as refusal:
            self.stats[f"refused_{refusal.status}"] += 1
            return self._reply(request, refusal.status, refusal.reason, refusal.headers)
        except SipParseError as exc:  # a lazily parsed header turned out malformed
            self.stats["malformed"] += 1
            return self._reply(request, exc.status, None, [("Warning", _warning(exc.reason))])
        except LocationError as exc:
            log.error("REGISTER not stored", extra={"error": str(exc), "source": str(peer)})
            return self._reply(request, 500, None, [("Retry-After", "30")])
        except Exception:
            log.exception("REGISTER processing failed", extra={"source": str(peer)})
            return self._reply(request, 500, None, [("Retry-After", "30")])

    def sweep(self) -> list[Binding]:
        """Drop lapsed bindings and old failure tallies; call it every few seconds."""
        self.guard.prune()
        return self.location.sweep()

    # -- configuration ----------------------------------------------------------------------

    def users_changed(self, extensions: Iterable[str]) -> int:
        """Drop the bindings of these extensions (removed, or their password changed).

        A changed password is how a technician answers a leaked one, so whoever registered
        with the old password must not keep receiving calls until the binding lapses.
        """
        removed = self.location.remove_aors(extensions)
        if removed:
            log.info("bindings dropped after a user change", extra={"bindings": removed})
        return removed

    def forget_unknown(self) -> int:
        """Drop bindings of extensions that no longer exist (e.g. removed while we were down)."""
        return self.users_changed(a for a in self.location.aors() if self.password_for(a) is None)

    def follow(self, bus: EventBus, users: UserDirectory) -> Callable[[], None]:
        """Keep ``users`` and the bindings in step with the configuration; returns unsubscribe."""
        from firmware.config.watch import ConfigChanged  # runtime import: keeps sip light

        def changed(event: ConfigChanged) -> None:
            if "users" in event.sections:
                self.users_changed(users.reload())
                self.forget_unknown()

        self.forget_unknown()
        return bus.subscribe(ConfigChanged, changed)

    # -- §10.3 ------------------------------------------------------------------------------

    def _register(self, request: Request, peer: Peer) -> Response:
        if request.method != "REGISTER":
            raise _Refuse(405, None, [("Allow", "REGISTER")])
        target = request.uri
        if not isinstance(target, SipUri) or target.scheme not in ("sip", "sips"):
            raise _Refuse(416)
        if not self._serves(target.host):
            raise _Refuse(404, "Domain Not Served")
        to = request.to.uri
        if not isinstance(to, SipUri) or to.scheme not in ("sip", "sips") or not to.user:
            raise _Refuse(404)
        if not self._serves(to.host):
            raise _Refuse(404, "Domain Not Served")
        aor = unescape(to.user)
        # Parse everything we will use before any state changes: a malformed header is
        # a 400 and nothing else happens.
        contacts, expires, call_id, cseq = (
            request.contact, request.expires, request.call_id, request.cseq.number
        )  # fmt: skip
        unsupported = [tag for tag in request.require if tag not in SUPPORTED]
        if unsupported:
            raise _Refuse(420, None, [("Unsupported", ", ".join(unsupported))])
        path = tuple(str(hop) for hop in request.name_addrs("Path"))
        echo_path = "path" in request.supported

        self._authenticate(request, peer, aor)

        now = self.clock()
        current = self.location.contacts(aor)
        if contacts == "*":
            if expires != 0:
                raise _Refuse(400, "Contact * Needs Expires 0")
            for b in current:
                if b.call_id == call_id and cseq <= b.cseq:
                    raise _Refuse(500, "Out Of Order REGISTER")
            bindings = self.location.update(aor, remove=[b.key for b in current])
            self.stats["unregistered"] += 1
            log.info("unregistered", extra={"aor": aor, "source": str(peer)})
        elif contacts:
            remove, add = self._plan(request, peer, aor, current, contacts, expires, now, path)
            bindings = self.location.update(aor, remove=remove, add=add)
            self.stats["registered" if add else "unregistered"] += 1
        else:
            bindings = current  # a query: just list them
            self.stats["queried"] += 1
        headers = [("Contact", _contact(b, now)) for b in bindings]
        headers.append(("Date", formatdate(now, usegmt=True)))
        if echo_path:
            headers += [("Path", hop) for hop in path]
        return self._reply(request, 200, None, headers)

    def _plan(
        self,
        request: Request,
        peer: Peer,
        aor: str,
        current: tuple[Binding, ...],
        contacts: tuple[NameAddr, ...],
        expires_header: int | None,
        now: float,
        path: tuple[str, ...],
    ) -> tuple[list[str], list[Binding]]:
        """§10.3 step 7 for every Contact; all pass or the whole request is refused."""
        wanted = [self._wanted(c, expires_header) for c in contacts]
        if len({w.key for w in wanted}) != len(wanted):
            raise _Refuse(400, "Duplicate Contact")
        if len([w for w in wanted if w.expires]) > self.location.max_contacts:
            raise _Refuse(403, "Too Many Contacts")
        call_id, cseq = request.call_id, request.cseq.number
        user_agent = request.headers.get("User-Agent")
        if user_agent is not None:
            user_agent = sys.intern(user_agent)  # 500 phones, a handful of models
        remove: list[str] = []
        add: list[Binding] = []
        for w in wanted:
            match = _match(w, current)
            if match is not None:
                if match.call_id == call_id and cseq <= match.cseq:
                    raise _Refuse(500, "Out Of Order REGISTER")
                if match.key != w.key or not w.expires:
                    remove.append(match.key)
            if w.expires and match is None:
                log.info(
                    "registered",
                    extra={"aor": aor, "contact": str(w.uri), "source": str(peer),
                           "user_agent": user_agent},
                )  # fmt: skip
            if w.expires:
                add.append(
                    Binding(
                        aor=aor,
                        contact=str(w.uri),
                        expires_at=now + w.expires,
                        registered_at=now,
                        call_id=call_id,
                        cseq=cseq,
                        peer=peer,
                        q=w.address.q,
                        user_agent=user_agent,
                        instance=w.instance,
                        reg_id=w.reg_id,
                        path=path,
                    )
                )
        return remove, add

    def _wanted(self, contact: NameAddr, expires_header: int | None) -> _Wanted:
        uri = contact.uri
        if not isinstance(uri, SipUri) or uri.scheme not in ("sip", "sips"):
            raise _Refuse(400, "Contact Must Be A SIP URI")
        expires = contact.expires
        if expires is None:
            expires = self.settings.default_expires if expires_header is None else expires_header
        if 0 < expires < self.settings.min_expires:
            raise _Refuse(423, None, [("Min-Expires", str(self.settings.min_expires))])
        expires = min(expires, self.settings.max_expires)
        contact.q  # noqa: B018 - parse it now: a malformed q is a 400 before anything changes
        instance = contact.params.get("+sip.instance")
        instance = unquote(instance) if instance else None
        reg_id: int | None = None
        raw_reg_id = contact.params.get("reg-id")
        if instance is not None and raw_reg_id is not None:
            if not raw_reg_id.isdigit() or not 0 < int(raw_reg_id) <= _MAX_REG_ID:
                raise _Refuse(400, "Malformed reg-id")
            reg_id = int(raw_reg_id)
        if instance is None:
            key = str(uri)
        else:
            key = instance if reg_id is None else f"{instance};reg-id={reg_id}"
        return _Wanted(contact, uri, expires, key, instance, reg_id)

    # -- authentication ---------------------------------------------------------------------

    def _authenticate(self, request: Request, peer: Peer, aor: str) -> None:
        """Steps 3-4: digest auth as the AOR's own user, or a refusal."""
        credentials = self._credentials(request)
        username = credentials.get("username") if credentials else None
        account = username or aor
        bound = any(b.peer.host == peer.host for b in self.location.contacts(account))
        if self.guard.blocked(peer.host, {aor, account}, bound=bound):
            self.stats["locked_out"] += 1
            raise _Refuse(403)
        if credentials is None:
            self.stats["challenged"] += 1
            raise self._challenge()
        verdict = self.authenticator.verify(credentials, "REGISTER", self.password_for)
        if not verdict.ok:
            if verdict.stale or verdict.reason in _RETRY_REASONS:
                raise self._challenge(stale=True)
            if verdict.reason not in _GUESS_REASONS:
                raise self._challenge()  # unusable parameters: tell it what we accept
            self.stats["auth_failed"] += 1
            locked = self.guard.failed(peer.host, account)
            log.warning(
                "REGISTER authentication failed",
                extra={"source": str(peer), "aor": aor, "username": username,
                       "reason": verdict.reason, "locked_out": locked},
            )  # fmt: skip
            if locked:
                raise _Refuse(403)
            raise self._challenge()
        self.guard.succeeded(peer.host, account)
        if verdict.username != aor:
            # Registering someone else's extension (third-party registration) is not
            # allowed; an authenticated phone may learn whether the extension exists.
            log.warning(
                "REGISTER for another extension refused",
                extra={"source": str(peer), "aor": aor, "username": verdict.username},
            )
            raise _Refuse(404 if self.password_for(aor) is None else 403)

    def _credentials(self, request: Request) -> Credentials | None:
        """The Authorization for our realm (a request may carry several, one per realm)."""
        unusable = False
        for value in request.headers.get_all("Authorization"):
            try:
                credentials = parse_credentials(value)
            except DigestError:
                unusable = True
                continue
            if credentials.get("realm") == self.authenticator.realm:
                return credentials
        if unusable:
            raise _Refuse(400, "Malformed Authorization")
        return None

    def _challenge(self, *, stale: bool = False) -> _Refuse:
        challenges = self.authenticator.challenges(stale=stale)
        return _Refuse(401, None, [("WWW-Authenticate", c) for c in challenges])

    def _serves(self, host: str) -> bool:
        domains = self.settings.domains
        return domains is None or host.lower() in domains

    # -- responses --------------------------------------------------------------------------

    def _reply(
        self, request: Request, status: int, reason: str | None, headers: Iterable[tuple[str, str]]
    ) -> Response:
        tag = secrets.token_hex(6)
        try:
            return request.make_response(status, reason, to_tag=tag, headers=headers)
        except SipParseError:
            # A Request built in code without To/From: answer with what it has.
            copied = Headers()
            for name in ("Via", "From", "To", "Call-ID", "CSeq"):
                for value in request.headers.get_all(name):
                    copied.add(name, value)
            response = Response(status, reason, copied)
            for name, value in headers:
                response.headers.add(name, value)
            return response


def _match(wanted: _Wanted, current: tuple[Binding, ...]) -> Binding | None:
    """The binding this Contact refers to: same instance (and reg-id), else same URI (§19.1.4).

    A Contact with an instance id also takes over a plain binding of the same URI (a
    phone that started sending +sip.instance), but never another instance's binding.
    """
    for b in current:
        if b.key == wanted.key:
            return b
    for b in current:
        if (wanted.instance is None or b.instance is None) and b.uri == wanted.uri:
            return b
    return None


def _contact(binding: Binding, now: float) -> str:
    """A Contact value for the 200 OK: the URI with the expiry the registrar chose."""
    text = f"<{binding.contact}>;expires={binding.expires_in(now)}"
    if binding.q is not None:
        text += ";q=" + f"{binding.q:.3f}".rstrip("0").rstrip(".")
    if binding.instance is not None:
        text += f";+sip.instance={quote(binding.instance)}"
        if binding.reg_id is not None:
            text += f";reg-id={binding.reg_id}"
    return text


def _warning(reason: str) -> str:
    """A Warning value (399: miscellaneous) telling the phone's log what was wrong."""
    text = "".join(ch if " " <= ch <= "~" else "?" for ch in reason[:120])
    return f"399 skillepunkt {quote(text)}"
