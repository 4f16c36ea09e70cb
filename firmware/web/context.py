"""What the handlers share: the appliance, the web state, and each route's access policy.

The state lives outside the aiohttp application so that when the supervisor restarts a
crashed web service, logged-in technicians stay logged in and lockouts stay in force.
"""

from __future__ import annotations

import asyncio
import enum
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from aiohttp import web

from ..app import App
from .ratelimit import LoginLimiter
from .sessions import Session, SessionStore
from .settings import WebSettings


@dataclass
class WebState:
    app: App
    settings: WebSettings
    sessions: SessionStore
    limiter: LoginLimiter
    requests: Counter[tuple[str, int]] = field(default_factory=Counter)  # (method, status)
    imports: Counter[str] = field(default_factory=Counter)  # "ok" / "rejected"
    # scrypt costs ~16 MiB and tens of ms per check: a few at a time, off the event loop
    hashing: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))

    @classmethod
    def new(cls, app: App, settings: WebSettings | None = None) -> WebState:
        settings = settings or WebSettings()
        return cls(app, settings, SessionStore(settings), LoginLimiter(settings))


STATE = web.AppKey("skillepunkt_web_state", WebState)
LOCAL = web.AppKey("skillepunkt_local_api", bool)  # served on the data directory's socket
SESSION = web.RequestKey("skillepunkt_session", Session)


def state(request: web.Request) -> WebState:
    return request.app[STATE]


def session(request: web.Request) -> Session | None:
    return request.get(SESSION)


class Access(enum.Enum):
    PUBLIC = "public"  # always: health, metrics, API description, static assets
    SETUP = "setup"  # only while no admin password is set
    ANONYMOUS = "anonymous"  # once a password is set, without logging in: the login itself
    ADMIN = "admin"  # logged in (the default of every route)


class Csrf(enum.Enum):
    TOKEN = "token"  # the session's token: form field, or X-CSRF-Token header on the API
    JSON_ONLY = "json"  # no session yet (API login/setup): a JSON body, which forms can't send


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)
_ACCESS = "_skillepunkt_access"
_CSRF = "_skillepunkt_csrf"


def policy(access: Access, csrf: Csrf = Csrf.TOKEN) -> Callable[[H], H]:
    """Declare who may call a handler; undecorated handlers are admin-only."""

    def mark(handler: H) -> H:
        setattr(handler, _ACCESS, access)
        setattr(handler, _CSRF, csrf)
        return handler

    return mark


def access_of(request: web.Request) -> Access:
    if isinstance(request.match_info.route.resource, web.StaticResource):
        return Access.PUBLIC
    access = getattr(request.match_info.handler, _ACCESS, Access.ADMIN)
    assert isinstance(access, Access)
    return access


def csrf_of(request: web.Request) -> Csrf:
    csrf = getattr(request.match_info.handler, _CSRF, Csrf.TOKEN)
    assert isinstance(csrf, Csrf)
    return csrf


def is_local(request: web.Request) -> bool:
    return request.app.get(LOCAL, False)


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")
