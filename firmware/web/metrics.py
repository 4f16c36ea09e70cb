"""GET /metrics in the Prometheus text exposition format, version 0.0.4.

Written by hand (the format is small) so the box needs no client library: one HELP and
one TYPE line per metric family, then its samples, label values escaped as the format
requires. Request counting happens in ``count_requests``, the outermost middleware, so
every answer is counted, including redirects and errors.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable

from aiohttp import web

from ..app import App
from ..system.supervisor import ServiceState
from .context import Access, Handler, WebState, policy, state

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

Sample = tuple[dict[str, str], float]


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


class Exposition:
    """Collects metric families and renders them in the text format."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> None:
        self._lines.append(f"# HELP {name} {escape_help(help_text)}")
        self._lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if labels:
                pairs = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items())
                self._lines.append(f"{name}{{{pairs}}} {format_value(value)}")
            else:
                self._lines.append(f"{name} {format_value(value)}")

    def render(self) -> str:
        return "\n".join(self._lines) + "\n"


def collect(app: App, web_state: WebState) -> str:
    services = app.supervisor.status()
    out = Exposition()
    out.family(
        "skillepunkt_build_info",
        "gauge",
        "Firmware version and board; always 1.",
        [({"version": app.version, "board": app.board.name}, 1)],
    )
    out.family(
        "skillepunkt_start_time_seconds",
        "gauge",
        "When the daemon started, in seconds since the Unix epoch.",
        [({}, app.started_at)],
    )
    out.family(
        "skillepunkt_uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
        [({}, round(max(0.0, time.time() - app.started_at), 3))],
    )
    out.family(
        "skillepunkt_config_revision",
        "gauge",
        "Revision number of the configuration in force (0: never imported).",
        [({}, app.store.revision())],
    )
    overall = app.supervisor.overall()
    out.family(
        "skillepunkt_health",
        "gauge",
        "Overall health; 1 for the current status, 0 for the others.",
        [({"status": s}, float(s == overall)) for s in ("ok", "starting", "degraded", "stopping")],
    )
    out.family(
        "skillepunkt_service_up",
        "gauge",
        "1 when the service is running, 0 otherwise.",
        [({"service": s.name}, float(s.state == ServiceState.RUNNING)) for s in services],
    )
    out.family(
        "skillepunkt_service_state",
        "gauge",
        "State of each service; 1 for the current state, 0 for the others.",
        [
            ({"service": s.name, "state": st.value}, float(s.state == st))
            for s in services
            for st in ServiceState
        ],
    )
    out.family(
        "skillepunkt_service_restarts_total",
        "counter",
        "Times the supervisor restarted the service after a crash.",
        [({"service": s.name}, s.restarts) for s in services],
    )
    out.family(
        "skillepunkt_service_last_crash_timestamp_seconds",
        "gauge",
        "When the service last crashed, in seconds since the Unix epoch.",
        [({"service": s.name}, s.last_crash) for s in services if s.last_crash is not None],
    )
    out.family(
        "skillepunkt_web_requests_total",
        "counter",
        "HTTP requests answered by the web UI and API, by method and status code.",
        [
            ({"method": method, "status": str(status)}, n)
            for (method, status), n in sorted(web_state.requests.items())
        ],
    )
    out.family(
        "skillepunkt_web_sessions",
        "gauge",
        "Live web sessions: logged-in admins, and anonymous login/setup forms.",
        [({"kind": k}, n) for k, n in web_state.sessions.counts().items()],
    )
    out.family(
        "skillepunkt_web_login_failures_total",
        "counter",
        "Wrong admin passwords given to log in or to change the password.",
        [({}, web_state.limiter.failures_total)],
    )
    out.family(
        "skillepunkt_config_imports_total",
        "counter",
        "Configuration documents imported over the web, by result.",
        [({"result": r}, web_state.imports[r]) for r in ("ok", "rejected")],
    )
    for name, help_text, value in app.supervisor.gauges():
        out.family(name, "gauge", help_text, [({}, value)])
    return out.render()


@policy(Access.PUBLIC)
async def metrics(request: web.Request) -> web.Response:
    web_state = state(request)
    text = collect(web_state.app, web_state)
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every answer by method and status; unknown methods are lumped as OTHER."""
    method = request.method if request.method in _METHODS else "OTHER"
    counter = state(request).requests
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        counter[(method, exc.status)] += 1
        raise
    except Exception:
        counter[(method, 500)] += 1
        raise
    counter[(method, response.status)] += 1
    return response
