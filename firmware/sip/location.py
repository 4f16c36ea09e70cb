"""The location service: which contacts each extension (address-of-record) is reachable at.

The registrar writes it, the B2BUA reads it once per call. Reads come from an in-memory
index (a dict of small sorted tuples, swapped whole on every change) so a lookup takes no
lock and touches no disk; writes are one short SQLite transaction each (DATA/location.db,
WAL), committed before the index changes, so what a lookup sees is always on disk and a
restart of the daemon keeps every phone reachable without waiting for its next REGISTER.

Durability choice: ``synchronous=NORMAL``. In WAL mode that survives a kill -9 of the
daemon (principle 6), and only an OS crash or power cut can forget the last few commits.
Bindings are soft state that phones refresh on their own, so that loss repairs itself,
whereas an fsync per REGISTER would stall the event loop (and the media it shares) for
milliseconds on eMMC during every registration storm. ``synchronous="FULL"`` is one
argument away for whoever disagrees.

At most ``max_contacts`` bindings per AOR (default 10). A REGISTER that would go beyond
evicts the least recently refreshed ones: a phone that came back with a new address or
port (DHCP, a reboot with a random TCP port) keeps working instead of being refused
because its own stale bindings fill the list. Only a single REGISTER carrying more than
the limit itself is refused (the registrar answers 403).
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from firmware.sip.peer import Peer, Transport
from firmware.sip.uri import Uri, parse_uri
from firmware.storage import connect, migrate

__all__ = [
    "DB_NAME",
    "MAX_CONTACTS",
    "Binding",
    "LocationError",
    "LocationService",
]

log = logging.getLogger(__name__)

DB_NAME: Final = "location.db"
MAX_CONTACTS: Final = 10
_TRANSPORTS: Final[dict[str, Transport]] = {"udp": "udp", "tcp": "tcp", "tls": "tls"}

Clock = Callable[[], float]
Listener = Callable[[str, "tuple[Binding, ...]"], None]

MIGRATIONS: Final[list[str]] = [
    # 1: one row per binding; (aor, key) is the binding's identity (see Binding.key).
    """
    CREATE TABLE bindings (
        aor TEXT NOT NULL,
        key TEXT NOT NULL,
        contact TEXT NOT NULL,
        expires_at REAL NOT NULL,
        registered_at REAL NOT NULL,
        call_id TEXT NOT NULL,
        cseq INTEGER NOT NULL,
        transport TEXT NOT NULL,
        host TEXT NOT NULL,
        port INTEGER NOT NULL,
        connection INTEGER,
        q REAL,
        user_agent TEXT,
        instance TEXT,
        reg_id INTEGER,
        path TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (aor, key)
    ) WITHOUT ROWID;
    CREATE INDEX bindings_by_expiry ON bindings(expires_at)
    """,
]


class LocationError(RuntimeError):
    """A change could not be stored; nothing was changed (the registrar answers 500)."""


@dataclass(frozen=True, slots=True)
class Binding:
    """One contact of an AOR, with what §10.3 and NAT traversal need to remember.

    ``peer`` is where the REGISTER came from: behind NAT the Contact URI is a private
    address, so requests to the phone go to ``peer`` (over ``peer.connection`` for
    TCP/TLS). Connection ids only mean something within one run of the daemon, so a
    binding loaded at start has ``peer.connection`` None.
    """

    aor: str
    contact: str  # the Contact URI as the phone wrote it (no header parameters)
    expires_at: float  # clock time at which the binding lapses
    registered_at: float  # clock time of the REGISTER that created or last refreshed it
    call_id: str  # with cseq: §10.3 refuses a REGISTER older than the one stored
    cseq: int
    peer: Peer
    q: float | None = None  # preference 0..1 as given; absent sorts as 1.0
    user_agent: str | None = None
    instance: str | None = None  # +sip.instance (RFC 5626), e.g. "<urn:uuid:...>"
    reg_id: int | None = None  # reg-id (RFC 5626): one flow of an instance
    path: tuple[str, ...] = ()  # Path values (RFC 3327): the route set toward the phone

    @property
    def key(self) -> str:
        """Identity within the AOR: instance and reg-id when given, else the Contact URI.

        With an instance id a phone that changed address replaces its binding instead of
        leaving a stale one. Contact URIs never start with "<", instance ids do.
        """
        if self.instance is None:
            return self.contact
        return self.instance if self.reg_id is None else f"{self.instance};reg-id={self.reg_id}"

    @property
    def uri(self) -> Uri:
        """The Contact URI parsed (the Request-URI of a request to this phone)."""
        return parse_uri(self.contact)

    def alive(self, now: float) -> bool:
        return self.expires_at > now

    def expires_in(self, now: float) -> int:
        """Whole seconds left (never more than the registrar keeps it), for ;expires=."""
        return max(0, int(self.expires_at - now + 1e-6))


def _order(binding: Binding) -> tuple[float, float]:
    """Highest q first, then the most recently refreshed (what a call should try first)."""
    return (-(1.0 if binding.q is None else binding.q), -binding.registered_at)


class LocationService:
    """Bindings by AOR: in-memory index for reads, SQLite for surviving restarts.

    ``path`` None keeps everything in memory only (tests, tools). One instance per
    process; writes are serialized by a lock so worker threads may write too.
    """

    def __init__(
        self,
        path: Path | str | None,
        *,
        clock: Clock = time.time,
        max_contacts: int = MAX_CONTACTS,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    ) -> None:
        if max_contacts < 1:
            raise ValueError("max_contacts must be at least 1")
        self.path = None if path is None else Path(path)
        self.clock = clock
        self.max_contacts = max_contacts
        self.lock = threading.RLock()
        self._index: dict[str, tuple[Binding, ...]] = {}
        self._count = 0
        # (expires_at, aor) for every stored version of a binding; entries a refresh made
        # stale are skipped when popped, and the heap is rebuilt when they outnumber the
        # live ones. Just the AOR (shared with the index) keeps an entry at ~80 bytes.
        self._expiry: list[tuple[float, str]] = []
        self._listeners: list[Listener] = []
        self.db = self._connect(synchronous)
        try:
            self._load()
        except BaseException:
            self.db.close()
            raise

    @classmethod
    def open(cls, data_dir: Path | str, *, clock: Clock = time.time) -> LocationService:
        """The location service of the data directory (DATA/location.db)."""
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls(data_dir / DB_NAME, clock=clock)

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def __enter__(self) -> LocationService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading (no lock, no disk) ---------------------------------------------------------

    def contacts(self, aor: str) -> tuple[Binding, ...]:
        """Live bindings of ``aor``, highest q first, then most recently refreshed."""
        bindings = self._index.get(aor, ())
        now = self.clock()
        for b in bindings:
            if b.expires_at <= now:
                return tuple(b for b in bindings if b.expires_at > now)
        return bindings

    def aors(self) -> list[str]:
        """AORs that have bindings (live or not yet swept)."""
        return list(self._index)

    def __len__(self) -> int:
        """Bindings held (including lapsed ones the next sweep removes)."""
        return self._count

    def __iter__(self) -> Iterator[Binding]:
        for bindings in list(self._index.values()):
            yield from bindings

    def next_expiry(self) -> float | None:
        """When the earliest binding lapses (for scheduling `sweep`); None if empty."""
        with self.lock:
            while self._expiry and not self._current(self._expiry[0]):
                heapq.heappop(self._expiry)
            return self._expiry[0][0] if self._expiry else None

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(aor, live_bindings)`` after every committed change of an AOR."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # -- writing ------------------------------------------------------------------------------

    def update(
        self, aor: str, *, remove: Iterable[str] = (), add: Iterable[Binding] = ()
    ) -> tuple[Binding, ...]:
        """Apply one REGISTER: drop the bindings keyed ``remove``, store ``add``; all or nothing.

        Lapsed bindings of the AOR go in the same transaction, and the least recently
        refreshed are evicted beyond ``max_contacts``. Returns the live bindings after.
        Raises `LocationError` (nothing changed) if the database refuses.
        """
        added = {b.key: b for b in add}
        if any(b.aor != aor for b in added.values()):
            raise ValueError("bindings of another AOR")
        if len(added) > self.max_contacts:
            raise ValueError(f"more than {self.max_contacts} contacts for one AOR")
        with self.lock:
            now = self.clock()
            gone = set(remove)
            kept = [
                b
                for b in self._index.get(aor, ())
                if b.key not in gone and b.key not in added and b.expires_at > now
            ]
            kept.sort(key=lambda b: b.registered_at, reverse=True)
            kept = kept[: self.max_contacts - len(added)]
            result = tuple(sorted([*kept, *added.values()], key=_order))
            keys = {b.key for b in result}
            dropped = [b.key for b in self._index.get(aor, ()) if b.key not in keys]
            with self._transaction() as db:
                db.executemany(
                    "DELETE FROM bindings WHERE aor = ? AND key = ?", [(aor, k) for k in dropped]
                )
                db.executemany(
                    "INSERT OR REPLACE INTO bindings VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [_row(b) for b in added.values()],
                )
            self._publish(aor, result)
            for b in added.values():
                heapq.heappush(self._expiry, (b.expires_at, aor))
            self._compact()
        self._notify(aor, result)
        return result

    def remove_aors(self, aors: Iterable[str]) -> int:
        """Forget every binding of these AORs (a user removed from the configuration)."""
        with self.lock:
            targets = [a for a in set(aors) if a in self._index]
            if not targets:
                return 0
            with self._transaction() as db:
                db.executemany("DELETE FROM bindings WHERE aor = ?", [(a,) for a in targets])
            removed = 0
            for aor in targets:
                removed += len(self._index.get(aor, ()))
                self._publish(aor, ())
        for aor in targets:
            self._notify(aor, ())
        return removed

    def sweep(self) -> list[Binding]:
        """Remove the bindings that have lapsed; returns them. Cost: only what lapsed."""
        with self.lock:
            now = self.clock()
            due: set[str] = set()
            while self._expiry and self._expiry[0][0] <= now:
                due.add(heapq.heappop(self._expiry)[1])
            lapsed = [b for aor in due for b in self._index.get(aor, ()) if b.expires_at <= now]
            if not lapsed:
                return []
            try:
                with self._transaction() as db:
                    db.executemany(
                        "DELETE FROM bindings WHERE aor = ? AND key = ?",
                        [(b.aor, b.key) for b in lapsed],
                    )
            except LocationError:
                for b in lapsed:  # try again at the next sweep
                    heapq.heappush(self._expiry, (b.expires_at, b.aor))
                raise
            changed = {b.aor: self.contacts(b.aor) for b in lapsed}
            for aor, bindings in changed.items():
                self._publish(aor, bindings)
        for aor, bindings in changed.items():
            self._notify(aor, bindings)
        return lapsed

    # -- plumbing -----------------------------------------------------------------------------

    def _current(self, entry: tuple[float, str]) -> bool:
        """Whether a heap entry still stands for a stored binding (not one since refreshed)."""
        expires_at, aor = entry
        return any(b.expires_at == expires_at for b in self._index.get(aor, ()))

    def _publish(self, aor: str, bindings: tuple[Binding, ...]) -> None:
        """Swap the AOR's tuple in the index (readers see the old or the new one, whole)."""
        self._count += len(bindings) - len(self._index.get(aor, ()))
        if bindings:
            self._index[aor] = bindings
        else:
            self._index.pop(aor, None)

    def _compact(self) -> None:
        if len(self._expiry) > 2 * self._count + 64:
            self._expiry = [(b.expires_at, b.aor) for b in self]
            heapq.heapify(self._expiry)

    def _notify(self, aor: str, bindings: tuple[Binding, ...]) -> None:
        for listener in list(self._listeners):
            try:
                listener(aor, bindings)
            except Exception:
                log.exception("location listener failed", extra={"aor": aor})

    def _connect(self, synchronous: str) -> sqlite3.Connection:
        target = ":memory:" if self.path is None else str(self.path)
        mode: Literal["FULL", "NORMAL"] = "FULL" if synchronous == "FULL" else "NORMAL"
        try:
            db = connect(target, synchronous=mode, foreign_keys=False)
        except sqlite3.DatabaseError as exc:
            return self._corrupt(exc, synchronous)
        try:
            migrate(db, MIGRATIONS)
        except sqlite3.DatabaseError as exc:
            db.close()
            return self._corrupt(exc, synchronous)
        except BaseException:
            db.close()
            raise
        return db

    def _corrupt(self, exc: sqlite3.DatabaseError, synchronous: str) -> sqlite3.Connection:
        if isinstance(exc, sqlite3.OperationalError) or self.path is None:
            raise exc  # locked, read-only, full disk...: not ours to throw away
        return self._start_over(exc, synchronous)

    def _start_over(self, exc: sqlite3.DatabaseError, synchronous: str) -> sqlite3.Connection:
        """A corrupt location.db is set aside, not fatal: bindings come back as phones refresh."""
        assert self.path is not None
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        for suffix in ("", "-wal", "-shm"):
            old = Path(f"{self.path}{suffix}")
            if old.exists():
                old.rename(f"{self.path}.corrupt-{stamp}{suffix}")
        log.error("location database unreadable, starting empty", extra={"error": str(exc)})
        return self._connect(synchronous)

    def _load(self) -> None:
        """Read the stored bindings: lapsed ones are deleted, connection ids forgotten."""
        now = self.clock()
        with self._transaction() as db:
            db.execute("DELETE FROM bindings WHERE expires_at <= ?", (now,))
            db.execute("UPDATE bindings SET connection = NULL WHERE connection IS NOT NULL")
            rows = db.execute("SELECT * FROM bindings").fetchall()
        by_aor: dict[str, list[Binding]] = {}
        for row in rows:
            try:
                binding = _binding(row)
            except (ValueError, TypeError) as exc:
                log.warning("unreadable binding skipped", extra={"aor": row[0], "error": str(exc)})
                continue
            by_aor.setdefault(binding.aor, []).append(binding)
        for aor, bindings in by_aor.items():
            bindings.sort(key=_order)
            self._publish(aor, tuple(bindings))
        self._expiry = [(b.expires_at, b.aor) for b in self]
        heapq.heapify(self._expiry)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE .. COMMIT; on any error nothing is written (LocationError)."""
        with self.lock:
            db = self.db
            try:
                db.execute("BEGIN IMMEDIATE")
                yield db
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise LocationError(f"location database: {exc}") from exc
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise


def _row(b: Binding) -> tuple[object, ...]:
    p = b.peer
    return (
        b.aor, b.key, b.contact, b.expires_at, b.registered_at, b.call_id, b.cseq,
        p.transport, p.host, p.port, p.connection, b.q, b.user_agent, b.instance, b.reg_id,
        json.dumps(list(b.path)),
    )  # fmt: skip


def _binding(row: tuple[Any, ...]) -> Binding:
    (aor, _key, contact, expires_at, registered_at, call_id, cseq, transport, host, port,
     _connection, q, user_agent, instance, reg_id, path) = row  # fmt: skip
    if transport not in _TRANSPORTS:
        raise ValueError(f"unknown transport {transport!r}")
    hops = json.loads(path)
    if not isinstance(hops, list) or not all(isinstance(h, str) for h in hops):
        raise ValueError("malformed path")
    return Binding(
        aor=str(aor),
        contact=str(contact),
        expires_at=float(expires_at),
        registered_at=float(registered_at),
        call_id=str(call_id),
        cseq=int(cseq),
        peer=Peer(_TRANSPORTS[transport], sys.intern(str(host)), int(port), None),
        q=None if q is None else float(q),
        user_agent=None if user_agent is None else sys.intern(str(user_agent)),
        instance=None if instance is None else str(instance),
        reg_id=None if reg_id is None else int(reg_id),
        path=tuple(hops),
    )
