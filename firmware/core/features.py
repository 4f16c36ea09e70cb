"""Per-extension call features: forwarding (unconditional, busy, no answer) and DND.

Two sources set them. The configuration gives each user's defaults (``users[].forward``
and ``users[].dnd``); a user changes their own at runtime with a feature code
(``firmware.core.dialplan``). The rule between the two:

    A feature-code change wins over the configuration's values for that user until
    the configuration changes that user's forward/dnd values. Then the configuration
    wins again and the runtime change is dropped.

So an installer who edits a user's forwarding in the web UI sees that edit take
effect, while a user's ``*21*`` survives every unrelated configuration change (a new
phone, another user's name) and every restart. A change that brings a user back to
exactly what the configuration says removes the override: the user follows the
configuration again.

Runtime changes live in DATA/features.db (SQLite, WAL, ``synchronous=FULL``: a user who
switched DND on expects it to survive a power cut, and codes are dialled rarely, so the
fsync per change costs nothing that matters). One transaction per change, committed
before the in-memory view changes, so a lookup (once per call) touches no disk and
never sees a change that a crash could undo.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

from firmware.storage import connect, migrate

from .dialplan import (
    NO_ANSWER_DEFAULT_S,
    NO_ANSWER_MAX_S,
    NO_ANSWER_MIN_S,
    Feature,
    FeatureMatch,
)

__all__ = ["DB_NAME", "FeatureError", "FeatureState", "FeatureStore", "Outcome"]

log = logging.getLogger(__name__)

DB_NAME: Final = "features.db"

MIGRATIONS: Final[list[str]] = [
    # 1: one row per extension whose features were changed by a feature code. ``basis``
    # is what the configuration said for that user when the change was made (JSON).
    """
    CREATE TABLE overrides (
        extension TEXT PRIMARY KEY,
        forward_unconditional TEXT,
        forward_busy TEXT,
        forward_no_answer TEXT,
        no_answer_s INTEGER NOT NULL CHECK (no_answer_s BETWEEN 5 AND 120),
        dnd INTEGER NOT NULL CHECK (dnd IN (0, 1)),
        basis TEXT NOT NULL,
        changed_at REAL NOT NULL
    ) WITHOUT ROWID
    """,
]


class FeatureError(RuntimeError):
    """A change could not be stored; nothing was changed."""


@dataclass(frozen=True, slots=True)
class FeatureState:
    """What happens to calls for one extension. Targets are extension numbers."""

    forward_unconditional: str | None = None
    forward_busy: str | None = None
    forward_no_answer: str | None = None
    no_answer_s: int = NO_ANSWER_DEFAULT_S
    dnd: bool = False

    @classmethod
    def from_config(cls, user: Mapping[str, Any]) -> FeatureState:
        """The defaults of one ``users[]`` entry (as the config store returns it)."""
        forward = user.get("forward") or {}
        seconds = forward.get("no_answer_s", NO_ANSWER_DEFAULT_S)
        return cls(
            forward_unconditional=_opt_str(forward.get("unconditional")),
            forward_busy=_opt_str(forward.get("busy")),
            forward_no_answer=_opt_str(forward.get("no_answer")),
            no_answer_s=seconds if isinstance(seconds, int) else NO_ANSWER_DEFAULT_S,
            dnd=user.get("dnd") is True,
        )

    def key(self) -> str:
        """A canonical text form (the ``basis`` column)."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


DEFAULT: Final = FeatureState()


