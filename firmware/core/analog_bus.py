"""What the analog gateway and the SIP service tell each other over the event bus.

Kept apart from the gateway so the SIP service can import it without the DSP and
driver stack: the gateway announces where its user agent listens and which
extensions it answers (`AnalogBinding`); a service started later asks for the
current one (`AnalogBindingQuery`); the web reads the gateway's status
(`AnalogStatusQuery`). Queries are answered synchronously by ``EventBus.publish``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AnalogBinding:
    """The gateway's UA listens at ``host:port`` and answers ``extensions`` (port 0 and
    no extensions: the gateway stopped)."""

    host: str
    port: int
    extensions: tuple[str, ...]


@dataclass
class AnalogBindingQuery:
    """A running gateway appends its current `AnalogBinding` to ``answers``."""

    answers: list[AnalogBinding] = field(default_factory=list)


@dataclass
class AnalogStatusQuery:
    """A running gateway sets ``result`` to its status (ports, calls, in-use counters)."""

    result: dict[str, Any] | None = None
