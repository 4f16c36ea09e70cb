"""Transaction timer values (RFC 3261 §17, Table 4; RFC 6026) and the one timer queue.

Every transaction timer of the layer lives in a single heap, so the asyncio adapter
needs one ``loop.call_at`` for the earliest deadline, not one handle per timer: at
1,000 calls/s there are tens of thousands of live timers. Cancelling a timer is
lazy (the heap entry is left behind and skipped when it surfaces) because it
happens on almost every final response; stale entries are purged when they
outnumber the live ones, which keeps memory proportional to live timers.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """T1/T2/T4 and the timers derived from them (seconds).

    ``trying_delay``: an INVITE server transaction sends 100 Trying itself when the TU
    has sent no response this long after the INVITE arrived (§17.2.1 "unless it knows
    the TU will answer within 200 ms"); 0 sends it at once. ``proceeding_limit`` is
    not in the RFC: it bounds how long an INVITE transaction may wait for a final
    response (server: the TU never answered; client: the peer rang forever and the
    TU never cancelled), so a forgetful TU cannot leak transactions.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_d: float = 32.0  # unreliable transports only; 0 on TCP/TLS
    trying_delay: float = 0.2
    proceeding_limit: float = 600.0

    @property
    def timeout(self) -> float:
        """64*T1: timers B, F, H, J (unreliable), L and M."""
        return 64 * self.t1


class Timed(Protocol):
    """A timer owner (a transaction) with two slots: retransmission and lifetime."""

    timer_seq: list[int]  # per slot: sequence number of the armed entry, 0 = idle


T = TypeVar("T", bound=Timed)


class TimerQueue(Generic[T]):
    """Deadline heap of (when, seq, owner, slot); an entry is live while the owner's
    ``timer_seq[slot]`` still holds its ``seq``."""

    __slots__ = ("_heap", "_seq", "_stale")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T, int]] = []
        self._seq = 0
        self._stale = 0

    def __len__(self) -> int:
        return len(self._heap) - self._stale

    def arm(self, owner: T, slot: int, when: float) -> None:
        """(Re)start ``owner``'s timer ``slot`` to fire at ``when``."""
        if owner.timer_seq[slot]:
            owner.timer_seq[slot] = 0
            self._went_stale()
        self._seq += 1
        owner.timer_seq[slot] = self._seq
        heapq.heappush(self._heap, (when, self._seq, owner, slot))

    def cancel(self, owner: T, slot: int) -> None:
        if owner.timer_seq[slot]:
            owner.timer_seq[slot] = 0
            self._went_stale()

    def cancel_all(self, owner: T) -> None:
        self.cancel(owner, 0)
        self.cancel(owner, 1)

    def _went_stale(self) -> None:
        self._stale += 1
        if self._stale > 4096 and self._stale * 2 > len(self._heap):
            self._purge()

    def _purge(self) -> None:
        heap = self._heap  # in place: pop_due may be iterating over it
        heap[:] = [e for e in heap if e[2].timer_seq[e[3]] == e[1]]
        heapq.heapify(heap)
        self._stale = 0

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            when, seq, owner, slot = heap[0]
            if owner.timer_seq[slot] == seq:
                return when
            heapq.heappop(heap)
            self._stale -= 1
        return None

    def pop_due(self, now: float, fire: Callable[[T, int], None]) -> None:
        """Fire every live timer due at ``now`` in deadline order."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, seq, owner, slot = heapq.heappop(heap)
            if owner.timer_seq[slot] != seq:
                self._stale -= 1
                continue
            owner.timer_seq[slot] = 0
            fire(owner, slot)
