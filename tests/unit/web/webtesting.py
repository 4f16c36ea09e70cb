"""Helpers of the web tests: a real App on a temporary data directory with its supervisor
running, stand-in services and board, and login/form shortcuts.

Only the board is a stand-in (the simulated board is written elsewhere): the web
package needs nothing from it but ``name`` and ``describe()``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from firmware.app import App
from firmware.config import AdminAccount, ConfigStore
from firmware.events import EventBus
from firmware.system.supervisor import Backoff, Supervisor

PASSWORD = "correct horse battery"


class Ready:
    """A service that comes up and stays up."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def run(self, ready: Callable[[], None]) -> None:
        ready()
        await asyncio.Event().wait()


class Crashing:
    """A service that comes up and crashes at once, every time it is restarted."""

    def __init__(self, name: str, message: str = "codec table missing") -> None:
        self.name = name
        self.message = message

    async def run(self, ready: Callable[[], None]) -> None:
        ready()
        await asyncio.sleep(0)
        raise RuntimeError(self.message)


@dataclass
class FakeBoard:
    name: str = "sim"
    devices: list[dict[str, Any]] = field(
        default_factory=lambda: [{"name": "fxs1", "chip": "Si3215", "bus": "spi0.0"}]
    )

    def describe(self) -> dict[str, Any]:
        return {"board": self.name, "devices": self.devices}


class FakeClock:
    """The web state's clock (sessions, lockouts), moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@asynccontextmanager
async def running_box(
    data_dir: Path, services: list[Any], board: FakeBoard | None = None
) -> AsyncIterator[App]:
    store = ConfigStore.open(data_dir)
    supervisor = Supervisor(Backoff(initial=0.05, maximum=0.2, stable_after=60))
    app = App(
        data_dir=data_dir,
        store=store,
        admin=AdminAccount(store),
        bus=EventBus(),
        supervisor=supervisor,
        board=board or FakeBoard(),  # type: ignore[arg-type]
    )
    for service in services:  # a service, or a factory that needs the App
        supervisor.add(service(app) if callable(service) else service)
    task = asyncio.create_task(supervisor.run())
    try:
        await asyncio.wait_for(supervisor.all_ready.wait(), 5)
        crashing = {s.name for s in services if isinstance(s, Crashing)}
        while crashing and not all(
            st.restarts > 0 for st in supervisor.status() if st.name in crashing
        ):
            await asyncio.sleep(0.01)
        yield app
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        store.close()


async def api_login(client: TestClient[Any, Any], password: str = PASSWORD) -> str:
    resp = await client.post("/api/v1/session", json={"password": password})
    assert resp.status == 200, await resp.text()
    token = (await resp.json())["csrf_token"]
    assert isinstance(token, str)
    return token


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def form_token(client: TestClient[Any, Any], path: str) -> str:
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 200, (path, resp.status)
    return csrf_from(await resp.text())


async def web_login(client: TestClient[Any, Any], password: str = PASSWORD) -> ClientResponse:
    token = await form_token(client, "/login")
    return await client.post(
        "/login",
        data={"csrf_token": token, "username": "admin", "password": password},
        allow_redirects=False,
    )


def second_browser(client: TestClient[Any, Any]) -> aiohttp.ClientSession:
    """Another browser (its own cookies) on the same server as ``client``."""
    return aiohttp.ClientSession(
        base_url=str(client.make_url("/")), cookie_jar=aiohttp.CookieJar(unsafe=True)
    )
