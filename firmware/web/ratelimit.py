"""Brute-force guard for the admin password, per client address.

An attempt is counted as a failure the moment it starts and forgiven only when it
succeeds, so firing many guesses in parallel gains nothing over firing them one by one.
After ``login_max_failures`` failures each further attempt has to wait, twice as long
every time; waiting attempts are refused without even looking at the password.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from .settings import WebSettings

MAX_CLIENTS = 4096  # remembered addresses; the oldest are forgotten first


@dataclass
class _Record:
    failures: int = 0
    last: float = 0.0


class LoginLimiter:
    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self._clients: OrderedDict[str, _Record] = OrderedDict()
        self.failures_total = 0

    def retry_after(self, client: str) -> float:
        """Seconds ``client`` must still wait before its next attempt (0: go ahead)."""
        record = self._record(client)
        if record is None or record.failures < self.settings.login_max_failures:
            return 0.0
        excess = record.failures - self.settings.login_max_failures
        delay = min(self.settings.login_base_delay_s * 2.0**excess, self.settings.login_max_delay_s)
        return max(0.0, record.last + delay - self.settings.clock())

    def begin(self, client: str) -> None:
        """An attempt starts: count it as failed until ``succeeded`` says otherwise."""
        record = self._record(client) or _Record()
        record.failures += 1
        record.last = self.settings.clock()
        self._clients[client] = record
        self._clients.move_to_end(client)
        while len(self._clients) > MAX_CLIENTS:
            self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)

    def failed(self) -> None:
        """The attempt was wrong: it stays counted (and shows in the metrics)."""
        self.failures_total += 1

    def _record(self, client: str) -> _Record | None:
        record = self._clients.get(client)
        if (
            record is not None
            and self.settings.clock() - record.last > self.settings.login_forget_s
        ):
            del self._clients[client]
            return None
        return record
