"""Server-side sessions: the browser holds only a random id, everything else stays here.

Ids are 256 random bits, so guessing one is hopeless; they live in memory only, so a
reboot logs everybody out (acceptable on a single-admin appliance, and nothing to leak
from disk). Each session carries its own CSRF token. Logging in replaces the id
(no session fixation), and logging out or changing the password forgets it at once.

Anonymous sessions exist only to carry the CSRF token of the login and setup forms; they
are kept apart and capped, so a flood of form loads can never push out a logged-in admin.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from .settings import WebSettings

COOKIE = "skillepunkt_session"
SECURE_COOKIE = "__Host-" + COOKIE


def _token() -> str:
    return secrets.token_urlsafe(32)  # 32 bytes = 256 bits


@dataclass
class Session:
    id: str = field(repr=False)
    csrf_token: str = field(repr=False)
    user: str | None  # None: anonymous (a login or setup form)
    created: float
    last_seen: float

    @property
    def authenticated(self) -> bool:
        return self.user is not None


class SessionStore:
    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self._clock: Callable[[], float] = settings.clock
        self._admin: OrderedDict[str, Session] = OrderedDict()  # least recently used first
        self._anonymous: OrderedDict[str, Session] = OrderedDict()

    def counts(self) -> dict[str, int]:
        self._expire()
        return {"admin": len(self._admin), "anonymous": len(self._anonymous)}

    def get(self, session_id: str) -> Session | None:
        """The live session with this id (and mark it used), or None."""
        for table in (self._admin, self._anonymous):
            session = table.get(session_id)
            if session is None:
                continue
            if self._expired(session):
                del table[session_id]
                return None
            session.last_seen = self._clock()
            table.move_to_end(session_id)
            return session
        return None

    def create(self, user: str | None = None) -> Session:
        self._expire()
        now = self._clock()
        session = Session(_token(), _token(), user, now, now)
        table = self._admin if user is not None else self._anonymous
        limit = (
            self.settings.max_admin_sessions
            if user is not None
            else self.settings.max_anonymous_sessions
        )
        while len(table) >= limit:
            table.popitem(last=False)
        table[session.id] = session
        return session

    def login(self, previous: Session | None, user: str) -> Session:
        """A fresh authenticated session; the pre-login one (and its id) is forgotten."""
        if previous is not None:
            self.drop(previous)
        return self.create(user)

    def drop(self, session: Session) -> None:
        self._admin.pop(session.id, None)
        self._anonymous.pop(session.id, None)

    def drop_all_admin(self, keep: Session | None = None) -> None:
        """Log out every admin session but ``keep`` (after a password change)."""
        for sid in [sid for sid in self._admin if keep is None or sid != keep.id]:
            del self._admin[sid]

    def _expired(self, session: Session) -> bool:
        now = self._clock()
        return (
            now - session.last_seen > self.settings.session_idle_s
            or now - session.created > self.settings.session_max_age_s
        )

    def _expire(self) -> None:
        for table in (self._admin, self._anonymous):
            for sid in [sid for sid, s in table.items() if self._expired(s)]:
                del table[sid]


def cookie_name(request: web.Request) -> str:
    return SECURE_COOKIE if request.secure else COOKIE


def session_id_from(request: web.Request) -> str | None:
    return request.cookies.get(cookie_name(request))


def set_session_cookie(
    request: web.Request, response: web.StreamResponse, session: Session
) -> None:
    """Give the browser its session id, as tightly scoped as the connection allows.

    HttpOnly keeps it away from scripts, SameSite=Strict keeps other sites' pages from
    sending it, Path=/ with no Domain binds it to this box. ``Secure`` (and then the
    ``__Host-`` name prefix, which browsers only accept with Secure) is set exactly when
    the request came over HTTPS: on the appliance the UI is served on 443, but the dev
    port is plain HTTP on 127.0.0.1, where a Secure cookie would never be sent back and
    nobody could log in. No Max-Age: the cookie dies with the browser, the session dies
    here by idle timeout, whichever comes first.
    """
    response.set_cookie(
        cookie_name(request),
        session.id,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure or None,
    )


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(
        cookie_name(request),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure or None,
    )
