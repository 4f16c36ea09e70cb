"""The HTML pages: first-boot setup, login/logout, status, configuration, account.

Plain server-rendered forms, no JavaScript: every form carries the session's CSRF
token, every failure re-renders the form with each problem listed, and every success
redirects (POST-redirect-GET) so a reload never submits twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from aiohttp import web

from ..config import ConfigError, dump_yaml
from ..config.admin import ADMIN, password_problems
from ..system.supervisor import ServiceStatus
from .auth import check_admin, client_address, ensure_session, safe_next
from .context import Access, policy, session, state
from .health import box, format_duration
from .importing import Syntax, import_document
from .layout import page, problem_list
from .masking import mask
from .sessions import Session, clear_session_cookie, set_session_cookie
from .templates import NOTHING, Markup, fragment, join, render

log = logging.getLogger(__name__)


def _notice(kind: str, text: str) -> Markup:
    return fragment('<p class="notice $kind" role="status">$text</p>', kind=kind, text=text)


def _text(form: Mapping[str, object], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _admin_session(request: web.Request) -> Session:
    current = session(request)
    assert current is not None and current.authenticated  # the gate let only admins in
    return current


def _with_cookie(
    request: web.Request, response: web.Response, current: Session, new: bool
) -> web.Response:
    if new:
        set_session_cookie(request, response, current)
    return response


# -- first boot -------------------------------------------------------------------------


def _setup_page(request: web.Request, notice: Markup = NOTHING, status: int = 200) -> web.Response:
    current, new = ensure_session(request)
    if request.query.get("expired") and not notice:
        notice = _notice("warn", "The form had expired. Please enter the password again.")
    content = render("setup", csrf_token=current.csrf_token, notice=notice)
    return _with_cookie(request, page(request, "Set up", content, status), current, new)


@policy(Access.SETUP)
async def setup_form(request: web.Request) -> web.Response:
    return _setup_page(request)


@policy(Access.SETUP)
async def setup_submit(request: web.Request) -> web.Response:
    form = await request.post()
    password, repeated = _text(form, "password"), _text(form, "password2")
    problems = [(p.path, p.reason) for p in password_problems(password)]
    if password != repeated:
        problems.append(("", "the two passwords differ"))
    if problems:
        return _setup_page(request, problem_list(problems), 422)
    try:
        state(request).app.admin.set_password(password, first_time=True)
    except ConfigError:  # the policy passed above: someone else was quicker
        return _setup_page(
            request,
            _notice("error", "An admin password has just been set from another browser."),
            409,
        )
    log.warning("admin password set (first boot)", extra={"client": client_address(request)})
    raise web.HTTPSeeOther("/login?welcome=1")


# -- login and logout -------------------------------------------------------------------


def _login_page(
    request: web.Request,
    notice: Markup = NOTHING,
    status: int = 200,
    username: str = ADMIN,
    next_url: str = "/",
) -> web.Response:
    current, new = ensure_session(request)
    if not notice:
        if request.query.get("welcome"):
            notice = _notice("ok", "The admin password is set. Log in with it.")
        elif request.query.get("expired"):
            notice = _notice("warn", "The form had expired. Please log in again.")
        elif request.query.get("bye"):
            notice = _notice("ok", "You are logged out.")
    content = render(
        "login",
        csrf_token=current.csrf_token,
        notice=notice,
        username=username,
        next=next_url,
    )
    return _with_cookie(request, page(request, "Log in", content, status), current, new)


@policy(Access.ANONYMOUS)
async def login_form(request: web.Request) -> web.Response:
    current = session(request)
    if current is not None and current.authenticated:
        raise web.HTTPSeeOther("/")
    return _login_page(request, next_url=safe_next(request.query.get("next")))


@policy(Access.ANONYMOUS)
async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    username, password = _text(form, "username").strip(), _text(form, "password")
    next_url = safe_next(_text(form, "next"))
    verdict = await check_admin(request, username, password)
    if verdict.locked_out:
        response = _login_page(
            request,
            _notice("error", f"Too many failed logins. Try again in {verdict.wait_s} seconds."),
            429,
            username,
            next_url,
        )
        response.headers["Retry-After"] = str(verdict.wait_s)
        return response
    if not verdict.ok:
        return _login_page(
            request, _notice("error", "Wrong user name or password."), 401, username, next_url
        )
    web_state = state(request)
    current = web_state.sessions.login(session(request), ADMIN)
    log.info("admin logged in", extra={"client": client_address(request), "via": "web"})
    response = web.HTTPSeeOther(next_url)
    set_session_cookie(request, response, current)
    raise response


async def logout(request: web.Request) -> web.Response:
    state(request).sessions.drop(_admin_session(request))
    response = web.HTTPSeeOther("/login?bye=1")
    clear_session_cookie(request, response)
    raise response


# -- status -----------------------------------------------------------------------------

_ROW = """      <tr>
        <td class="name">$name</td>
        <td><span class="badge $state">$state</span></td>
        <td class="muted">$since</td>
        <td class="num">$restarts</td>
        <td class="$error_class">$error</td>
      </tr>"""


def _service_row(status: ServiceStatus, now: float) -> Markup:
    return fragment(
        _ROW,
        name=status.name,
        state=status.state.value,
        since=f"{format_duration(now - status.since)} ago",
        restarts=status.restarts,
        error=status.last_error or "—",
        error_class="error" if status.last_error else "muted",
    )


async def status_page(request: web.Request) -> web.Response:
    app = state(request).app
    info = box(app)
    now = time.time()
    rows = [_service_row(s, now) for s in app.supervisor.status()]
    if not rows:
        rows = [Markup('<tr><td colspan="5" class="muted">No services.</td></tr>')]
    content = render(
        "status",
        overall=app.supervisor.overall(),
        hostname=info["hostname"],
        version=info["version"],
        board=info["board"],
        uptime=format_duration(info["uptime_s"]),
        revision=info["config_revision"],
        rows=join(rows),
    )
    return page(request, "Status", content)


# -- configuration ----------------------------------------------------------------------


def _config_page(
    request: web.Request, notice: Markup = NOTHING, document: str = "", status: int = 200
) -> web.Response:
    app = state(request).app
    imported = request.query.get("imported", "")
    if not notice and imported.isdigit():
        notice = _notice("ok", f"Imported as revision {imported}.")
    content = render(
        "config",
        revision=app.store.revision(),
        notice=notice,
        csrf_token=_admin_session(request).csrf_token,
        document=document,
        current=dump_yaml(mask(app.store.document())),
    )
    return page(request, "Configuration", content, status)


async def config_page(request: web.Request) -> web.Response:
    return _config_page(request)


async def config_submit(request: web.Request) -> web.Response:
    """Import the uploaded file if one was chosen, else the pasted text."""
    form = await request.post()
    upload = form.get("file")
    data: bytes | str = _text(form, "document")
    if isinstance(upload, web.FileField) and upload.filename:
        data = upload.file.read()
    if not data.strip():
        return _config_page(
            request, _notice("error", "Choose a file or paste a document."), "", 422
        )
    try:
        revision = await import_document(state(request), data, Syntax.YAML)
    except ConfigError as exc:
        shown = data if isinstance(data, str) else data.decode("utf-8", "replace")
        notice = join(
            [
                _notice("error", "Nothing was imported. Fix these problems and try again:"),
                problem_list([(p.path, p.reason) for p in exc.problems]),
            ]
        )
        return _config_page(request, notice, shown, 422)
    raise web.HTTPSeeOther(f"/config?imported={revision}")


# -- account ----------------------------------------------------------------------------


def _account_page(
    request: web.Request, notice: Markup = NOTHING, status: int = 200
) -> web.Response:
    if not notice and request.query.get("changed"):
        notice = _notice("ok", "The password is changed. Other browsers are logged out.")
    content = render("account", csrf_token=_admin_session(request).csrf_token, notice=notice)
    return page(request, "Account", content, status)


async def account_page(request: web.Request) -> web.Response:
    return _account_page(request)


async def account_submit(request: web.Request) -> web.Response:
    form = await request.post()
    current_pw, new_pw, repeated = _text(form, "current"), _text(form, "new"), _text(form, "new2")
    problems = [("new password", p.reason) for p in password_problems(new_pw)]
    if new_pw != repeated:
        problems.append(("", "the two new passwords differ"))
    if problems:
        return _account_page(request, problem_list(problems), 422)
    verdict = await check_admin(request, ADMIN, current_pw)
    if verdict.locked_out:
        notice = _notice("error", f"Too many wrong passwords. Try again in {verdict.wait_s} s.")
        return _account_page(request, notice, 429)
    if not verdict.ok:
        return _account_page(request, _notice("error", "The current password is wrong."), 422)
    web_state = state(request)
    web_state.app.admin.set_password(new_pw, first_time=False)
    current = web_state.sessions.login(_admin_session(request), ADMIN)
    web_state.sessions.drop_all_admin(keep=current)
    log.warning("admin password changed", extra={"client": client_address(request)})
    response = web.HTTPSeeOther("/account?changed=1")
    set_session_cookie(request, response, current)
    raise response


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/", status_page)
    router.add_get("/setup", setup_form)
    router.add_post("/setup", setup_submit)
    router.add_get("/login", login_form)
    router.add_post("/login", login_submit)
    router.add_post("/logout", logout)
    router.add_get("/config", config_page)
    router.add_post("/config", config_submit)
    router.add_get("/account", account_page)
    router.add_post("/account", account_submit)
