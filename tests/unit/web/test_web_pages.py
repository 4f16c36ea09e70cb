"""The HTML pages: status, configuration import, security headers, escaping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from firmware.app import App
from firmware.config import dump_yaml
from firmware.web.headers import CSP

from .webtesting import PASSWORD, Crashing, Ready, api_login, csrf_from, running_box


async def test_status_page_lists_services_and_the_box(tmp_path: Path, make_client: Any) -> None:
    services = [Ready("sip"), Crashing("media", "<script>alert(1)</script> & more")]
    async with running_box(tmp_path, services) as app:
        app.admin.set_password(PASSWORD, first_time=True)
        client = await make_client(app)
        await api_login(client)
        resp = await client.get("/")
        assert resp.status == 200
        html = await resp.text()
        assert '<span class="badge degraded">degraded</span>' in html
        assert '<td class="name">sip</td>' in html and '<td class="name">media</td>' in html
        assert '<span class="badge running">running</span>' in html
        # the error is shown, as text
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
        assert "<script>" not in html
        for fact in ("skillepunkt", app.version, "sim", "revision 0"):
            assert fact in html
        assert 'action="/logout"' in html and csrf_from(html)


async def test_security_headers_everywhere(client: TestClient[Any, Any], admin: str) -> None:
    for path in ("/", "/healthz", "/static/style.css", "/api/v1/status", "/nowhere"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.headers["Content-Security-Policy"] == CSP, path
        assert "default-src 'self'" in CSP
        assert resp.headers["X-Frame-Options"] == "DENY", path
        assert resp.headers["X-Content-Type-Options"] == "nosniff", path
        assert resp.headers["Referrer-Policy"] == "no-referrer", path
        expected = "no-cache" if path.startswith("/static/") else "no-store"
        assert resp.headers["Cache-Control"] == expected, path


async def test_unknown_page_is_a_404_page(client: TestClient[Any, Any], admin: str) -> None:
    resp = await client.get("/nowhere")
    assert resp.status == 404
    assert resp.content_type == "text/html"
    assert "There is no such page." in await resp.text()


async def test_config_page_import(client: TestClient[Any, Any], admin: str, box: App) -> None:
    page = await (await client.get("/config")).text()
    assert "hostname: skillepunkt" in page and "revision 0" in page
    resp = await client.post(
        "/config",
        data={"csrf_token": csrf_from(page), "document": "system: {hostname: kontor}\n"},
    )
    assert resp.status == 200
    assert str(resp.url).endswith("/config?imported=1")
    html = await resp.text()
    assert "Imported as revision 1." in html and "hostname: kontor" in html
    assert box.store.document()["system"]["hostname"] == "kontor"


async def test_config_page_shows_every_problem(
    client: TestClient[Any, Any], admin: str, box: App
) -> None:
    page = await (await client.get("/config")).text()
    bad = "system: {hostname: 'no good'}\nusers:\n  - {extension: '1', name: A}\n"
    resp = await client.post("/config", data={"csrf_token": csrf_from(page), "document": bad})
    assert resp.status == 422
    html = await resp.text()
    assert "Nothing was imported" in html
    assert "<code>system.hostname</code>" in html
    assert "<code>users[0].extension</code>" in html
    assert "no good" in html  # the submitted text is kept for fixing
    assert box.store.revision() == 0


async def test_config_page_file_upload(client: TestClient[Any, Any], admin: str, box: App) -> None:
    import aiohttp

    page = await (await client.get("/config")).text()
    form = aiohttp.FormData()
    form.add_field("csrf_token", csrf_from(page))
    form.add_field("document", "")
    form.add_field(
        "file",
        dump_yaml({"users": [{"extension": "101", "name": "Anne"}]}).encode(),
        filename="site.yaml",
        content_type="application/yaml",
    )
    resp = await client.post("/config", data=form)
    assert resp.status == 200 and "Imported as revision 1." in await resp.text()
    assert box.store.document()["users"][0]["name"] == "Anne"


async def test_config_page_shows_secrets_masked(
    client: TestClient[Any, Any], admin: str, box: App
) -> None:
    box.store.import_raw(
        {"users": [{"extension": "101", "name": "A", "sip_password": "hush-hush-1"}]}, "t"
    )
    html = await (await client.get("/config")).text()
    assert "hush-hush-1" not in html and "********" in html


async def test_oversized_form_is_a_413_page(client: TestClient[Any, Any], admin: str) -> None:
    page = await (await client.get("/config")).text()
    huge = "# " + "x" * (5 * 1024 * 1024)
    resp = await client.post("/config", data={"csrf_token": csrf_from(page), "document": huge})
    assert resp.status == 413
    assert "too large" in await resp.text()
