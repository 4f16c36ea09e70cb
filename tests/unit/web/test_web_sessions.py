"""Login, sessions, cookies, CSRF, rate limiting and the password change."""

from __future__ import annotations

import time
from http.cookies import SimpleCookie
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from firmware.app import App
from firmware.web import WebSettings, create_app
from firmware.web.sessions import COOKIE, SECURE_COOKIE, Session, set_session_cookie

from .webtesting import PASSWORD, FakeClock, csrf_from, form_token, second_browser, web_login


def _set_cookie(resp: Any) -> SimpleCookie:
    cookie: SimpleCookie = SimpleCookie()
    for header in resp.headers.getall("Set-Cookie", []):
        cookie.load(header)
    return cookie


async def test_login_ok_sets_a_strict_cookie_and_rotates_the_id(
    client: TestClient[Any, Any], box: App
) -> None:
    box.admin.set_password(PASSWORD, first_time=True)
    resp = await client.get("/login")
    anonymous = _set_cookie(resp)[COOKIE].value
    token = csrf_from(await resp.text())
    resp = await client.post(
        "/login",
        data={"csrf_token": token, "username": "admin", "password": PASSWORD},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/"
    morsel = _set_cookie(resp)[COOKIE]
    assert morsel.value != anonymous and len(morsel.value) >= 43  # 256 bits, base64
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Strict"
    assert morsel["path"] == "/"
    assert not morsel["secure"]  # plain HTTP on the dev port: see set_session_cookie
    page = await client.get("/", allow_redirects=False)
    assert page.status == 200
    assert page.headers["Cache-Control"] == "no-store"


def test_cookie_is_secure_and_host_prefixed_over_https() -> None:
    request = make_mocked_request("GET", "/").clone(scheme="https")
    response = web.Response()
    now = time.monotonic()
    set_session_cookie(request, response, Session("id" * 22, "tok", "admin", now, now))
    morsel = response.cookies[SECURE_COOKIE]
    assert morsel["secure"] is True and morsel["httponly"] is True
    assert morsel["samesite"] == "Strict" and morsel["path"] == "/"
    assert COOKIE not in response.cookies


async def test_wrong_password_and_wrong_user(client: TestClient[Any, Any], box: App) -> None:
    box.admin.set_password(PASSWORD, first_time=True)
    resp = await web_login(client, "not the password")
    assert resp.status == 401
    assert "Wrong user name or password" in await resp.text()
    token = await form_token(client, "/login")
    resp = await client.post(
        "/login",
        data={"csrf_token": token, "username": "root", "password": PASSWORD},
        allow_redirects=False,
    )
    assert resp.status == 401
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_login_is_rate_limited_per_client(
    client: TestClient[Any, Any], box: App, clock: FakeClock, settings: WebSettings
) -> None:
    box.admin.set_password(PASSWORD, first_time=True)
    for _ in range(settings.login_max_failures):
        resp = await client.post("/api/v1/session", json={"password": "guess guess"})
        assert resp.status == 401
    # locked: even the right password is not looked at now
    resp = await client.post("/api/v1/session", json={"password": PASSWORD})
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    resp = await web_login(client)
    assert resp.status == 429
    assert "Too many failed logins" in await resp.text()
    clock.advance(settings.login_base_delay_s + 0.1)
    resp = await client.post("/api/v1/session", json={"password": "still wrong"})
    assert resp.status == 401
    resp = await client.post("/api/v1/session", json={"password": PASSWORD})
    assert resp.status == 429  # the lockout doubled after that failure
    clock.advance(2 * settings.login_base_delay_s + 0.1)
    assert (await client.post("/api/v1/session", json={"password": PASSWORD})).status == 200
    # success forgives the client
    resp = await client.post("/api/v1/session", json={"password": "wrong again"})
    assert resp.status == 401
    metrics = await (await client.get("/metrics")).text()
    assert "skillepunkt_web_login_failures_total 7" in metrics


async def test_login_answers_take_the_minimum_time(box: App, clock: FakeClock) -> None:
    box.admin.set_password(PASSWORD, first_time=True)
    settings = WebSettings(login_min_response_s=0.4, clock=clock)
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(box, settings)))
    await client.start_server()
    try:
        for body in ({"password": "wrong"}, {"username": "nobody", "password": PASSWORD}):
            started = time.monotonic()
            resp = await client.post("/api/v1/session", json=body)
            assert resp.status == 401
            assert time.monotonic() - started >= 0.39
    finally:
        await client.close()