@dataclass(frozen=True)
class Outcome:
    """The answer to a feature code: ``ok`` (confirmation tone) and why, for the log."""

    ok: bool
    text: str
    state: FeatureState


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class FeatureStore:
    """Feature state by extension: config defaults, runtime overrides on disk.

    ``path`` None keeps overrides in memory only (tests, tools). Safe to share between
    threads: writes are serialized by a lock, reads take a snapshot of a dict.
    """

    def __init__(self, path: Path | str | None, *, clock: Callable[[], float] = time.time) -> None:
        self.path = None if path is None else Path(path)
        self.clock = clock
        self.lock = threading.RLock()
        self._config: dict[str, FeatureState] = {}
        self._overrides: dict[str, tuple[FeatureState, str]] = {}  # ext -> (state, basis)
        self.db = self._connect()
        try:
            self._load()
        except BaseException:
            self.db.close()
            raise

    @classmethod
    def open(cls, data_dir: Path | str) -> FeatureStore:
        """The feature store of the data directory (DATA/features.db)."""
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls(data_dir / DB_NAME)

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------

    def state(self, extension: str) -> FeatureState:
        """The features in force for ``extension`` (defaults for unknown extensions)."""
        override = self._overrides.get(extension)
        if override is not None:
            return override[0]
        return self._config.get(extension, DEFAULT)

    def overridden(self, extension: str) -> bool:
        """True while a feature-code change outranks the configuration for ``extension``."""
        return extension in self._overrides

    # -- configuration ------------------------------------------------------------------------

    def configure(self, users: Iterable[Mapping[str, Any]]) -> set[str]:
        """Take the configuration's users; drop the overrides the rule says are stale
        (user gone, or its forward/dnd values changed). Returns those extensions."""
        config: dict[str, FeatureState] = {}
        for user in users:
            extension = user.get("extension")
            if isinstance(extension, str):
                config[extension] = FeatureState.from_config(user)
        with self.lock:
            stale = {
                ext
                for ext, (_state, basis) in self._overrides.items()
                if ext not in config or config[ext].key() != basis
            }
            self._config = config  # the new defaults hold even if the drop below fails
            if stale:
                with self._transaction() as db:
                    db.executemany(
                        "DELETE FROM overrides WHERE extension = ?", [(e,) for e in sorted(stale)]
                    )
                log.info(
                    "feature-code changes replaced by the configuration",
                    extra={"extensions": ",".join(sorted(stale))},
                )
            self._overrides = {e: o for e, o in self._overrides.items() if e not in stale}
        return stale

    # -- changing -----------------------------------------------------------------------------

    def set(self, extension: str, state: FeatureState) -> None:
        """Make ``state`` the features of ``extension`` now (one transaction)."""
        with self.lock:
            basis = self._config.get(extension, DEFAULT)
            with self._transaction() as db:
                if state == basis:
                    db.execute("DELETE FROM overrides WHERE extension = ?", (extension,))
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO overrides VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            extension,
                            state.forward_unconditional,
                            state.forward_busy,
                            state.forward_no_answer,
                            state.no_answer_s,
                            int(state.dnd),
                            basis.key(),
                            self.clock(),
                        ),
                    )
            overrides = dict(self._overrides)
            if state == basis:
                overrides.pop(extension, None)
            else:
                overrides[extension] = (state, basis.key())
            self._overrides = overrides

    def apply(self, extension: str, code: FeatureMatch, known: Container[str]) -> Outcome:
        """A feature code dialled by ``extension`` itself (the caller authenticated as it).

        Forward targets must be ``known`` extensions other than the caller's own; the
        no-answer time must be 5-120 s. A refused code changes nothing.
        """
        current = self.state(extension)
        if extension not in self._config:
            return Outcome(False, f"{extension} is not a configured extension", current)
        feature = code.feature
        new: FeatureState
        if feature in _FORWARDS:
            target = code.target
            if target is None or target not in known:
                return Outcome(False, f"no extension {target!r} to forward to", current)
            if target == extension:
                return Outcome(False, "an extension cannot forward to itself", current)
            if feature is Feature.FORWARD_UNCONDITIONAL:
                new = replace(current, forward_unconditional=target)
            elif feature is Feature.FORWARD_BUSY:
                new = replace(current, forward_busy=target)
            else:
                seconds = NO_ANSWER_DEFAULT_S if code.seconds is None else code.seconds
                if not NO_ANSWER_MIN_S <= seconds <= NO_ANSWER_MAX_S:
                    return Outcome(
                        False,
                        f"no-answer time {seconds} s is outside "
                        f"{NO_ANSWER_MIN_S}-{NO_ANSWER_MAX_S} s",
                        current,
                    )
                new = replace(current, forward_no_answer=target, no_answer_s=seconds)
        elif feature is Feature.FORWARD_UNCONDITIONAL_OFF:
            new = replace(current, forward_unconditional=None)
        elif feature is Feature.FORWARD_BUSY_OFF:
            new = replace(current, forward_busy=None)
        elif feature is Feature.FORWARD_NO_ANSWER_OFF:
            new = replace(current, forward_no_answer=None)
        else:
            new = replace(current, dnd=feature is Feature.DND_ON)
        try:
            self.set(extension, new)
        except FeatureError as exc:
            log.error(
                "feature change not stored", extra={"extension": extension, "error": str(exc)}
            )
            return Outcome(False, "could not store the change", current)
        log.info(
            "feature code",
            extra={"extension": extension, "feature": feature.value, "target": code.target},
        )
        return Outcome(True, _describe(feature, new), new)

    # -- storage ------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        target = ":memory:" if self.path is None else str(self.path)
        try:
            db = connect(target, synchronous="FULL", foreign_keys=False)
        except sqlite3.DatabaseError as exc:
            return self._corrupt(exc)
        try:
            migrate(db, MIGRATIONS)
        except sqlite3.DatabaseError as exc:
            db.close()
            return self._corrupt(exc)
        except BaseException:
            db.close()
            raise
        return db

    def _corrupt(self, exc: sqlite3.DatabaseError) -> sqlite3.Connection:
        """An unreadable features.db is set aside, not fatal: calls must keep flowing, and
        every user falls back to the configuration's features."""
        if isinstance(exc, sqlite3.OperationalError) or self.path is None:
            raise exc  # locked, read-only, disk full: not ours to throw away
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        for suffix in ("", "-wal", "-shm"):
            old = Path(f"{self.path}{suffix}")
            if old.exists():
                old.rename(f"{self.path}.corrupt-{stamp}{suffix}")
        log.error("features database unreadable, starting empty", extra={"error": str(exc)})
        return self._connect()

    def _load(self) -> None:
        rows = self.db.execute(
            "SELECT extension, forward_unconditional, forward_busy, forward_no_answer,"
            " no_answer_s, dnd, basis FROM overrides"
        ).fetchall()
        overrides: dict[str, tuple[FeatureState, str]] = {}
        for ext, unconditional, busy, no_answer, seconds, dnd, basis in rows:
            state = FeatureState(unconditional, busy, no_answer, int(seconds), bool(dnd))
            overrides[str(ext)] = (state, str(basis))
        self._overrides = overrides

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE .. COMMIT; on any error nothing is written (FeatureError)."""
        with self.lock:
            db = self.db
            try:
                db.execute("BEGIN IMMEDIATE")
                yield db
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise FeatureError(f"features database: {exc}") from exc
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise


_FORWARDS: Final = frozenset(
    {Feature.FORWARD_UNCONDITIONAL, Feature.FORWARD_BUSY, Feature.FORWARD_NO_ANSWER}
)


def _describe(feature: Feature, state: FeatureState) -> str:
    if feature is Feature.FORWARD_UNCONDITIONAL:
        return f"all calls forwarded to {state.forward_unconditional}"
    if feature is Feature.FORWARD_BUSY:
        return f"calls forwarded to {state.forward_busy} when busy"
    if feature is Feature.FORWARD_NO_ANSWER:
        return f"calls forwarded to {state.forward_no_answer} after {state.no_answer_s} s"
    return {
        Feature.FORWARD_UNCONDITIONAL_OFF: "unconditional forwarding off",
        Feature.FORWARD_BUSY_OFF: "forwarding on busy off",
        Feature.FORWARD_NO_ANSWER_OFF: "forwarding on no answer off",
        Feature.DND_ON: "do not disturb on",
        Feature.DND_OFF: "do not disturb off",
    }[feature]
