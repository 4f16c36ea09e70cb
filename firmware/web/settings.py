"""Tunables of the web front end, gathered so tests can shrink time and limits.

The defaults are the appliance's: a technician's tab that sits idle for half an hour
is logged out, and a guessed password costs an attacker exponentially more time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config.yamlio import MAX_DOCUMENT_BYTES


@dataclass(frozen=True)
class WebSettings:
    session_idle_s: float = 30 * 60  # logged out after this long without a request
    session_max_age_s: float = 12 * 3600  # and after a working day, however active
    max_admin_sessions: int = 64
    max_anonymous_sessions: int = 512  # login/setup forms in flight; bounded against floods
    login_max_failures: int = 5  # failures from one client before each attempt is delayed
    login_base_delay_s: float = 2.0  # the first lockout; doubles with every further failure
    login_max_delay_s: float = 120.0
    login_forget_s: float = 15 * 60  # a client's failures are forgotten after this quiet time
    login_min_response_s: float = 0.25  # every login answer takes at least this long
    max_body_bytes: int = MAX_DOCUMENT_BYTES  # a configuration document, YAML or JSON
    shutdown_timeout_s: float = 2.0  # requests in flight when the service stops
    clock: Callable[[], float] = field(default=time.monotonic)