async def test_session_expires_when_idle(
    client: TestClient[Any, Any], admin: str, clock: FakeClock, settings: WebSettings
) -> None:
    assert (await client.get("/api/v1/status")).status == 200
    clock.advance(settings.session_idle_s - 1)
    assert (await client.get("/api/v1/status")).status == 200  # activity keeps it alive
    clock.advance(settings.session_idle_s + 1)
    assert (await client.get("/api/v1/status")).status == 401
    resp = await client.get("/config", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login?next=/config"


async def test_logout_forgets_the_session(client: TestClient[Any, Any], admin: str) -> None:
    stolen = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value
    page = await (await client.get("/")).text()
    resp = await client.post("/logout", data={"csrf_token": csrf_from(page)}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/login")
    assert _set_cookie(resp)[COOKIE].value == ""
    # even a copy of the old cookie is worthless now
    client.session.cookie_jar.update_cookies({COOKIE: stolen})
    assert (await client.get("/api/v1/status")).status == 401


async def test_logout_needs_the_csrf_token(client: TestClient[Any, Any], admin: str) -> None:
    resp = await client.post("/logout", data={"csrf_token": "forged"}, allow_redirects=False)
    assert resp.status == 403
    assert (await client.get("/api/v1/status")).status == 200  # still logged in


async def test_api_logout(client: TestClient[Any, Any], admin: str) -> None:
    assert (await client.delete("/api/v1/session")).status == 403
    resp = await client.delete("/api/v1/session", headers={"X-CSRF-Token": admin})
    assert resp.status == 204
    assert (await client.get("/api/v1/session")).status == 401


async def test_unsafe_api_calls_need_the_csrf_header(
    client: TestClient[Any, Any], admin: str
) -> None:
    for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": "ünïcode"}):
        resp = await client.put(
            "/api/v1/config",
            data="system: {hostname: x}\n",
            headers={"Content-Type": "application/yaml", **headers},
        )
        assert resp.status == 403
        body = await resp.json()
        assert "X-CSRF-Token" in body["error"] and body["problems"] == []
    info = await (await client.get("/api/v1/session")).json()
    assert info["csrf_token"] == admin and info["user"] == "admin"


async def test_cross_site_requests_are_refused(client: TestClient[Any, Any], admin: str) -> None:
    headers = {"X-CSRF-Token": admin, "Content-Type": "application/yaml"}
    resp = await client.put(
        "/api/v1/config",
        data="system: {hostname: x}\n",
        headers={**headers, "Origin": "http://evil.example"},
    )
    assert resp.status == 403
    resp = await client.put(
        "/api/v1/config",
        data="system: {hostname: x}\n",
        headers={**headers, "Sec-Fetch-Site": "cross-site"},
    )
    assert resp.status == 403
    # Chromium's own form posts say "Origin: null" under Referrer-Policy: no-referrer
    resp = await client.put(
        "/api/v1/config",
        data="system: {hostname: x}\n",
        headers={**headers, "Origin": "null", "Sec-Fetch-Site": "same-origin"},
    )
    assert resp.status == 200
    own = str(client.make_url("/")).rstrip("/")
    resp = await client.put(
        "/api/v1/config", data="system: {hostname: x}\n", headers={**headers, "Origin": own}
    )
    assert resp.status == 200
    resp = await client.put(
        "/api/v1/config",
        data="system: {hostname: x}\n",
        headers={"Content-Type": "application/yaml", "Origin": "null"},
    )
    assert resp.status == 403  # and "null" never replaces the token


async def test_form_csrf_on_admin_pages(client: TestClient[Any, Any], admin: str, box: App) -> None:
    resp = await client.post(
        "/config", data={"document": "system: {hostname: forged}\n"}, allow_redirects=False
    )
    assert resp.status == 403
    assert "expired or did not come from this box" in await resp.text()
    assert box.store.revision() == 0


async def test_change_password_logs_out_everyone_else(
    client: TestClient[Any, Any], admin: str, box: App
) -> None:
    async with second_browser(client) as other:
        resp = await other.post("/api/v1/session", json={"password": PASSWORD})
        assert resp.status == 200
        await _change_password(client, admin, box)
        assert (await other.get("/api/v1/status")).status == 401


async def _change_password(client: TestClient[Any, Any], admin: str, box: App) -> None:
    resp = await client.post(
        "/api/v1/admin/password",
        json={"current": "wrong password", "new": "a new password"},
        headers={"X-CSRF-Token": admin},
    )
    assert resp.status == 422
    assert (await resp.json())["problems"] == [{"path": "current", "reason": "wrong password"}]
    resp = await client.post(
        "/api/v1/admin/password",
        json={"current": PASSWORD, "new": "short"},
        headers={"X-CSRF-Token": admin},
    )
    assert resp.status == 422
    assert (await resp.json())["problems"][0]["path"] == "new"
    resp = await client.post(
        "/api/v1/admin/password",
        json={"current": PASSWORD, "new": "a new password"},
        headers={"X-CSRF-Token": admin},
    )
    assert resp.status == 200
    new_token = (await resp.json())["csrf_token"]
    assert new_token != admin
    assert box.admin.verify("a new password")
    assert (await client.get("/api/v1/status")).status == 200


async def test_change_password_page(client: TestClient[Any, Any], admin: str, box: App) -> None:
    token = await form_token(client, "/account")
    resp = await client.post(
        "/account",
        data={"csrf_token": token, "current": PASSWORD, "new": "new password 1", "new2": "x"},
    )
    assert resp.status == 422 and "the two new passwords differ" in await resp.text()
    token = csrf_from(await resp.text())
    resp = await client.post(
        "/account",
        data={
            "csrf_token": token,
            "current": PASSWORD,
            "new": "new password 1",
            "new2": "new password 1",
        },
    )
    assert resp.status == 200 and "The password is changed" in await resp.text()
    assert box.admin.verify("new password 1")


async def test_login_next_stays_on_this_box(client: TestClient[Any, Any], box: App) -> None:
    box.admin.set_password(PASSWORD, first_time=True)
    for target, expected in (("/config", "/config"), ("//evil.example/", "/"), ("https://x", "/")):
        client.session.cookie_jar.clear()
        token = await form_token(client, f"/login?next={target}")
        resp = await client.post(
            "/login",
            data={"csrf_token": token, "username": "admin", "password": PASSWORD, "next": target},
            allow_redirects=False,
        )
        assert resp.headers["Location"] == expected
