"""Runs the daemon's services in one TaskGroup and keeps them alive.

A service is any object with a ``name`` and ``async run(ready)``: it calls ``ready()``
once it serves, and runs until cancelled. If ``run`` raises (or returns early), the
crash is logged with its traceback and the service is restarted after an exponential
backoff; meanwhile, and for ``stable_after`` seconds after a restart, it is shown as
degraded. Nothing is ever silently gone: a service that keeps crashing keeps being
restarted (the backoff is capped) and stays degraded.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)


class Service(Protocol):
    name: str

    async def run(self, ready: Callable[[], None]) -> None: ...


class ServiceState(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    DEGRADED = "degraded"
    STOPPED = "stopped"


class InjectedFault(RuntimeError):
    """Raised in place of a service by ``Supervisor.inject_fault`` (simulator and tests)."""


@dataclass
class ServiceStatus:
    name: str
    state: ServiceState = ServiceState.STARTING
    restarts: int = 0
    last_error: str | None = None
    last_crash: float | None = None  # wall-clock time of the last crash
    since: float = field(default_factory=time.time)  # wall-clock time of the last state change
    ready: bool = False  # has the current run called ready()?

    def as_dict(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "last_crash": self.last_crash,
            "since": self.since,
        }


@dataclass(frozen=True)
class Backoff:
    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    stable_after: float = 60.0  # seconds of clean running that reset backoff and clear "degraded"


class Supervisor:
    def __init__(self, backoff: Backoff | None = None) -> None:
        self.backoff = backoff or Backoff()
        self._services: list[Service] = []
        self._status: dict[str, ServiceStatus] = {}
        self._inner: dict[str, asyncio.Task[None]] = {}
        self._faults: set[str] = set()
        self._ready_once: set[str] = set()
        self.all_ready = asyncio.Event()
        self.stopping = False

    def add(self, service: Service) -> None:
        if service.name in self._status:
            raise ValueError(f"duplicate service name {service.name!r}")
        self._services.append(service)
        self._status[service.name] = ServiceStatus(service.name)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self._services]

    def gauges(self) -> list[tuple[str, str, float]]:
        """(name, help, value) of what running services count (calls up, contacts...):
        a service offers them with an optional ``gauges()`` method."""
        out: list[tuple[str, str, float]] = []
        for service in self._services:
            offer = getattr(service, "gauges", None)
            if callable(offer):
                try:
                    out.extend(offer())
                except Exception:  # a service between restarts: nothing to count
                    log.debug("gauges unavailable", extra={"service": service.name})
        return out

    def status(self) -> list[ServiceStatus]:
        self._expire_degraded()
        return [self._status[s.name] for s in self._services]

    def overall(self) -> str:
        """'ok' when every service runs, 'starting' before all were ready once, else 'degraded'."""
        states = {s.state for s in self.status()}
        if self.stopping:
            return "stopping"
        if states <= {ServiceState.RUNNING}:
            return "ok"
        if ServiceState.DEGRADED in states or self.all_ready.is_set():
            return "degraded"
        return "starting"

    def inject_fault(self, name: str) -> None:
        """Make service ``name`` crash now, as if its ``run`` had raised."""
        task = self._inner.get(name)
        if task is None or task.done():
            raise KeyError(name)
        self._faults.add(name)
        task.cancel()

    async def run(self) -> None:
        """Run every service until cancelled; then cancel them all and wait for them."""
        try:
            async with asyncio.TaskGroup() as tg:
                for service in self._services:
                    tg.create_task(self._keep_alive(service), name=f"supervise:{service.name}")
        finally:
            self.stopping = True

    def _set(self, st: ServiceStatus, state: ServiceState) -> None:
        if st.state != state:
            st.state = state
            st.since = time.time()

    def _expire_degraded(self) -> None:
        now = time.time()
        for st in self._status.values():
            if (
                st.state == ServiceState.DEGRADED
                and st.ready
                and st.last_crash is not None
                and now - st.last_crash >= self.backoff.stable_after
            ):
                self._set(st, ServiceState.RUNNING)

    async def _keep_alive(self, service: Service) -> None:
        st = self._status[service.name]
        delay = self.backoff.initial
        loop = asyncio.get_running_loop()
        while True:
            started_at = loop.time()
            st.ready = False

            def ready(st: ServiceStatus = st) -> None:
                st.ready = True
                self._ready_once.add(st.name)
                if st.state != ServiceState.DEGRADED:
                    self._set(st, ServiceState.RUNNING)
                if self._ready_once >= set(self._status):
                    self.all_ready.set()

            inner = asyncio.create_task(service.run(ready), name=f"service:{service.name}")
            self._inner[service.name] = inner
            error: BaseException
            try:
                await asyncio.shield(inner)
                error = RuntimeError("run() returned; a service must run until it is stopped")
            except asyncio.CancelledError:
                if _outer_cancelling():  # the daemon is stopping: stop the service with it
                    inner.cancel()
                    await asyncio.gather(inner, return_exceptions=True)
                    self._set(st, ServiceState.STOPPED)
                    raise
                if service.name in self._faults:
                    self._faults.discard(service.name)
                    error = InjectedFault("fault injected")
                else:
                    error = RuntimeError("service task was cancelled from inside")
            except Exception as exc:  # a crash: log it, restart it
                error = exc
            finally:
                self._inner.pop(service.name, None)

            st.ready = False
            st.restarts += 1
            st.last_crash = time.time()
            st.last_error = f"{type(error).__name__}: {error}"
            self._set(st, ServiceState.DEGRADED)
            if loop.time() - started_at >= self.backoff.stable_after:
                delay = self.backoff.initial
            log.error(
                "service crashed; restarting",
                exc_info=(type(error), error, error.__traceback__),
                extra={"service": service.name, "restarts": st.restarts, "backoff_s": delay},
            )
            await asyncio.sleep(delay)
            delay = min(delay * self.backoff.factor, self.backoff.maximum)


def _outer_cancelling() -> bool:
    task = asyncio.current_task()
    return bool(task and task.cancelling())
