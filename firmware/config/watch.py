"""Publishes ConfigChanged when a new configuration revision is committed.

Imports can come from this process (web, console) or another one (``skillepunkt config
import`` beside a running daemon), so the one reliable signal is the store itself: this
service polls the revision number (one indexed query) and diffs the sections. Services
that can apply a change live subscribe to ConfigChanged on the event bus.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..events import EventBus
from .store import ConfigStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfigChanged:
    revision: int
    sections: frozenset[str]  # sections whose content differs from the previous revision


class ConfigWatcher:
    name = "config"

    def __init__(self, store: ConfigStore, bus: EventBus, interval: float = 0.5) -> None:
        self.store = store
        self.bus = bus
        self.interval = interval
        # What was last published; kept across restarts, so an import that lands while
        # the watcher is down (crashed, backing off) is still announced afterwards.
        self._revision = store.revision()
        self._document = store.document()

    async def run(self, ready: Callable[[], None]) -> None:
        ready()
        while True:
            self._check()
            await asyncio.sleep(self.interval)

    def _check(self) -> None:
        revision = self.store.revision()
        if revision == self._revision:
            return
        new = self.store.document()
        changed = frozenset(k for k in new if new[k] != self._document.get(k))
        self._revision, self._document = revision, new
        log.info(
            "configuration changed",
            extra={"revision": revision, "sections": ",".join(sorted(changed))},
        )
        self.bus.publish(ConfigChanged(revision, changed))
