"""The REST API under /api/v1: JSON in, JSON out, the same rules as the web pages.

Authentication is the web session (cookie); unsafe methods also need the session's
X-CSRF-Token header. Tools that are not browsers log in with POST /api/v1/session and
read the token from its answer. Every endpoint is described in ``openapi.py``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from ..config import SECTIONS, ConfigError, Problem, dump_yaml
from ..config.admin import ADMIN, password_problems
from . import sim_api
from .auth import Verdict, check_admin, client_address
from .context import Access, Csrf, WebState, policy, session, state
from .health import box, health
from .importing import BodyTooLarge, import_document, read_bounded, syntax_of
from .masking import mask
from .responses import json_error, json_ok
from .sessions import Session, clear_session_cookie, set_session_cookie

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
MAX_JSON_BYTES = 64 * 1024  # small request bodies: credentials, fault injection


async def _json_object(request: web.Request) -> dict[str, Any] | web.Response:
    """The body as a JSON object, or the error answer to send instead."""
    try:
        data = await read_bounded(request, MAX_JSON_BYTES)
    except BodyTooLarge as exc:
        return json_error(413, str(exc))
    try:
        body = json.loads(data) if data else None
    except (ValueError, UnicodeDecodeError):
        return json_error(400, "the body is not valid JSON")
    if not isinstance(body, dict):
        return json_error(422, "expected a JSON object", [Problem("", "expected a JSON object")])
    return body


def _strings(body: dict[str, Any], *keys: str) -> list[Problem]:
    return [
        Problem(key, "required text is missing")
        for key in keys
        if not isinstance(body.get(key), str) or not body[key]
    ]


def _flag(request: web.Request, name: str) -> bool | None:
    """A boolean query parameter; None when its value is not a boolean."""
    value = request.query.get(name, "false").lower()
    return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(
        value
    )


def _locked_out(verdict: Verdict) -> web.Response:
    return json_error(
        429,
        f"too many wrong passwords; try again in {verdict.wait_s} s",
        headers={"Retry-After": str(verdict.wait_s)},
    )


def _session_info(web_state: WebState, current: Session) -> dict[str, Any]:
    return {
        "user": current.user,
        "csrf_token": current.csrf_token,
        "idle_timeout_s": web_state.settings.session_idle_s,
    }


# -- session ----------------------------------------------------------------------------


@policy(Access.SETUP, Csrf.JSON_ONLY)
async def setup(request: web.Request) -> web.Response:
    body = await _json_object(request)
    if isinstance(body, web.Response):
        return body
    problems = _strings(body, "password") or password_problems(body["password"])
    if problems:
        return json_error(422, "the password was refused", problems)
    try:
        state(request).app.admin.set_password(body["password"], first_time=True)
    except ConfigError:  # the policy passed above, so only a quicker rival is left
        return json_error(409, "an admin password is already set")
    log.warning("admin password set (first boot)", extra={"client": client_address(request)})
    return json_ok({"user": ADMIN}, status=201)


@policy(Access.ANONYMOUS, Csrf.JSON_ONLY)
async def login(request: web.Request) -> web.Response:
    body = await _json_object(request)
    if isinstance(body, web.Response):
        return body
    problems = _strings(body, "password")
    if problems:
        return json_error(422, "the password is missing", problems)
    username = body.get("username", ADMIN)
    verdict = await check_admin(
        request, username if isinstance(username, str) else "", body["password"]
    )
    if verdict.locked_out:
        return _locked_out(verdict)
    if not verdict.ok:
        return json_error(401, "wrong user name or password")
    web_state = state(request)
    current = web_state.sessions.login(session(request), ADMIN)
    log.info("admin logged in", extra={"client": client_address(request), "via": "api"})
    response = json_ok(_session_info(web_state, current))
    set_session_cookie(request, response, current)
    return response


async def session_info(request: web.Request) -> web.Response:
    current = session(request)
    assert current is not None  # the gate let an admin through
    return json_ok(_session_info(state(request), current))


async def logout(request: web.Request) -> web.Response:
    current = session(request)
    assert current is not None
    state(request).sessions.drop(current)
    response = web.Response(status=204)
    clear_session_cookie(request, response)
    return response


async def change_password(request: web.Request) -> web.Response:
    body = await _json_object(request)
    if isinstance(body, web.Response):
        return body
    problems = _strings(body, "current", "new")
    if problems:
        return json_error(422, "both the current and the new password are needed", problems)
    verdict = await check_admin(request, ADMIN, body["current"])
    if verdict.locked_out:
        return _locked_out(verdict)
    if not verdict.ok:
        return json_error(
            422, "the current password is wrong", [Problem("current", "wrong password")]
        )
    web_state = state(request)
    try:
        web_state.app.admin.set_password(body["new"], first_time=False)
    except ConfigError as exc:
        return json_error(
            422, "the new password was refused", [Problem("new", p.reason) for p in exc.problems]
        )
    current = web_state.sessions.login(session(request), ADMIN)
    web_state.sessions.drop_all_admin(keep=current)
    log.warning("admin password changed", extra={"client": client_address(request)})
    response = json_ok(_session_info(web_state, current))
    set_session_cookie(request, response, current)
    return response


# -- status and configuration -----------------------------------------------------------


async def status(request: web.Request) -> web.Response:
    app = state(request).app
    return json_ok({**health(app), "box": box(app)})


async def get_config(request: web.Request) -> web.Response:
    app = state(request).app
    secrets = _flag(request, "secrets")
    fmt = request.query.get("format", "json")
    if secrets is None:
        return json_error(400, "secrets must be true or false")
    if fmt not in ("json", "yaml"):
        return json_error(400, "format must be json or yaml")
    document = app.store.document()
    if secrets:
        log.warning(
            "configuration exported with secrets", extra={"client": client_address(request)}
        )
    else:
        document = mask(document)
    headers = {"X-Config-Revision": str(app.store.revision())}
    if fmt == "yaml":
        return web.Response(
            text=dump_yaml(document),
            content_type="application/yaml",
            charset="utf-8",
            headers=headers,
        )
    return json_ok(document, headers=headers)


async def get_section(request: web.Request) -> web.Response:
    app = state(request).app
    name = request.match_info["section"]
    secrets = _flag(request, "secrets")
    if secrets is None:
        return json_error(400, "secrets must be true or false")
    if name not in SECTIONS:
        return json_error(
            404,
            f"no configuration section {name!r}",
            [Problem(name, f"sections are {', '.join(SECTIONS)}")],
        )
    document = app.store.document()
    if secrets:
        log.warning(
            "configuration exported with secrets",
            extra={"client": client_address(request), "section": name},
        )
    else:
        document = mask(document)
    return json_ok(document[name])


async def put_config(request: web.Request) -> web.Response:
    web_state = state(request)
    syntax = syntax_of(request.content_type)
    if syntax is None:
        return json_error(
            415, "send the document as application/yaml, text/yaml or application/json"
        )
    try:
        data = await read_bounded(request, web_state.settings.max_body_bytes)
    except BodyTooLarge as exc:
        return json_error(413, f"the document is larger than {exc.limit} bytes")
    try:
        revision = await import_document(web_state, data, syntax)
    except ConfigError as exc:
        return json_error(422, "the configuration was not imported", exc.problems)
    return json_ok({"revision": revision})


async def revisions(request: web.Request) -> web.Response:
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        return json_error(400, "limit must be a number from 1 to 1000")
    return json_ok(state(request).app.store.revisions(limit))


# -- simulator --------------------------------------------------------------------------


def _not_sim(web_state: WebState) -> web.Response | None:
    if web_state.app.board.name == "sim":
        return None
    return json_error(404, "the simulator API exists only on the sim board")


async def sim(request: web.Request) -> web.Response:
    web_state = state(request)
    return _not_sim(web_state) or json_ok(web_state.app.board.describe())


async def sim_fault(request: web.Request) -> web.Response:
    web_state = state(request)
    refusal = _not_sim(web_state)
    if refusal is not None:
        return refusal
    body = await _json_object(request)
    if isinstance(body, web.Response):
        return body
    problems = _strings(body, "service")
    if problems:
        return json_error(422, "name the service to crash", problems)
    name = body["service"]
    try:
        web_state.app.supervisor.inject_fault(name)
    except KeyError:
        return json_error(
            404,
            f"no running service {name!r}",
            [Problem("service", f"running services: {', '.join(web_state.app.supervisor.names)}")],
        )
    log.warning("fault injected", extra={"service": name, "client": client_address(request)})
    return json_ok({"service": name, "fault": "injected"}, status=202)


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the API; ``/config/revisions`` must come before ``/config/{section}``."""
    router.add_post(f"{PREFIX}/setup", setup)
    router.add_get(f"{PREFIX}/session", session_info)
    router.add_post(f"{PREFIX}/session", login)
    router.add_delete(f"{PREFIX}/session", logout)
    router.add_post(f"{PREFIX}/admin/password", change_password)
    router.add_get(f"{PREFIX}/status", status)
    router.add_get(f"{PREFIX}/config", get_config)
    router.add_put(f"{PREFIX}/config", put_config)
    router.add_get(f"{PREFIX}/config/revisions", revisions)
    router.add_get(f"{PREFIX}/config/{{section}}", get_section)
    router.add_get(f"{PREFIX}/sim", sim)
    router.add_post(f"{PREFIX}/sim/faults", sim_fault)
    sim_api.add_routes(router)  # virtual analog devices, the analog gateway's status
