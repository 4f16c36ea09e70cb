"""Assembles the aiohttp application and runs it as the supervised "web" service.

Middlewares, outermost first: count every request for /metrics; turn failures into
JSON or HTML errors; the first-boot/login gate; CSRF. Security headers are added by
the ``on_response_prepare`` signal, so even static files and aiohttp's own errors
carry them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from ..app import App
from ..localapi import API_SOCKET
from . import api, pages
from .auth import gate
from .context import LOCAL, STATE, Access, WebState, policy
from .csrf import csrf
from .errors import errors
from .headers import add_security_headers
from .health import healthz
from .metrics import count_requests, metrics
from .openapi import openapi
from .settings import WebSettings

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
FORM_OVERHEAD = 256 * 1024  # multipart boundaries and the other fields of the import form


@policy(Access.PUBLIC)
async def no_favicon(request: web.Request) -> web.Response:
    """Browsers ask for /favicon.ico on their own; answer it without a login redirect."""
    raise web.HTTPFound("/static/favicon.svg")


def create_app(
    app: App,
    settings: WebSettings | None = None,
    state: WebState | None = None,
    *,
    local: bool = False,
) -> web.Application:
    """The web UI and REST API of ``app``.

    Pass ``state`` to keep sessions and login lockouts across re-creations (the
    service does, so a restart after a crash logs nobody out). ``local`` builds the
    variant served on the data directory's socket, where every request is the admin's.
    """
    web_state = state or WebState.new(app, settings)
    application = web.Application(
        middlewares=[count_requests, errors, gate, csrf],
        client_max_size=web_state.settings.max_body_bytes + FORM_OVERHEAD,
    )
    application[STATE] = web_state
    application[LOCAL] = local
    application.on_response_prepare.append(add_security_headers)
    router = application.router
    router.add_get("/healthz", healthz)
    router.add_get("/metrics", metrics)
    router.add_get("/favicon.ico", no_favicon)
    router.add_get("/api/v1/openapi.json", openapi)
    api.add_routes(router)
    pages.add_routes(router)
    router.add_static("/static/", STATIC, name="static", append_version=False)
    return application


class WebService:
    """The supervised service: the UI and API on ``app.ports.host:app.ports.web``, and
    the API for the ``skillepunkt`` CLI on ``<data dir>/api.sock`` (mode 0600).

    Port 0 picks a free port (tests); ``addresses`` tells where it listens once ready.
    A local socket that cannot be created (say, a data path too long for a unix socket)
    is logged as an error but does not take the web UI down with it.
    """

    name = "web"

    def __init__(self, app: App, settings: WebSettings | None = None) -> None:
        self.app = app
        self.state = WebState.new(app, settings)
        self.socket_path = app.data_dir / API_SOCKET
        self.addresses: list[tuple[str, int]] = []

    @property
    def port(self) -> int | None:
        return self.addresses[0][1] if self.addresses else None

    async def run(self, ready: Callable[[], None]) -> None:
        timeout = self.state.settings.shutdown_timeout_s
        runner = web.AppRunner(create_app(self.app, state=self.state), shutdown_timeout=timeout)
        local = web.AppRunner(
            create_app(self.app, state=self.state, local=True), shutdown_timeout=timeout
        )
        await runner.setup()
        await local.setup()
        try:
            await web.TCPSite(runner, self.app.ports.host, self.app.ports.web).start()
            self.addresses = [(str(a[0]), int(a[1])) for a in runner.addresses]
            await self._start_local(local)
            log.info(
                "web UI listening",
                extra={"url": f"http://{_url_host(self.app.ports.host)}:{self.port}/"},
            )
            ready()
            await asyncio.Event().wait()  # serve until cancelled
        finally:
            self.addresses = []
            await runner.cleanup()
            await local.cleanup()
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()

    async def _start_local(self, runner: web.AppRunner) -> None:
        try:
            await web.UnixSite(runner, str(self.socket_path)).start()
            # born with the umask's rights (0755 under systemd: nobody else may connect);
            # narrowed at once, inside a data directory that is 0700 anyway
            os.chmod(self.socket_path, 0o600)
        except OSError as exc:
            log.error(
                "local API socket not available",
                extra={"path": str(self.socket_path), "error": str(exc)},
            )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
