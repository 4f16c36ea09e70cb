"""Overload control: refuse new calls early (503 + Retry-After) instead of drowning.

Past its capacity the box used to queue: the UDP receive buffer filled, datagrams of
calls already up (ACK, BYE, their retransmissions) were dropped with the new INVITEs,
and every call failed. A box that refuses new INVITEs cheaply while it is behind keeps
the calls it has, and a well-behaved caller (a trunk, a proxy) backs off for the
Retry-After it was given.

`OverloadGuard` is the decision, sans-I/O: it is fed pressure gauges -- above all the
bytes waiting in the kernel for the SIP UDP socket (`SipTransport.receive_backlog`: the
direct measure of "behind", since a saturated loop still fires its timers on time while
datagrams pile up), the CDR writer's backlog -- and the event loop's lag (how late a
periodic timer fires, a backstop for a loop blocked by anything), and switches shedding
on and off with hysteresis. `watch_loop` is its asyncio probe. The transaction layer does the
refusing (`TransactionLayer.shed_invites`): a new INVITE -- no To tag, matching no
transaction -- gets a stateless 503 right after parsing, while retransmissions of
admitted INVITEs, ACK, BYE, CANCEL and in-dialog requests go on as usual. The layer
also refuses on its own when too many INVITEs wait for their final response.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OverloadConfig:
    """Thresholds. Lags in seconds; ``smoothing`` is the weight of a new lag sample."""

    interval: float = 0.05  # how often the loop is probed
    lag_on: float = 0.2  # smoothed lag above this: start refusing new calls
    lag_off: float = 0.05  # ... and below this again: accept them
    smoothing: float = 0.3
    min_shed: float = 0.1  # once on, refuse for at least this long
    retry_after: int = 5  # seconds, in the 503


class OverloadGuard:
    """Shedding on/off from loop lag and named pressure gauges.

    ``limits`` maps a gauge name to the value at which it forces shedding (e.g.
    ``{"cdr_backlog": 50_000}``); each signal lets go on its own once it is below half
    its limit (the lag: below ``lag_off``), and shedding stops when every signal has
    let go and ``min_shed`` has passed. `update` takes the time explicitly.
    """

    def __init__(
        self, config: OverloadConfig | None = None, limits: Mapping[str, float] | None = None
    ) -> None:
        self.config = config or OverloadConfig()
        self.limits = dict(limits or {})
        self.lag = 0.0  # smoothed
        self.shedding = False
        self.reason = ""
        self.since = 0.0
        self.episodes = 0  # times shedding was switched on
        self._on: set[str] = set()  # signals above their limit and not yet back below half

    def update(self, now: float, lag: float, gauges: Mapping[str, float] | None = None) -> bool:
        """One probe: the lag just measured and the gauges' values; returns shedding."""
        config = self.config
        self.lag += config.smoothing * (max(0.0, lag) - self.lag)
        on = self._on
        over = ""
        if self.lag > config.lag_on:
            on.add("lag")
            over = f"loop lag {self.lag * 1000:.0f} ms"
        elif self.lag < config.lag_off:
            on.discard("lag")
        for name, value in (gauges or {}).items():
            limit = self.limits.get(name)
            if limit is None:
                continue
            if value >= limit:
                on.add(name)
                over = over or f"{name} {value:.0f}"
            elif value < limit / 2:
                on.discard(name)
        if over:
            if not self.shedding:
                self.shedding = True
                self.episodes += 1
                log.warning("overload: refusing new calls", extra={"reason": over})
            self.reason = over
            self.since = now
        elif self.shedding and not on and now - self.since >= config.min_shed:
            self.shedding = False
            self.reason = ""
            log.warning("overload over: accepting new calls again")
        return self.shedding


async def watch_loop(
    guard: OverloadGuard,
    apply: Callable[[bool], None],
    gauges: Callable[[], Mapping[str, float]] | None = None,
) -> None:
    """Probe the running loop's lag every ``guard.config.interval`` and ``apply`` the
    guard's verdict (runs until cancelled)."""
    loop = asyncio.get_running_loop()
    interval = guard.config.interval
    while True:
        start = loop.time()
        await asyncio.sleep(interval)
        now = loop.time()
        apply(guard.update(now, now - start - interval, gauges() if gauges else None))
