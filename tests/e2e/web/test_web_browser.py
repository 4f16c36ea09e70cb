"""Headless Chromium against a real server: first-boot setup, login, status page, logout.

The box runs in a thread with its own event loop (a real ConfigStore, AdminAccount and
Supervisor, the real WebService on an ephemeral port), so the browser talks HTTP to
exactly what the daemon serves. The sim board is stood in for by a minimal object.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from firmware.app import App, Ports
from firmware.config import AdminAccount, ConfigStore
from firmware.events import EventBus
from firmware.system.supervisor import Backoff, Supervisor
from firmware.web import WebService

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PASSWORD = "Skillepunkt 2026!"


class Steady:
    def __init__(self, name: str) -> None:
        self.name = name

    async def run(self, ready: Callable[[], None]) -> None:
        ready()
        await asyncio.Event().wait()


class CrashesOnce:
    """Crashes on its first run and then runs: shown degraded, with its error."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.runs = 0

    async def run(self, ready: Callable[[], None]) -> None:
        self.runs += 1
        ready()
        if self.runs == 1:
            raise RuntimeError("jitter buffer underrun storm")
        await asyncio.Event().wait()


class Board:
    name = "sim"

    def describe(self) -> dict[str, Any]:
        return {"board": "sim", "devices": []}


class BoxThread(threading.Thread):
    """The box's event loop in a thread; ``url`` is set once every service is ready."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(name="box", daemon=True)
        self.data_dir = data_dir
        self.url = ""
        self.started = threading.Event()
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by the fixture
            self.error = exc
            self.started.set()

    async def _main(self) -> None:
        store = ConfigStore.open(self.data_dir)
        supervisor = Supervisor(Backoff(initial=0.1, stable_after=600))
        app = App(
            data_dir=self.data_dir,
            store=store,
            admin=AdminAccount(store),
            bus=EventBus(),
            supervisor=supervisor,
            board=Board(),  # type: ignore[arg-type]
            ports=Ports(web=0),
        )
        web = WebService(app)
        for service in (Steady("config"), Steady("sip"), CrashesOnce("media"), web):
            supervisor.add(service)
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        runner = asyncio.create_task(supervisor.run())
        try:
            await asyncio.wait_for(supervisor.all_ready.wait(), 10)
            while supervisor.status()[2].restarts == 0:
                await asyncio.sleep(0.02)
            self.url = f"http://127.0.0.1:{web.port}"
            self.started.set()
            await runner
        except asyncio.CancelledError:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        finally:
            store.close()

    def stop(self) -> None:
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self.join(10)


@pytest.fixture
def box(tmp_path: Path) -> Iterator[BoxThread]:
    thread = BoxThread(tmp_path / "data")
    thread.start()
    assert thread.started.wait(15), "the box did not start"
    if thread.error is not None:
        raise thread.error
    yield thread
    thread.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    if not (Path(CHROMIUM).exists() and shutil.which(CHROMEDRIVER)):
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # never let Selenium Manager fetch a browser
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,860",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _submit(driver: webdriver.Chrome, fields: dict[str, str]) -> None:
    for name, value in fields.items():
        element = driver.find_element(By.NAME, name)
        element.clear()
        element.send_keys(value)
    driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()


def _wait_for_path(driver: webdriver.Chrome, path: str) -> None:
    WebDriverWait(driver, 15).until(
        lambda d: (
            d.current_url.split("://", 1)[1].split("/", 1)[1].startswith(path.lstrip("/"))
            and d.execute_script("return document.readyState") == "complete"
        )
    )


def test_setup_login_status_logout(
    box: BoxThread, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    browser.get(box.url + "/")
    _wait_for_path(browser, "/setup")
    assert "no admin password yet" in browser.page_source

    # (the browser itself enforces the length; the server's policy says the rest)
    _submit(browser, {"password": " padded password ", "password2": "something else"})
    _wait_for_path(browser, "/setup")
    problems = browser.find_element(By.CSS_SELECTOR, ".problems").text
    assert "no leading or trailing spaces" in problems
    assert "the two passwords differ" in problems

    _submit(browser, {"password": PASSWORD, "password2": PASSWORD})
    _wait_for_path(browser, "/login")
    assert "The admin password is set" in browser.find_element(By.CSS_SELECTOR, ".notice").text

    _submit(browser, {"password": PASSWORD})
    _wait_for_path(browser, "/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Status"
    rows = browser.find_elements(By.CSS_SELECTOR, "table.services tbody tr")
    states = {
        row.find_element(By.CSS_SELECTOR, "td.name").text: row.find_element(
            By.CSS_SELECTOR, ".badge"
        ).text.lower()
        for row in rows
    }
    assert states == {
        "config": "running",
        "sip": "running",
        "media": "degraded",
        "web": "running",
    }
    assert "jitter buffer underrun storm" in browser.page_source
    # the stylesheet applied: a degraded badge is not black on white
    color = browser.find_element(By.CSS_SELECTOR, ".badge.degraded").value_of_css_property("color")
    assert color not in ("rgba(0, 0, 0, 1)", "rgb(0, 0, 0)")

    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    shot = artifacts / "status.png"
    assert browser.save_screenshot(str(shot))
    print(f"status page screenshot: {shot}")

    browser.find_element(By.CSS_SELECTOR, "form.logout button").click()
    _wait_for_path(browser, "/login")
    assert "You are logged out" in browser.page_source
    browser.get(box.url + "/")
    _wait_for_path(browser, "/login")
