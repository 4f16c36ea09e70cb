"""/metrics parses as Prometheus text 0.0.4; openapi.json describes exactly the routes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from firmware.app import App
from firmware.web import create_app
from firmware.web.metrics import Exposition, escape_label

from .webtesting import Crashing, Ready, running_box

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = rf'({_NAME})="((?:[^"\\\n]|\\[\\"n])*)"'
_SAMPLE = re.compile(
    rf"^(?P<name>{_NAME})(?:\{{(?P<labels>(?:{_LABEL},?)*)\}})? (?P<value>\S+)(?: -?\d+)?$"
)
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], value)


def parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """A strict reader of the text format: every sample belongs to a declared family."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    helped: set[str] = set()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in helped, f"HELP twice for {name}"
            helped.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in _TYPES and name not in types, line
            assert name not in samples, f"TYPE after samples of {name}"
            types[name] = kind
        elif line.startswith("#") or not line:
            continue
        else:
            match = _SAMPLE.match(line)
            assert match, f"not a sample line: {line!r}"
            name = match["name"]
            assert name in types, f"sample of undeclared metric {name}"
            if types[name] == "counter":
                assert name.endswith("_total"), name
            labels = {k: _unescape(v) for k, v in re.findall(_LABEL, match["labels"] or "")}
            samples.setdefault(name, []).append((labels, float(match["value"])))
    assert helped == set(types), "every family has HELP and TYPE"
    return samples


async def test_metrics(tmp_path: Path, make_client: Any) -> None:
    async with running_box(tmp_path, [Ready("sip"), Crashing("media")]) as app:
        client = await make_client(app)
        await client.get("/healthz")
        await client.get("/nowhere", allow_redirects=False)
        resp = await client.get("/metrics")
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        m = parse(await resp.text())
        assert m["skillepunkt_build_info"] == [({"version": app.version, "board": "sim"}, 1.0)]
        assert m["skillepunkt_uptime_seconds"][0][1] >= 0
        assert m["skillepunkt_config_revision"] == [({}, 0.0)]
        up = {labels["service"]: value for labels, value in m["skillepunkt_service_up"]}
        assert up == {"sip": 1.0, "media": 0.0}
        restarts = {
            labels["service"]: value for labels, value in m["skillepunkt_service_restarts_total"]
        }
        assert restarts["sip"] == 0 and restarts["media"] >= 1
        health = {labels["status"]: value for labels, value in m["skillepunkt_health"]}
        assert health["degraded"] == 1 and health["ok"] == 0
        requests = {
            (labels["method"], labels["status"]): value
            for labels, value in m["skillepunkt_web_requests_total"]
        }
        assert requests[("GET", "503")] == 1  # the degraded /healthz
        assert requests[("GET", "303")] == 1  # /nowhere -> /setup


def test_label_values_are_escaped() -> None:
    out = Exposition()
    out.family("x_total", "counter", "Help with \\ and\nnewline.", [({"a": 'q"b\\s\nn'}, 1)])
    text = out.render()
    assert 'x_total{a="q\\"b\\\\s\\nn"} 1' in text
    assert "# HELP x_total Help with \\\\ and\\nnewline." in text
    assert parse(text)["x_total"] == [({"a": 'q"b\\s\nn'}, 1.0)]
    assert escape_label("plain") == "plain"


def _routes(app: App) -> set[tuple[str, str]]:
    found = set()
    for route in create_app(app).router.routes():
        path = route.resource.canonical if route.resource else ""
        if route.method != "HEAD" and (
            path.startswith("/api/v1") or path in ("/healthz", "/metrics")
        ):
            found.add((path, route.method.lower()))
    return found


async def test_openapi_describes_every_route_and_no_other(
    client: TestClient[Any, Any], box: App
) -> None:
    resp = await client.get("/api/v1/openapi.json")  # public, even before setup
    assert resp.status == 200
    spec = await resp.json()
    assert spec["openapi"].startswith("3.1")
    described = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert described == _routes(box)
    operation_ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))
    for ops in spec["paths"].values():
        for op in ops.values():
            assert op["responses"] and op["summary"]
    # every $ref points somewhere
    text = await resp.text()
    for ref in re.findall(r'"\$ref": "#/components/(\w+)/(\w+)"', text):
        assert ref[1] in spec["components"][ref[0]], ref
