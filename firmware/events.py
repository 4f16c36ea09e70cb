"""A small in-process event bus, so modules announce changes instead of reaching into each other.

Subscribers register for an event class; ``publish`` delivers synchronously to plain
callbacks and into bounded queues for async consumers. A failing subscriber is logged
and never breaks the publisher.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

E = TypeVar("E")


class EventBus:
    def __init__(self) -> None:
        self._callbacks: dict[type, list[Callable[[Any], None]]] = defaultdict(list)
        self._queues: dict[type, list[asyncio.Queue[Any]]] = defaultdict(list)

    def subscribe(self, event_type: type[E], callback: Callable[[E], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every published ``event_type``; returns an unsubscribe."""
        self._callbacks[event_type].append(callback)
        return lambda: self._callbacks[event_type].remove(callback)

    def queue(self, event_type: type[E], maxsize: int = 100) -> asyncio.Queue[E]:
        """A queue that receives every ``event_type``; when full, the oldest event is dropped."""
        q: asyncio.Queue[E] = asyncio.Queue(maxsize)
        self._queues[event_type].append(q)
        return q

    def unqueue(self, event_type: type[E], q: asyncio.Queue[E]) -> None:
        self._queues[event_type].remove(q)

    def publish(self, event: object) -> None:
        for cls in type(event).__mro__:
            for callback in list(self._callbacks.get(cls, ())):
                try:
                    callback(event)
                except Exception:
                    log.exception("event subscriber failed", extra={"event": type(event).__name__})
            for q in self._queues.get(cls, ()):
                if q.full():
                    q.get_nowait()
                q.put_nowait(event)
