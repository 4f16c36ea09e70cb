"""Security headers on every answer, static files and errors included.

Set from ``on_response_prepare`` rather than a middleware because that signal also
fires for responses that never pass a middleware's return path (static files,
exceptions turned into responses by aiohttp itself).
"""

from __future__ import annotations

from aiohttp import web

CSP = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'; object-src 'none'"
)

_FIXED = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Pages and API answers are never cached (they carry state and secrets); the
    stylesheet may be, but is revalidated so a firmware update shows at once."""
    for name, value in _FIXED.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-cache")
    else:
        response.headers["Cache-Control"] = "no-store"
