"""Cross-site request forgery defence for every state-changing request.

Three layers, because the box sits on a LAN where a technician's browser also visits
other sites: the session cookie is SameSite=Strict; a request whose Origin (or
Sec-Fetch-Site) says it came from another site is refused; and every unsafe request
must present the session's secret token, as the ``csrf_token`` form field or, on the
API, the ``X-CSRF-Token`` header. The two API calls that come before any session
(login and first-boot setup) instead insist on a JSON body, which a cross-site form
cannot send and a cross-site script could only send after a CORS preflight that this
server never grants. Requests on the data directory's local socket need none of this:
browsers cannot reach a unix socket.
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web
from yarl import URL

from .context import Access, Csrf, Handler, access_of, csrf_of, is_api, is_local, session
from .layout import error_page
from .responses import json_error

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def same_site(request: web.Request) -> bool:
    """False when the browser says the request was made by another site's page.

    ``Origin: null`` is no evidence either way: with ``Referrer-Policy: no-referrer``
    (which this server sends) Chromium uses it for its own same-origin form posts.
    The token check that follows is what really decides.
    """
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return True
    return origin.lower() == f"{request.scheme}://{request.host}".lower()


async def _presented_token(request: web.Request) -> str:
    if is_api(request):
        return request.headers.get(HEADER, "")
    if request.content_type not in FORM_TYPES:
        return ""
    value = (await request.post()).get(FIELD)
    return value if isinstance(value, str) else ""


def _refuse(request: web.Request, why: str) -> web.StreamResponse:
    log.warning("unsafe request refused", extra={"path": request.path, "why": why})
    if is_api(request):
        return json_error(
            403, f"{why}: unsafe requests need the {HEADER} header (GET /api/v1/session)"
        )
    if access_of(request) in (Access.SETUP, Access.ANONYMOUS):
        # a login or setup form left open too long: offer a fresh one instead of an error
        raise web.HTTPSeeOther(str(URL(request.path).with_query(expired="1")))
    return error_page(
        request,
        403,
        "Request refused",
        "This form has expired or did not come from this box. Go back, reload the page "
        "and try again.",
    )


@web.middleware
async def csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in SAFE_METHODS or access_of(request) is Access.PUBLIC or is_local(request):
        return await handler(request)  # (no browser can reach the local socket)
    if not same_site(request):
        return _refuse(request, "cross-site request")
    if csrf_of(request) is Csrf.JSON_ONLY:
        if request.content_type != "application/json":
            return json_error(415, "send the request body as application/json")
        return await handler(request)
    current = session(request)
    token = await _presented_token(request)
    if (
        current is None
        or not token
        or not hmac.compare_digest(token.encode(), current.csrf_token.encode())
    ):
        return _refuse(request, "missing or wrong CSRF token")
    return await handler(request)
