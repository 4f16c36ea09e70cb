"""First boot: no default password, every page leads to /setup until one is set."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from firmware.app import App

from .webtesting import PASSWORD, csrf_from, form_token, web_login


async def test_every_page_redirects_to_setup(client: TestClient[Any, Any]) -> None:
    for path in ("/", "/login", "/config", "/account", "/nowhere"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 303, path
        assert resp.headers["Location"] == "/setup", path
    resp = await client.post("/login", data={"password": "x"}, allow_redirects=False)
    assert resp.headers["Location"] == "/setup"


async def test_public_endpoints_stay_reachable(client: TestClient[Any, Any]) -> None:
    for path in ("/healthz", "/metrics", "/static/style.css", "/api/v1/openapi.json"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 200, path


async def test_api_says_setup_first(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/api/v1/status")
    assert resp.status == 401
    body = await resp.json()
    assert "/setup" in body["error"] and body["problems"] == []


async def test_setup_lists_every_policy_problem(client: TestClient[Any, Any], box: App) -> None:
    token = await form_token(client, "/setup")
    resp = await client.post(
        "/setup", data={"csrf_token": token, "password": " short", "password2": " other"}
    )
    assert resp.status == 422
    html = await resp.text()
    assert "at least 10 characters" in html
    assert "no leading or trailing spaces" in html
    assert "the two passwords differ" in html
    assert not box.admin.is_set()


async def test_setup_then_login(client: TestClient[Any, Any], box: App) -> None:
    token = await form_token(client, "/setup")
    resp = await client.post(
        "/setup",
        data={"csrf_token": token, "password": PASSWORD, "password2": PASSWORD},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert resp.headers["Location"].startswith("/login")
    assert box.admin.verify(PASSWORD)
    # setup is closed for good
    resp = await client.get("/setup", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    resp = await web_login(client)
    assert resp.status == 303 and resp.headers["Location"] == "/"
    resp = await client.get("/")
    assert resp.status == 200
    assert "Services" in await resp.text()


async def test_two_racing_setups_only_one_wins(
    client: TestClient[Any, Any], make_client: Any, box: App
) -> None:
    other = await make_client(box)
    token_a = await form_token(client, "/setup")
    token_b = await form_token(other, "/setup")
    a, b = await asyncio.gather(
        client.post(
            "/setup",
            data={
                "csrf_token": token_a,
                "password": "first password!",
                "password2": "first password!",
            },
            allow_redirects=False,
        ),
        other.post(
            "/setup",
            data={
                "csrf_token": token_b,
                "password": "second password",
                "password2": "second password",
            },
            allow_redirects=False,
        ),
    )
    assert sorted([a.status, b.status]) in ([303, 303], [303, 409])
    winners = [box.admin.verify("first password!"), box.admin.verify("second password")]
    assert winners.count(True) == 1
    loser = b if winners[0] else a
    if loser.status == 303:  # it arrived after the winner: sent on to the login
        assert loser.headers["Location"] == "/login"
    else:
        assert "already been set" in await loser.text()


async def test_api_setup(client: TestClient[Any, Any], box: App) -> None:
    resp = await client.post("/api/v1/setup", json={"password": "short"})
    assert resp.status == 422
    assert (await resp.json())["problems"][0]["path"] == "password"
    resp = await client.post("/api/v1/setup", data="password=abcdefghijkl")
    assert resp.status == 415  # a form post could be cross-site: JSON only
    resp = await client.post("/api/v1/setup", json={"password": PASSWORD})
    assert resp.status == 201
    resp = await client.post("/api/v1/setup", json={"password": "another password"})
    assert resp.status == 409
    assert box.admin.verify(PASSWORD)


async def test_setup_form_without_token_is_refused(client: TestClient[Any, Any], box: App) -> None:
    await form_token(client, "/setup")
    resp = await client.post(
        "/setup", data={"password": PASSWORD, "password2": PASSWORD}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == "/setup?expired=1"
    assert not box.admin.is_set()
    page = await (await client.get("/setup?expired=1")).text()
    assert "expired" in page and csrf_from(page)
