"""Group commit for CDRs: the event loop queues steps, one thread writes them in batches.

Why: a CDR step alone is a transaction with an fsync (synchronous=FULL). At 1,000 calls/s
(three steps a call) one fsync per step cannot keep up, and each hand-off to a worker
pool woke a thread per step. Here the loop only appends to a deque (no lock, no wake-up)
and the writer thread wakes every ``interval`` to commit everything queued as one
transaction: one fsync per batch, however many steps it holds.

What "committed" means: a step is committed once the batch that holds it has returned
from COMMIT (WAL, synchronous=FULL: on disk). A crash (kill -9, power cut) loses only
steps not yet committed -- those queued or in the batch being written, i.e. at most
``interval`` plus one batch's write time of calls under normal load -- and never a
committed one; `CdrStore.recover` closes calls whose start was committed but whose end
was not. Steps are written in the order they were submitted.

Back-pressure: the queue is bounded (``max_queue`` steps). `submit` never blocks the
loop; when the queue is full the step is refused (False) and counted, and the caller
logs it (drop-to-log: the CDR text lands in the journal instead of the database).
`backlog` tells the SIP service how far behind the writer is, so it can refuse new calls
(503) well before the queue fills.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .cdr import CdrError, CdrStore

log = logging.getLogger(__name__)

Step = Callable[[CdrStore], object]


@dataclass(slots=True)
class WriterStats:
    """Counters for /metrics; they only grow."""

    submitted: int = 0
    committed: int = 0  # steps in batches that committed
    rejected: int = 0  # steps the store refused (CdrError): logged, nothing written
    dropped: int = 0  # refused by `submit` because the queue was full
    lost: int = 0  # steps of batches whose COMMIT failed (disk error): logged
    batches: int = 0
    largest_batch: int = 0


class CdrWriter:
    """One writer thread doing group commits into a `CdrStore`.

    ``submit(step)`` from any thread (normally the event loop): ``step(store)`` runs on
    the writer thread inside a batch. `close` writes what is queued, then stops.
    Idle, the writer still calls `CdrStore.heartbeat` every ``heartbeat`` seconds, so
    crash recovery dates cut calls closely without the loop touching the database.
    """

    def __init__(
        self,
        store: CdrStore,
        *,
        max_queue: int = 100_000,
        max_batch: int = 2_000,
        interval: float = 0.02,
        heartbeat: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_queue < 1 or max_batch < 1 or interval <= 0:
            raise ValueError("max_queue and max_batch must be >= 1, interval > 0")
        self.store = store
        self.max_queue = max_queue
        self.max_batch = max_batch
        self.interval = interval
        self.heartbeat = heartbeat
        self.stats = WriterStats()
        self._clock = clock
        self._queue: deque[Step] = deque()
        self._stop = threading.Event()
        self._idle = threading.Event()  # set while the queue is empty and nothing is written
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="cdr", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        """Steps queued and not yet committed (the batch being written included)."""
        return self.stats.submitted - self.stats.dropped - self._done()

    def _done(self) -> int:
        s = self.stats
        return s.committed + s.rejected + s.lost

    def submit(self, step: Step) -> bool:
        """Queue a step; False (and nothing queued) when the queue is full or closed."""
        stats = self.stats
        stats.submitted += 1
        if len(self._queue) >= self.max_queue or self._stop.is_set():
            stats.dropped += 1
            return False
        self._queue.append(step)
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is written; False on timeout (tests)."""
        deadline = time.monotonic() + timeout
        while self._queue or not self._idle.is_set():
            if time.monotonic() > deadline:
                return False
            self._idle.wait(min(self.interval, max(0.0, deadline - time.monotonic())))
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Refuse new steps, write the queued ones, stop the thread."""
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("CDR writer did not finish", extra={"queued": len(self._queue)})

    # -- the writer thread ------------------------------------------------------------

    def _run(self) -> None:
        queue = self._queue
        last_write = self._clock()
        while True:
            if not queue:
                if self._stop.is_set():
                    return
                if self._clock() - last_write >= self.heartbeat:
                    self._heartbeat()
                    last_write = self._clock()
                self._stop.wait(self.interval)  # poll: the loop never has to wake us
                continue
            self._idle.clear()
            batch = [queue.popleft() for _ in range(min(len(queue), self.max_batch))]
            self._write(batch)
            last_write = self._clock()
            if not queue:
                self._idle.set()

    def _write(self, batch: list[Step]) -> None:
        store, stats = self.store, self.stats
        rejected = 0
        try:
            with store.batch():
                for step in batch:
                    try:
                        step(store)
                    except CdrError as exc:
                        rejected += 1
                        log.warning("CDR step refused", extra={"error": str(exc)})
                    except Exception:  # undone alone (its SAVEPOINT); the batch goes on
                        rejected += 1
                        log.exception("CDR step failed")
        except Exception:
            stats.lost += len(batch) - rejected
            stats.rejected += rejected
            log.exception("CDR batch not committed", extra={"steps": len(batch)})
            return
        stats.rejected += rejected
        stats.committed += len(batch) - rejected
        stats.batches += 1
        stats.largest_batch = max(stats.largest_batch, len(batch))

    def _heartbeat(self) -> None:
        try:
            self.store.heartbeat()
        except Exception:
            log.exception("CDR heartbeat failed")
