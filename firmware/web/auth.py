"""Who may do what: the first-boot gate, login checks and the brute-force padding.

Until an admin password exists every page leads to /setup (there is no default
password to fall back on); after that, everything but the login and the public
endpoints needs a logged-in session. API clients get JSON 401s instead of redirects.

The one exception is the local API socket in the data directory (``skillepunkt sim``,
``config``... on the box itself): it is private to the firmware's user, who can read
the database anyway, so its requests count as the admin's, even before first setup.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
from dataclasses import dataclass

from aiohttp import web
from yarl import URL

from ..config.admin import ADMIN
from .context import SESSION, Access, Handler, access_of, is_api, is_local, session, state
from .responses import json_error
from .sessions import Session, session_id_from

log = logging.getLogger(__name__)

MAX_PASSWORD_CHARS = 1024  # longer input is refused before it reaches scrypt


def client_address(request: web.Request) -> str:
    return request.remote or "unknown"


def login_url(request: web.Request) -> str:
    if request.method == "GET" and request.path not in ("/", "/login"):
        return str(URL("/login").with_query(next=request.path_qs))
    return "/login"


def safe_next(target: str | None) -> str:
    """Only local paths: ``next`` must never send the browser to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@web.middleware
async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    access = access_of(request)
    if access is Access.PUBLIC:
        return await handler(request)
    web_state = state(request)
    if is_local(request):
        # The data directory's socket: whoever can open it can read the database anyway.
        now = web_state.settings.clock()
        request[SESSION] = Session(id="", csrf_token="", user=ADMIN, created=now, last_seen=now)
        return await handler(request)
    sid = session_id_from(request)
    current = web_state.sessions.get(sid) if sid else None
    if current is not None:
        request[SESSION] = current
    configured = web_state.app.admin.is_set()
    if access is Access.SETUP:
        if not configured:
            return await handler(request)
        if is_api(request):
            return json_error(409, "an admin password is already set")
        raise web.HTTPSeeOther("/" if current and current.authenticated else "/login")
    if not configured:
        if is_api(request):
            return json_error(
                401, "no admin password is set yet: set one on /setup or with POST /api/v1/setup"
            )
        raise web.HTTPSeeOther("/setup")
    if access is Access.ANONYMOUS or (current is not None and current.authenticated):
        return await handler(request)
    if is_api(request):
        return json_error(401, "not logged in")
    raise web.HTTPSeeOther(login_url(request))


def ensure_session(request: web.Request) -> tuple[Session, bool]:
    """The request's session, or a new anonymous one to carry a form's CSRF token.

    Returns the session and whether it is new (then the caller sets the cookie)."""
    current = session(request)
    if current is not None:
        return current, False
    created = state(request).sessions.create()
    request[SESSION] = created
    return created, True


@dataclass(frozen=True)
class Verdict:
    ok: bool
    retry_after: float = 0.0  # > 0: refused without checking; the client must wait this long

    @property
    def locked_out(self) -> bool:
        return self.retry_after > 0

    @property
    def wait_s(self) -> int:
        """Whole seconds to wait, for Retry-After and the message (never 0 when locked)."""
        return max(1, math.ceil(self.retry_after))


async def check_admin(request: web.Request, username: str, password: str) -> Verdict:
    """Check the admin credentials under the client's rate limit, in near-constant time.

    The scrypt check runs in a worker thread (it would stall SIP and media for tens of
    milliseconds) and every verdict is padded to ``login_min_response_s``, so neither a
    wrong user name nor an overlong password answers measurably faster.
    """
    web_state = state(request)
    client = client_address(request)
    wait = web_state.limiter.retry_after(client)
    if wait > 0:
        log.warning("admin login refused: too many failures", extra={"client": client})
        return Verdict(False, wait)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + web_state.settings.login_min_response_s
    web_state.limiter.begin(client)
    candidate = password if len(password) <= MAX_PASSWORD_CHARS else ""
    async with web_state.hashing:
        ok = await asyncio.to_thread(web_state.app.admin.verify, candidate)
    ok = ok and bool(candidate) and hmac.compare_digest(username.encode(), ADMIN.encode())
    if ok:
        web_state.limiter.succeeded(client)
    else:
        web_state.limiter.failed()
        log.warning("admin password check failed", extra={"client": client})
    await asyncio.sleep(max(0.0, deadline - loop.time()))
    return Verdict(ok)
