"""Group commit for CDRs: the event loop queues steps, one thread writes them in batches.

Why: a CDR step alone is a transaction with an fsync (synchronous=FULL). At 1,000 calls/s
(three steps a call) one fsync per step cannot keep up, and each hand-off to a worker
pool woke a thread per step. Here the loop only appends to a deque (no lock, no wake-up:
the hand-off is already batched, the writer collects it) and the writer thread commits
everything queued as one transaction, one batch per ``interval`` at most: one fsync per
batch, however many steps it holds.

Steps are either callables (``step(store)``, each run in a SAVEPOINT of the batch) or,
on the hot path, tuples (`firmware.core.cdr.Op`: a whole call, a start, an answer, an
end) that `CdrStore.apply` writes without a SAVEPOINT each, whole calls and starts up to
256 rows per INSERT. That matters beyond the writer's own CPU: each SQLite call (an
``execute``) releases the GIL and takes it back five times, and whenever the writer
waits for the GIL while the event loop holds it, every GIL release of the loop (each
syscall) becomes a futex wake. A callable step is three SQLite calls (SAVEPOINT, the
write, RELEASE); a batch of tuples of short calls is four in all (BEGIN, one INSERT, the
run's last-seen time, COMMIT). Measured at 1,000 calls/s (bench/cdr_write.py, perf
uprobes on take_gil): the writer took the GIL 16.6 times per call with callables (and a
batch per fsync), 1.0 with tuples (and a batch per interval).

What "committed" means: a step is committed once the batch that holds it has returned
from COMMIT (WAL, synchronous=FULL: on disk). A crash (kill -9, power cut) loses only
steps not yet committed -- those queued or in the batch being written -- and never a
committed one; `CdrStore.recover` closes calls whose start was committed but whose end
was not. A step waits for its commit at most ``interval`` (the next batch) plus the
writing of the batch in progress and of its own (an fsync each): with the defaults at
1,000 calls/s, 15 ms median and 42 ms at most (bench/cdr_write.py); behind a backlog,
until the batches before it are written (the SIP service refuses new calls once
``max_queue / 2`` steps wait). A call's steps are written in the order submitted, and
rows are inserted in that order.

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

from .cdr import CdrError, CdrStore, Op

log = logging.getLogger(__name__)

Step = Callable[[CdrStore], object]
Item = Step | Op  # what `submit` takes


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
        self._queue: deque[Item] = deque()
        self._closed = False  # set by close: submit refuses
        self._stop = threading.Event()
        self._wake = threading.Event()  # flush/close: write now
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

    def submit(self, step: Item) -> bool:
        """Queue a step (a callable or an `Op` tuple); False (and nothing queued) when the
        queue is full or the writer closed. Never blocks, never wakes the writer."""
        stats = self.stats
        stats.submitted += 1
        if self._closed or len(self._queue) >= self.max_queue:
            stats.dropped += 1
            return False
        self._queue.append(step)
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Write what is queued now (not at the next interval) and wait until everything
        submitted so far is written; False on timeout (tests)."""
        deadline = time.monotonic() + timeout
        while self._queue or not self._idle.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._wake.set()
            if self._idle.is_set():  # queued, not taken yet
                time.sleep(min(0.001, remaining))
            else:
                self._idle.wait(min(self.interval, remaining))
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Refuse new steps, write the queued ones, stop the thread."""
        self._closed = True
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("CDR writer did not finish", extra={"queued": len(self._queue)})

    # -- the writer thread ------------------------------------------------------------

    def _run(self) -> None:
        queue, clock, wake = self._queue, self._clock, self._wake
        last_write = next_batch = clock()
        while True:
            if not queue:
                if self._stop.is_set():
                    return
                if clock() - last_write >= self.heartbeat:
                    self._heartbeat()
                    last_write = clock()
                wake.wait(self.interval)  # poll: the loop never has to wake us
                wake.clear()
                continue
            # One batch per interval at most (one fsync, a handful of SQLite calls), unless
            # a full batch is waiting, or flush/close asks: a step waits at most about
            # ``interval`` plus the writing of the batch before it and of its own.
            pause = next_batch - clock()
            hurry = wake.is_set() or self._stop.is_set()
            if pause > 0 and len(queue) < self.max_batch and not hurry:
                wake.wait(pause)
                continue
            wake.clear()
            next_batch = clock() + self.interval
            self._idle.clear()
            batch = [queue.popleft() for _ in range(min(len(queue), self.max_batch))]
            self._write(batch)
            last_write = clock()
            if not queue:
                self._idle.set()

    def _write(self, batch: list[Item]) -> None:
        store, stats = self.store, self.stats
        rejected = 0
        try:
            with store.batch():
                ops: list[Op] = []
                for step in batch:
                    if type(step) is tuple:
                        ops.append(step)
                        continue
                    if ops:  # in order: the tuples before this callable first
                        rejected += self._apply(ops)
                        ops = []
                    try:
                        step(store)  # type: ignore[operator]
                    except CdrError as exc:
                        rejected += 1
                        log.warning("CDR step refused", extra={"error": str(exc)})
                    except Exception:  # undone alone (its SAVEPOINT); the batch goes on
                        rejected += 1
                        log.exception("CDR step failed")
                if ops:
                    rejected += self._apply(ops)
        except Exception:
            stats.lost += len(batch) - rejected
            stats.rejected += rejected
            log.exception("CDR batch not committed", extra={"steps": len(batch)})
            for step in batch:  # what can be said of them goes to the log, not nowhere
                if type(step) is tuple:
                    log.error("CDR step not stored", extra={"cdr": step})
            return
        stats.rejected += rejected
        stats.committed += len(batch) - rejected
        stats.batches += 1
        stats.largest_batch = max(stats.largest_batch, len(batch))

    def _apply(self, ops: list[Op]) -> int:
        refused = self.store.apply(ops)
        for op, exc in refused:
            log.warning("CDR step refused", extra={"error": str(exc), "cdr": op})
        return len(refused)

    def _heartbeat(self) -> None:
        try:
            self.store.heartbeat()
        except Exception:
            log.exception("CDR heartbeat failed")
