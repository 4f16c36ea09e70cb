"""The box's health as data: one snapshot feeds /healthz, /api/v1/status and the status page.

Building it in one place keeps the three from disagreeing about what "ok" means.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from ..app import App
from .context import Access, policy, state
from .responses import json_ok


def health(app: App) -> dict[str, Any]:
    return {
        "status": app.supervisor.overall(),
        "version": app.version,
        "services": {s.name: s.as_dict() for s in app.supervisor.status()},
    }


def hostname(app: App) -> str:
    system = app.store.section("system")
    return str(system.get("hostname", "")) if isinstance(system, dict) else ""


def box(app: App) -> dict[str, Any]:
    return {
        "hostname": hostname(app),
        "version": app.version,
        "board": app.board.name,
        "started_at": app.started_at,
        "uptime_s": round(max(0.0, time.time() - app.started_at), 3),
        "config_revision": app.store.revision(),
    }


def http_status(overall: str) -> int:
    """200 only when everything runs, so a load balancer or watchdog sees any trouble."""
    return 200 if overall == "ok" else 503


@policy(Access.PUBLIC)
async def healthz(request: web.Request) -> web.Response:
    data = health(state(request).app)
    return json_ok(data, status=http_status(data["status"]))


def format_duration(seconds: float) -> str:
    """'3d 4h', '2h 5m', '4m 10s', '12s': uptime as a technician reads it."""
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {s}s"
    return f"{s}s"
