"""The REST API: health, status, configuration import/export, the simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from firmware.app import App
from firmware.config import dump_yaml, load_yaml

from .webtesting import Crashing, FakeBoard, Ready, api_login, running_box

DOC: dict[str, Any] = {
    "system": {"hostname": "reception"},
    "users": [
        {"extension": "101", "name": "Anne Hansen", "sip_password": "anne-secret-1"},
        {"extension": "102", "name": "Bo Nielsen"},
    ],
    "trunks": [{"name": "carrier", "host": "sip.example.dk", "password": "trunk-secret"}],
}

INVALID_YAML = """\
system: {hostname: "bad host!"}
users:
  - {extension: "1", name: Anne}
  - {extension: "102", name: Bo, colour: blue}
phones:
  - {mac: "00:11:22:33:44:55", vendor: snom, extension: "999"}
"""


def csrf(token: str, content_type: str = "application/yaml") -> dict[str, str]:
    return {"X-CSRF-Token": token, "Content-Type": content_type}


async def test_healthz_ok(client: TestClient[Any, Any], box: App) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok" and body["version"] == box.version
    assert set(body["services"]) == {"sip", "media"}
    assert body["services"]["sip"]["state"] == "running"
    assert body["services"]["sip"] == box.supervisor.status()[0].as_dict()


async def test_healthz_degraded_is_503(tmp_path: Path, make_client: Any) -> None:
    async with running_box(tmp_path, [Ready("sip"), Crashing("media")]) as app:
        client = await make_client(app)
        resp = await client.get("/healthz")
        assert resp.status == 503
        body = await resp.json()
        assert body["status"] == "degraded"
        media = body["services"]["media"]
        assert media["state"] == "degraded" and media["restarts"] >= 1
        assert media["last_error"] == "RuntimeError: codec table missing"


async def test_status_adds_the_box(client: TestClient[Any, Any], admin: str, box: App) -> None:
    body = await (await client.get("/api/v1/status")).json()
    assert body["status"] == "ok" and set(body["services"]) == {"sip", "media"}
    assert body["box"]["hostname"] == "skillepunkt"
    assert body["box"]["board"] == "sim"
    assert body["box"]["config_revision"] == 0
    assert body["box"]["uptime_s"] >= 0


async def test_api_needs_a_session(client: TestClient[Any, Any], box: App) -> None:
    box.admin.set_password("correct horse battery", first_time=True)
    for method, path in (
        ("GET", "/api/v1/status"),
        ("GET", "/api/v1/config"),
        ("PUT", "/api/v1/config"),
        ("GET", "/api/v1/sim"),
        ("GET", "/api/v1/nothing-here"),
    ):
        resp = await client.request(method, path)
        assert resp.status == 401, (method, path)
        assert await resp.json() == {"error": "not logged in", "problems": []}


async def test_errors_are_json_under_the_api(client: TestClient[Any, Any], admin: str) -> None:
    resp = await client.get("/api/v1/nothing-here")
    assert resp.status == 404
    body = await resp.json()
    assert set(body) == {"error", "problems"}
    resp = await client.post("/api/v1/status", headers={"X-CSRF-Token": admin})
    assert resp.status == 405
    assert "GET" in resp.headers["Allow"] and "error" in await resp.json()


async def test_config_is_masked_unless_asked(
    client: TestClient[Any, Any], admin: str, box: App
) -> None:
    box.store.import_raw(DOC, "test")
    resp = await client.get("/api/v1/config")
    assert resp.headers["X-Config-Revision"] == "1"
    doc = await resp.json()
    assert [u["sip_password"] for u in doc["users"]] == ["********", "********"]
    assert doc["trunks"][0]["password"] == "********"
    assert "secret" not in await resp.text()
    clear = await (await client.get("/api/v1/config?secrets=true")).json()
    assert clear["users"][0]["sip_password"] == "anne-secret-1"
    assert clear["trunks"][0]["password"] == "trunk-secret"
    yaml_resp = await client.get("/api/v1/config?format=yaml")
    assert yaml_resp.content_type == "application/yaml"
    text = await yaml_resp.text()
    assert "hostname: reception" in text and "anne-secret-1" not in text
    assert (await client.get("/api/v1/config?format=xml")).status == 400
    assert (await client.get("/api/v1/config?secrets=maybe")).status == 400


async def test_config_section(client: TestClient[Any, Any], admin: str, box: App) -> None:
    box.store.import_raw(DOC, "test")
    users = await (await client.get("/api/v1/config/users")).json()
    assert [u["name"] for u in users] == ["Anne Hansen", "Bo Nielsen"]
    assert users[0]["sip_password"] == "********"
    system = await (await client.get("/api/v1/config/system")).json()
    assert system["hostname"] == "reception"
    resp = await client.get("/api/v1/config/colours")
    assert resp.status == 404
    body = await resp.json()
    assert "users" in body["problems"][0]["reason"]


async def test_put_yaml_and_json(client: TestClient[Any, Any], admin: str, box: App) -> None:
    resp = await client.put("/api/v1/config", data=dump_yaml(DOC), headers=csrf(admin))
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"revision": 1}
    assert box.store.document()["system"]["hostname"] == "reception"
    doc = {**DOC, "system": {"hostname": "kontor"}}
    resp = await client.put(
        "/api/v1/config", data=json.dumps(doc), headers=csrf(admin, "application/json")
    )
    assert await resp.json() == {"revision": 2}
    resp = await client.put(
        "/api/v1/config", data=dump_yaml(DOC), headers=csrf(admin, "text/yaml; charset=utf-8")
    )
    assert await resp.json() == {"revision": 3}
    revisions = await (await client.get("/api/v1/config/revisions?limit=2")).json()
    assert [r["revision"] for r in revisions] == [3, 2]
    assert revisions[0]["source"] == "web"
    assert (await client.get("/api/v1/config/revisions?limit=0")).status == 400


async def test_invalid_put_lists_every_problem_and_changes_nothing(
    client: TestClient[Any, Any], admin: str, box: App
) -> None:
    box.store.import_raw(DOC, "test")
    before = box.store.document()
    resp = await client.put("/api/v1/config", data=INVALID_YAML, headers=csrf(admin))
    assert resp.status == 422
    body = await resp.json()
    assert body["error"] == "the configuration was not imported"
    paths = {p["path"] for p in body["problems"]}
    assert {
        "system.hostname",
        "users[0].extension",
        "users[1].colour",
        "phones[0].extension",
    } <= paths
    assert box.store.revision() == 1 and box.store.document() == before


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        ("application/yaml", "users: [\n  {extension: 1\n", "malformed YAML: line"),
        ("application/yaml", "system: {}\nsystem: {}\n", "duplicate key"),
        ("application/yaml", b"system: {hostname: \xff}\n", "not UTF-8"),
        ("application/json", '{"system": {}, "system": {}}', "duplicate key"),
        ("application/json", '{"system": ', "malformed JSON: line 1"),
        ("application/yaml", "- just\n- a list\n", "expected a mapping"),
    ],
)
async def test_malformed_documents(
    client: TestClient[Any, Any],
    admin: str,
    box: App,
    content_type: str,
    body: str | bytes,
    reason: str,
) -> None:
    resp = await client.put("/api/v1/config", data=body, headers=csrf(admin, content_type))
    assert resp.status == 422
    problems = (await resp.json())["problems"]
    assert len(problems) == 1 and reason in problems[0]["reason"], problems
    assert box.store.revision() == 0


async def test_body_size_and_type_are_bounded(
    client: TestClient[Any, Any], admin: str, box: App
) -> None:
    big = "# " + "x" * (4 * 1024 * 1024) + "\n"
    resp = await client.put("/api/v1/config", data=big, headers=csrf(admin))
    assert resp.status == 413
    assert "larger than" in (await resp.json())["error"]
    resp = await client.put("/api/v1/config", data="x", headers=csrf(admin, "text/plain"))
    assert resp.status == 415
    assert box.store.revision() == 0


async def test_masked_export_imports_back(
    client: TestClient[Any, Any], admin: str, box: App
) -> None:
    box.store.import_raw({**DOC, "trunks": []}, "test")
    before = {u["extension"]: u["sip_password"] for u in box.store.document()["users"]}
    masked = load_yaml(await (await client.get("/api/v1/config?format=yaml")).text())
    masked["users"].append({"extension": "103", "name": "Cai", "sip_password": "********"})
    resp = await client.put("/api/v1/config", data=dump_yaml(masked), headers=csrf(admin))
    assert resp.status == 200, await resp.text()
    after = {u["extension"]: u["sip_password"] for u in box.store.document()["users"]}
    assert after["101"] == before["101"] == "anne-secret-1"
    assert after["102"] == before["102"]
    assert after["103"] not in ("********", "") and len(after["103"]) >= 16


async def test_masked_trunk_password_is_refused(
    client: TestClient[Any, Any], admin: str, box: App
) -> None:
    box.store.import_raw(DOC, "test")
    masked = await (await client.get("/api/v1/config")).json()
    masked["users"][0]["extension"] = "1"  # and one more problem, to see both
    resp = await client.put(
        "/api/v1/config", data=json.dumps(masked), headers=csrf(admin, "application/json")
    )
    assert resp.status == 422
    problems = {p["path"]: p["reason"] for p in (await resp.json())["problems"]}
    assert "mask" in problems["trunks[0].password"]
    assert "users[0].extension" in problems
    assert box.store.revision() == 1
    assert box.store.document()["trunks"][0]["password"] == "trunk-secret"


async def test_sim_endpoints(client: TestClient[Any, Any], admin: str, box: App) -> None:
    desc = await (await client.get("/api/v1/sim")).json()
    assert desc == {
        "board": "sim",
        "devices": [{"name": "fxs1", "chip": "Si3215", "bus": "spi0.0"}],
    }
    resp = await client.post(
        "/api/v1/sim/faults", json={"service": "nope"}, headers={"X-CSRF-Token": admin}
    )
    assert resp.status == 404
    assert "nope" in (await resp.json())["error"]
    resp = await client.post("/api/v1/sim/faults", json={}, headers={"X-CSRF-Token": admin})
    assert resp.status == 422
    resp = await client.post("/api/v1/sim/faults", json={"service": "sip"})
    assert resp.status == 403
    resp = await client.post(
        "/api/v1/sim/faults", json={"service": "sip"}, headers={"X-CSRF-Token": admin}
    )
    assert resp.status == 202
    health = await (await client.get("/healthz")).json()
    assert health["status"] == "degraded"
    assert health["services"]["sip"]["last_error"] == "InjectedFault: fault injected"


async def test_sim_endpoints_are_404_on_real_hardware(tmp_path: Path, make_client: Any) -> None:
    async with running_box(tmp_path, [Ready("sip")], FakeBoard("ref-a")) as app:
        app.admin.set_password("correct horse battery", first_time=True)
        client = await make_client(app)
        token = await api_login(client)
        resp = await client.get("/api/v1/sim")
        assert resp.status == 404
        assert "sim board" in (await resp.json())["error"]
        resp = await client.post(
            "/api/v1/sim/faults", json={"service": "sip"}, headers={"X-CSRF-Token": token}
        )
        assert resp.status == 404
        assert app.supervisor.overall() == "ok"
