"""The page frame every HTML answer shares: header, navigation, footer, error pages."""

from __future__ import annotations

from aiohttp import web

from .context import session, state
from .health import hostname
from .templates import Markup, fragment, join, render

NAV = (("/", "Status"), ("/config", "Configuration"), ("/account", "Account"))


def nav(request: web.Request) -> Markup:
    current = session(request)
    if current is None or not current.authenticated:
        return Markup("")
    links = join(
        [
            fragment(
                '<a href="$href"$current>$label</a>',
                href=href,
                label=label,
                current=Markup(' aria-current="page"' if request.path == href else ""),
            )
            for href, label in NAV
        ],
        "",
    )
    return fragment(
        '<nav class="nav">$links'
        '<form method="post" action="/logout" class="logout">'
        '<input type="hidden" name="csrf_token" value="$token">'
        '<button type="submit">Log out</button></form></nav>',
        links=links,
        token=current.csrf_token,
    )


def page(request: web.Request, title: str, content: Markup, status: int = 200) -> web.Response:
    current = session(request)
    app = state(request).app
    authenticated = current is not None and current.authenticated
    host = hostname(app) if authenticated else ""  # the box's name is for its admin only
    body = render(
        "layout",
        title=title,
        hostname=host,
        nav=nav(request),
        content=content,
        version=app.version,
    )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def error_page(request: web.Request, status: int, title: str, message: str) -> web.Response:
    content = fragment(
        '<section class="card narrow"><h1>$title</h1><p>$message</p>'
        '<p><a href="/">Back to the start page</a></p></section>',
        title=title,
        message=message,
    )
    return page(request, title, content, status)


def problem_list(problems: list[tuple[str, str]]) -> Markup:
    """Problems as a list, each with its path (when it has one) in code style."""
    if not problems:
        return Markup("")
    items = [
        fragment("<li><code>$path</code> $reason</li>", path=path, reason=reason)
        if path
        else fragment("<li>$reason</li>", reason=reason)
        for path, reason in problems
    ]
    return fragment('<div class="problems" role="alert"><ul>$items</ul></div>', items=join(items))
