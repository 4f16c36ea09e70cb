"""Turns every failure into a proper answer: JSON on the API, an HTML page elsewhere.

Redirects pass through untouched. An unexpected exception is logged with its
traceback (never the request body, which may hold passwords) and answered with 500,
so a bug in one handler shows up in the journal instead of as a dropped connection.
"""

from __future__ import annotations

import logging

from aiohttp import web

from .context import Handler, is_api
from .layout import error_page
from .responses import json_error

log = logging.getLogger(__name__)

_MESSAGES = {
    400: "The request was malformed.",
    404: "There is no such page.",
    405: "This method is not allowed here.",
    413: "The request body is too large.",
}


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _answer(request, exc.status, exc.reason, exc.headers.get("Allow"))
    except Exception:
        log.exception("web request failed", extra={"method": request.method, "path": request.path})
        return _answer(request, 500, "Internal Server Error", None)


def _answer(request: web.Request, status: int, reason: str, allow: str | None) -> web.Response:
    message = _MESSAGES.get(status, reason)
    if status == 500:
        message = "Something went wrong on the box; the details are in its log."
    if allow:
        message = f"{message} Allowed: {allow}."
    headers = {"Allow": allow} if allow else None
    if is_api(request):
        response = json_error(status, message, headers=headers)
    else:
        response = error_page(request, status, reason, message)
        if headers:
            response.headers.update(headers)
    return response
