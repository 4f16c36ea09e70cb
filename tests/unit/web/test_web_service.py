"""WebService under a real supervisor: TCP port, the local API socket, crash and restart."""

from __future__ import annotations

import asyncio
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from firmware.app import App, Ports
from firmware.web import WebService

from .webtesting import PASSWORD, Ready, running_box


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_service_serves_restarts_and_cleans_up(tmp_path: Path) -> None:
    port = free_port()
    services: list[WebService] = []

    def web_service(app: App) -> WebService:
        app.ports = Ports(web=port)
        services.append(WebService(app))  # as the daemon constructs it
        return services[0]

    async with running_box(tmp_path, [Ready("sip"), web_service]) as app:
        service, supervisor = services[0], app.supervisor
        assert service.port == port  # ready() came after the socket listened
        base = f"http://127.0.0.1:{port}"
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(base_url=base, cookie_jar=jar) as http:
            async with http.get("/healthz") as resp:
                assert resp.status == 200
                assert (await resp.json())["services"]["web"]["state"] == "running"

            # the local socket: the CLI's way in, trusted as admin, even before setup
            sock = tmp_path / "api.sock"
            assert stat.S_IMODE(sock.stat().st_mode) == 0o600
            connector = aiohttp.UnixConnector(path=str(sock))
            async with aiohttp.ClientSession("http://localhost", connector=connector) as cli:
                async with cli.get("/api/v1/sim") as resp:
                    assert resp.status == 200
                async with cli.post("/api/v1/sim/faults", json={"service": "nope"}) as resp:
                    assert resp.status == 404
                    assert "nope" in (await resp.json())["error"]

            # crash the web service through its own API
            app.admin.set_password(PASSWORD, first_time=True)
            async with http.post("/api/v1/session", json={"password": PASSWORD}) as resp:
                token = (await resp.json())["csrf_token"]
            async with http.post(
                "/api/v1/sim/faults", json={"service": "web"}, headers={"X-CSRF-Token": token}
            ) as resp:
                assert resp.status == 202
            web_status = supervisor.status()[-1]
            await _wait(lambda: web_status.restarts == 1 and service.port == port)
            # it is back, and the technician is still logged in
            async with http.get("/api/v1/status") as resp:
                assert resp.status == 200
                body = await resp.json()
                assert body["services"]["web"]["last_error"] == "InjectedFault: fault injected"

    # stopped with the supervisor: the socket file is gone and nobody listens any more
    assert not (tmp_path / "api.sock").exists()
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))
