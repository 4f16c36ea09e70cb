"""The supervisor restarts crashing services with backoff and shows them degraded."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable

import pytest

from firmware.system.supervisor import Backoff, ServiceState, Supervisor

FAST = Backoff(initial=0.01, factor=2.0, maximum=0.04, stable_after=0.3)


class Steady:
    def __init__(self, name: str = "steady") -> None:
        self.name = name
        self.starts = 0
        self.stopped = False

    async def run(self, ready: Callable[[], None]) -> None:
        self.starts += 1
        ready()
        try:
            await asyncio.Event().wait()
        finally:
            self.stopped = True


class Flaky:
    """Raises on its first ``failures`` runs, then runs steadily."""

    def __init__(self, failures: int, name: str = "flaky") -> None:
        self.name = name
        self.failures = failures
        self.starts = 0

    async def run(self, ready: Callable[[], None]) -> None:
        self.starts += 1
        ready()
        if self.starts <= self.failures:
            await asyncio.sleep(0)
            raise RuntimeError(f"boom {self.starts}")
        await asyncio.Event().wait()


class Returns:
    name = "returns"

    async def run(self, ready: Callable[[], None]) -> None:
        ready()


async def until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def test_all_ready_then_ok_and_clean_stop() -> None:
    sup = Supervisor(FAST)
    a, b = Steady("a"), Steady("b")
    sup.add(a)
    sup.add(b)
    assert sup.overall() == "starting"
    task = asyncio.create_task(sup.run())
    await asyncio.wait_for(sup.all_ready.wait(), 1)
    assert sup.overall() == "ok"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert a.stopped and b.stopped
    assert {s.state for s in sup.status()} == {ServiceState.STOPPED}
    assert sup.overall() == "stopping"


async def test_crashing_service_is_restarted_degraded_then_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sup = Supervisor(FAST)
    flaky, steady = Flaky(3), Steady()
    sup.add(flaky)
    sup.add(steady)
    task = asyncio.create_task(sup.run())
    await until(lambda: flaky.starts == 4)
    st = {s.name: s for s in sup.status()}
    assert st["flaky"].state == ServiceState.DEGRADED
    assert st["flaky"].restarts == 3
    assert st["flaky"].last_error == "RuntimeError: boom 3"
    assert st["steady"].state == ServiceState.RUNNING and steady.starts == 1  # others untouched
    assert sup.overall() == "degraded"
    crashes = [r for r in caplog.records if r.getMessage() == "service crashed; restarting"]
    assert len(crashes) == 3 and all(r.exc_info for r in crashes)  # logged with traceback
    # after running cleanly for stable_after, it is healthy again
    await until(lambda: sup.overall() == "ok", timeout=2)
    assert {s.name: s.state for s in sup.status()}["flaky"] == ServiceState.RUNNING
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_backoff_grows_and_is_capped() -> None:
    sup = Supervisor(Backoff(initial=0.02, factor=2.0, maximum=0.08, stable_after=10))
    flaky = Flaky(100)
    sup.add(flaky)
    loop = asyncio.get_running_loop()
    times: list[float] = []
    orig = flaky.run

    async def timed(ready: Callable[[], None]) -> None:
        times.append(loop.time())
        await orig(ready)

    flaky.run = timed  # type: ignore[method-assign]
    task = asyncio.create_task(sup.run())
    await until(lambda: len(times) >= 6, timeout=3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] == pytest.approx(0.02, abs=0.015)
    assert gaps[1] == pytest.approx(0.04, abs=0.02)
    assert all(g == pytest.approx(0.08, abs=0.03) for g in gaps[2:5])


async def test_returning_counts_as_a_crash() -> None:
    sup = Supervisor(FAST)
    sup.add(Returns())
    task = asyncio.create_task(sup.run())
    await until(lambda: sup.status()[0].restarts >= 1)
    assert "must run until it is stopped" in (sup.status()[0].last_error or "")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_injected_fault_restarts_the_service() -> None:
    sup = Supervisor(FAST)
    steady = Steady()
    sup.add(steady)
    task = asyncio.create_task(sup.run())
    await sup.all_ready.wait()
    sup.inject_fault("steady")
    await until(lambda: steady.starts == 2)
    st = sup.status()[0]
    assert st.restarts == 1 and st.last_error == "InjectedFault: fault injected"
    assert st.state == ServiceState.DEGRADED
    with pytest.raises(KeyError):
        sup.inject_fault("nope")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_duplicate_names_rejected() -> None:
    sup = Supervisor()
    sup.add(Steady("x"))
    with pytest.raises(ValueError, match="duplicate"):
        sup.add(Steady("x"))


logging.getLogger("firmware.system.supervisor").setLevel(logging.ERROR)
