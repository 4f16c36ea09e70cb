"""Fixtures of the web tests: a running box, web settings with a hand-moved clock, clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from firmware.app import App
from firmware.web import WebSettings, create_app

from .webtesting import PASSWORD, FakeClock, Ready, api_login, running_box


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(clock: FakeClock) -> WebSettings:
    return WebSettings(login_min_response_s=0.0, clock=clock)


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[App]:
    """A box whose services all run (healthz: ok)."""
    async with running_box(tmp_path, [Ready("sip"), Ready("media")]) as app:
        yield app


MakeClient = Callable[[App], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def make_client(settings: WebSettings) -> AsyncIterator[MakeClient]:
    clients: list[TestClient[Any, Any]] = []

    async def make(app: App) -> TestClient[Any, Any]:
        client: TestClient[Any, Any] = TestClient(TestServer(create_app(app, settings)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(box: App, make_client: MakeClient) -> TestClient[Any, Any]:
    """A client of a box whose admin password is not set yet (first boot)."""
    return await make_client(box)


@pytest.fixture
async def admin(client: TestClient[Any, Any], box: App) -> str:
    """Set the password and log the client in over the API; returns the CSRF token."""
    box.admin.set_password(PASSWORD, first_time=True)
    return await api_login(client)
