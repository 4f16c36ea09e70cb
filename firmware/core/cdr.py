"""Call detail records: one durable row per call, in its own SQLite file (DATA/cdr.db).

Why a row exists from the first moment: a call is inserted when it starts, stamped when
answered and closed when it ends, each step one short transaction. With WAL and
synchronous=FULL a step that returned is on disk, so a kill -9 or power cut never loses a
call the box has seen -- at worst it leaves a call without an end, which `recover()`
closes at the next start. CDRs live apart from config.db so that heavy call logging and
exports never contend with configuration writes, and so the two can be backed up, rotated
and wiped independently.

Times come from an injected clock (epoch seconds, UTC) and are stored twice: as epoch
seconds for arithmetic and indexes, and as ISO 8601 text for people reading the database.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, TextIO, TypeVar

from firmware.storage import connect, migrate

from .causes import cause_name

__all__ = [
    "DB_NAME",
    "MIGRATIONS",
    "RECOVERED_CAUSE",
    "CallRecord",
    "CdrError",
    "CdrStore",
    "Direction",
    "Disposition",
    "HangupBy",
    "Tech",
    "disposition_for",
]

DB_NAME: Final = "cdr.db"
RECOVERED_CAUSE: Final = 41  # Q.850 temporary failure: the box, not a party, ended the call

Clock = Callable[[], float]
Timestamp = float | int | datetime


class Direction(StrEnum):
    INTERNAL = "internal"  # extension to extension, never leaving the box
    INBOUND = "inbound"  # from a trunk/line to the site
    OUTBOUND = "outbound"  # from the site to a trunk/line


class Tech(StrEnum):
    SIP = "sip"
    FXS = "fxs"
    FXO = "fxo"
    ISDN = "isdn"
    DECT = "dect"


class Disposition(StrEnum):
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"
    CANCELLED = "cancelled"  # the caller gave up before an answer


class HangupBy(StrEnum):
    CALLER = "caller"
    CALLEE = "callee"
    BOX = "box"  # timeouts, policy, faults, recovery after a crash


class CdrError(ValueError):
    """Bad input to the CDR store, or a step that does not fit the call's state.

    Raised before anything is written: the database is unchanged.
    """


MIGRATIONS: list[str] = [
    # 1: calls, and the runs of the firmware that wrote them (for crash recovery).
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        started_at TEXT NOT NULL,
        started_epoch REAL NOT NULL,
        last_seen_epoch REAL NOT NULL
    );
    CREATE TABLE calls (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        call_id TEXT NOT NULL UNIQUE,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        direction TEXT NOT NULL CHECK (direction IN ('internal', 'inbound', 'outbound')),
        caller_number TEXT NOT NULL,
        caller_name TEXT,
        callee_dialled TEXT NOT NULL,
        callee_reached TEXT,
        caller_tech TEXT NOT NULL CHECK (caller_tech IN ('sip', 'fxs', 'fxo', 'isdn', 'dect')),
        callee_tech TEXT CHECK (callee_tech IN ('sip', 'fxs', 'fxo', 'isdn', 'dect')),
        start_at TEXT NOT NULL,
        start_epoch REAL NOT NULL,
        answer_at TEXT,
        answer_epoch REAL,
        end_at TEXT,
        end_epoch REAL,
        disposition TEXT
            CHECK (disposition IN ('answered', 'busy', 'no-answer', 'failed', 'cancelled')),
        hangup_by TEXT CHECK (hangup_by IN ('caller', 'callee', 'box')),
        q850_cause INTEGER CHECK (q850_cause BETWEEN 0 AND 127),
        sip_status INTEGER CHECK (sip_status BETWEEN 100 AND 699),
        extra TEXT NOT NULL DEFAULT '{}',
        CHECK ((end_epoch IS NULL) = (disposition IS NULL)),
        CHECK ((end_epoch IS NULL) = (hangup_by IS NULL))
    );
    CREATE INDEX calls_by_start ON calls(start_epoch);
    CREATE INDEX calls_open ON calls(run_id) WHERE end_epoch IS NULL;
    CREATE INDEX calls_by_caller ON calls(caller_number, start_epoch);
    CREATE INDEX calls_by_dialled ON calls(callee_dialled, start_epoch);
    CREATE INDEX calls_by_reached ON calls(callee_reached, start_epoch)
    """,
]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call as recorded. Times are epoch seconds (UTC); `*_iso` give ISO 8601 text."""

    call_id: str
    direction: Direction
    caller_number: str
    caller_name: str | None
    callee_dialled: str
    callee_reached: str | None
    caller_tech: Tech
    callee_tech: Tech | None
    start: float
    answer: float | None
    end: float | None
    disposition: Disposition | None
    hangup_by: HangupBy | None
    cause: int | None
    sip_status: int | None
    extra: dict[str, Any]

    @property
    def in_progress(self) -> bool:
        return self.end is None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (ringing included); None while in progress."""
        return None if self.end is None else round(self.end - self.start, 3)

    @property
    def billsec(self) -> float | None:
        """Seconds from answer to end (what is billed); 0 if never answered."""
        if self.end is None:
            return None
        return 0.0 if self.answer is None else round(self.end - self.answer, 3)

    @property
    def start_iso(self) -> str:
        return _iso(self.start)

    @property
    def answer_iso(self) -> str | None:
        return None if self.answer is None else _iso(self.answer)

    @property
    def end_iso(self) -> str | None:
        return None if self.end is None else _iso(self.end)


def disposition_for(cause: int | None, *, answered: bool, hangup_by: HangupBy | str) -> Disposition:
    """The disposition a call ending with `cause` gets, for callers that only know the cause.

    Answered calls are 'answered'; otherwise 17 is busy, 18/19 no-answer, a caller who
    hangs up with a normal cause (or none) cancelled, anything else failed.
    """
    if answered:
        return Disposition.ANSWERED
    if cause == 17:
        return Disposition.BUSY
    if cause in (18, 19):
        return Disposition.NO_ANSWER
    if _enum(HangupBy, "hangup_by", hangup_by) is HangupBy.CALLER and cause in (None, 16, 31):
        return Disposition.CANCELLED
    return Disposition.FAILED


# -- validation ----------------------------------------------------------------------------

_E = TypeVar("_E", bound=StrEnum)
_MAX_ID, _MAX_NUMBER, _MAX_NAME, _MAX_EXTRA = 128, 64, 200, 64 * 1024


def _text(field: str, value: object, limit: int, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise CdrError(f"{field} must be text, not {type(value).__name__}")
    if not empty and not value:
        raise CdrError(f"{field} must not be empty")
    if len(value) > limit:
        raise CdrError(f"{field} is {len(value)} characters long; at most {limit} allowed")
    if not value.isprintable():
        raise CdrError(f"{field} contains control characters: {value!r}")
    return value


def _opt_text(field: str, value: object, limit: int) -> str | None:
    return None if value is None else _text(field, value, limit)


def _enum(kind: type[_E], field: str, value: object) -> _E:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return kind(value)
    allowed = ", ".join(m.value for m in kind)
    raise CdrError(f"{field} {value!r} is not one of: {allowed}")


def _epoch(field: str, value: object) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise CdrError(f"{field} {value!r} has no time zone; give UTC (aware) datetimes")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CdrError(f"{field} must be epoch seconds or a datetime, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise CdrError(f"{field} {value!r} is not a valid epoch time")
    return float(value)


def _int_in(field: str, value: object, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CdrError(f"{field} must be an integer in {low}..{high}, not {value!r}")
    return value


def _extra(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise CdrError("extra must be a mapping with text keys")
    data = dict(value)
    try:
        text = json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CdrError(f"extra is not JSON-serializable: {exc}") from None
    if len(text) > _MAX_EXTRA:
        raise CdrError(f"extra is {len(text)} bytes of JSON; at most {_MAX_EXTRA} allowed")
    return data


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


_COLUMNS: Final = (
    "call_id, direction, caller_number, caller_name, callee_dialled, callee_reached, "
    "caller_tech, callee_tech, start_epoch, answer_epoch, end_epoch, disposition, "
    "hangup_by, q850_cause, sip_status, extra"
)


def _record(row: tuple[Any, ...]) -> CallRecord:
    return CallRecord(
        call_id=row[0],
        direction=Direction(row[1]),
        caller_number=row[2],
        caller_name=row[3],
        callee_dialled=row[4],
        callee_reached=row[5],
        caller_tech=Tech(row[6]),
        callee_tech=None if row[7] is None else Tech(row[7]),
        start=row[8],
        answer=row[9],
        end=row[10],
        disposition=None if row[11] is None else Disposition(row[11]),
        hangup_by=None if row[12] is None else HangupBy(row[12]),
        cause=row[13],
        sip_status=row[14],
        extra=json.loads(row[15]),
    )


# -- the store -----------------------------------------------------------------------------


class CdrStore:
    """The CDR database. One instance per process; every use of its connection is locked.

    Each open registers a *run* (one life of the firmware) whose last-seen time every write
    and `heartbeat()` advance; that is how `recover()` dates the end of calls a crash cut.
    """

    def __init__(self, path: Path, *, clock: Clock = time.time) -> None:
        self.path = path
        self._clock = clock
        # One connection shared by the event loop and worker threads; the lock makes each
        # transaction (and rowcount/lastrowid) belong to one caller.
        self.lock = threading.RLock()
        self._batching = False
        self.db = connect(path, synchronous="FULL")
        try:
            migrate(self.db, MIGRATIONS)
            now = self._now()
            with self._transaction(touch=False) as db:
                cur = db.execute(
                    "INSERT INTO runs (started_at, started_epoch, last_seen_epoch) VALUES (?, ?, ?)",
                    (_iso(now), now, now),
                )
                self.run_id = int(cur.lastrowid or 0)
        except BaseException:
            self.db.close()
            raise

    @classmethod
    def open(cls, data_dir: Path | str, *, clock: Clock = time.time) -> CdrStore:
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls(data_dir / DB_NAME, clock=clock)

    def close(self) -> None:
        """Record a last sign of life, then close. End the live calls before closing."""
        with self.lock:
            with contextlib.suppress(sqlite3.Error):
                self.heartbeat()
            self.db.close()

    def __enter__(self) -> CdrStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------

    def _now(self) -> float:
        return _epoch("clock", self._clock())

    @contextlib.contextmanager
    def _transaction(self, *, touch: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE .. COMMIT under the lock; any exception rolls back (nothing written).

        `touch` advances this run's last-seen time in the same commit (no extra fsync).
        Inside `batch` a step is a SAVEPOINT instead: a step that fails rolls back alone,
        and the batch's single COMMIT makes all the others durable at once.
        """
        with self.lock:
            db = self.db
            if self._batching:
                db.execute("SAVEPOINT step")
                try:
                    yield db
                    db.execute("RELEASE step")
                except BaseException:
                    db.execute("ROLLBACK TO step")
                    db.execute("RELEASE step")
                    raise
                return
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                if touch:
                    db.execute(
                        "UPDATE runs SET last_seen_epoch = max(last_seen_epoch, ?) WHERE id = ?",
                        (self._now(), self.run_id),
                    )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # a failed COMMIT may already have rolled back
                    db.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group commit: every step (start/answer/end/...) made inside is one SAVEPOINT
        of a single transaction, committed (one fsync) when the block exits.

        A step that raises (CdrError, say) is undone alone and the exception goes to its
        caller as usual; the others still commit. An exception escaping the block rolls
        the whole batch back. Not re-entrant. Holds the store's lock throughout.
        """
        with self.lock:
            if self._batching:
                raise RuntimeError("CDR batches do not nest")
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            self._batching = True
            try:
                yield
                self._batching = False
                db.execute(
                    "UPDATE runs SET last_seen_epoch = max(last_seen_epoch, ?) WHERE id = ?",
                    (self._now(), self.run_id),
                )
                db.execute("COMMIT")
            except BaseException:
                self._batching = False
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _stamp(self, field: str, at: Timestamp | None, earliest: float) -> float:
        """The time of a step: explicit times must not precede the call's previous step;
        clock times are clamped to it (a clock stepped back by NTP must not give a
        negative duration)."""
        if at is None:
            return max(self._now(), earliest)
        value = _epoch(field, at)
        if value < earliest:
            raise CdrError(
                f"{field} {_iso(value)} is before the call's previous step {_iso(earliest)}"
            )
        return value

    def _load(self, db: sqlite3.Connection, call_id: str) -> CallRecord:
        row = db.execute(f"SELECT {_COLUMNS} FROM calls WHERE call_id = ?", (call_id,)).fetchone()
        if row is None:
            raise CdrError(f"no call with id {call_id!r}")
        return _record(row)

    # -- writing --------------------------------------------------------------------------

    def start(
        self,
        call_id: str,
        *,
        direction: Direction | str,
        caller_number: str,
        callee_dialled: str,
        caller_tech: Tech | str,
        caller_name: str | None = None,
        callee_tech: Tech | str | None = None,
        at: Timestamp | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> CallRecord:
        """Record a new call (in progress) the moment it starts, so that it exists durably.

        `callee_dialled` is the number as dialled; the number finally reached (after
        forwarding, hunting, queueing) is given to answer() or end().
        """
        record = CallRecord(
            call_id=_text("call_id", call_id, _MAX_ID, empty=False),
            direction=_enum(Direction, "direction", direction),
            caller_number=_text("caller_number", caller_number, _MAX_NUMBER),
            caller_name=_opt_text("caller_name", caller_name, _MAX_NAME),
            callee_dialled=_text("callee_dialled", callee_dialled, _MAX_NUMBER),
            callee_reached=None,
            caller_tech=_enum(Tech, "caller_tech", caller_tech),
            callee_tech=None if callee_tech is None else _enum(Tech, "callee_tech", callee_tech),
            start=self._now() if at is None else _epoch("start time", at),
            answer=None,
            end=None,
            disposition=None,
            hangup_by=None,
            cause=None,
            sip_status=None,
            extra=_extra(extra),
        )
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO calls (call_id, run_id, direction, caller_number, caller_name, "
                    "callee_dialled, caller_tech, callee_tech, start_at, start_epoch, extra) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.call_id,
                        self.run_id,
                        record.direction.value,
                        record.caller_number,
                        record.caller_name,
                        record.callee_dialled,
                        record.caller_tech.value,
                        None if record.callee_tech is None else record.callee_tech.value,
                        record.start_iso,
                        record.start,
                        _dumps(record.extra),
                    ),
                )
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise CdrError(f"call id {call_id!r} is already recorded") from None
            raise
        return record

    def record_call(
        self,
        call_id: str,
        *,
        direction: Direction | str,
        caller_number: str,
        callee_dialled: str,
        caller_tech: Tech | str,
        start: Timestamp,
        end: Timestamp,
        disposition: Disposition | str,
        hangup_by: HangupBy | str,
        answer: Timestamp | None = None,
        caller_name: str | None = None,
        callee_tech: Tech | str | None = None,
        callee_reached: str | None = None,
        cause: int | None = None,
        status: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> CallRecord:
        """A whole call that has already ended, in one INSERT: what `start`, `answer` and
        `end` would have written, with the same checks (a call shorter than the CDR
        writer's delay is recorded this way: one row write instead of three)."""
        begin = _epoch("start time", start)
        answered = None if answer is None else _epoch("answer time", answer)
        finish = _epoch("end time", end)
        if answered is not None and answered < begin:
            raise CdrError(f"answer time {_iso(answered)} is before the start {_iso(begin)}")
        if finish < (begin if answered is None else answered):
            raise CdrError(f"end time {_iso(finish)} is before the call's previous step")
        disp = _enum(Disposition, "disposition", disposition)
        if answered is not None and disp not in (Disposition.ANSWERED, Disposition.FAILED):
            raise CdrError(
                f"call {call_id!r} was answered; its disposition must be answered or failed"
            )
        if answered is None and disp is Disposition.ANSWERED:
            raise CdrError(f"call {call_id!r} was never answered; disposition cannot be answered")
        record = CallRecord(
            call_id=_text("call_id", call_id, _MAX_ID, empty=False),
            direction=_enum(Direction, "direction", direction),
            caller_number=_text("caller_number", caller_number, _MAX_NUMBER),
            caller_name=_opt_text("caller_name", caller_name, _MAX_NAME),
            callee_dialled=_text("callee_dialled", callee_dialled, _MAX_NUMBER),
            callee_reached=_opt_text("callee_reached", callee_reached, _MAX_NUMBER),
            caller_tech=_enum(Tech, "caller_tech", caller_tech),
            callee_tech=None if callee_tech is None else _enum(Tech, "callee_tech", callee_tech),
            start=begin,
            answer=answered,
            end=finish,
            disposition=disp,
            hangup_by=_enum(HangupBy, "hangup_by", hangup_by),
            cause=_int_in("cause", cause, 0, 127),
            sip_status=_int_in("status", status, 100, 699),
            extra=_extra(extra),
        )
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO calls (call_id, run_id, direction, caller_number, caller_name, "
                    "callee_dialled, callee_reached, caller_tech, callee_tech, start_at, "
                    "start_epoch, answer_at, answer_epoch, end_at, end_epoch, disposition, "
                    "hangup_by, q850_cause, sip_status, extra) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.call_id,
                        self.run_id,
                        record.direction.value,
                        record.caller_number,
                        record.caller_name,
                        record.callee_dialled,
                        record.callee_reached,
                        record.caller_tech.value,
                        None if record.callee_tech is None else record.callee_tech.value,
                        record.start_iso,
                        record.start,
                        record.answer_iso,
                        record.answer,
                        record.end_iso,
                        record.end,
                        disp.value,
                        record.hangup_by.value if record.hangup_by else None,
                        record.cause,
                        record.sip_status,
                        _dumps(record.extra),
                    ),
                )
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise CdrError(f"call id {call_id!r} is already recorded") from None
            raise
        return record

    def answer(
        self,
        call_id: str,
        at: Timestamp | None = None,
        *,
        callee_reached: str | None = None,
        callee_tech: Tech | str | None = None,
    ) -> CallRecord:
        """Stamp the answer time (billing starts here) and, if known now, who answered."""
        reached = _opt_text("callee_reached", callee_reached, _MAX_NUMBER)
        tech = None if callee_tech is None else _enum(Tech, "callee_tech", callee_tech)
        with self._transaction() as db:
            old = self._load(db, call_id)
            if old.end is not None:
                raise CdrError(f"call {call_id!r} has already ended")
            if old.answer is not None:
                raise CdrError(f"call {call_id!r} was already answered at {old.answer_iso}")
            new = dataclasses.replace(
                old,
                answer=self._stamp("answer time", at, old.start),
                callee_reached=reached or old.callee_reached,
                callee_tech=tech or old.callee_tech,
            )
            db.execute(
                "UPDATE calls SET answer_at = ?, answer_epoch = ?, callee_reached = ?, "
                "callee_tech = ? WHERE call_id = ?",
                (
                    new.answer_iso,
                    new.answer,
                    new.callee_reached,
                    None if new.callee_tech is None else new.callee_tech.value,
                    call_id,
                ),
            )
        return new

    def end(
        self,
        call_id: str,
        at: Timestamp | None = None,
        *,
        disposition: Disposition | str,
        hangup_by: HangupBy | str,
        cause: int | None = None,
        status: int | None = None,
        callee_reached: str | None = None,
        callee_tech: Tech | str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> CallRecord:
        """Close the call: when, how it went, who hung up, and the Q.850 cause / SIP status.

        An answered call ends 'answered' (or 'failed' if a fault cut it); an unanswered one
        cannot end 'answered'. `extra` is merged into the call's extra data.
        """
        disp = _enum(Disposition, "disposition", disposition)
        by = _enum(HangupBy, "hangup_by", hangup_by)
        q850 = _int_in("cause", cause, 0, 127)
        sip = _int_in("status", status, 100, 699)
        reached = _opt_text("callee_reached", callee_reached, _MAX_NUMBER)
        tech = None if callee_tech is None else _enum(Tech, "callee_tech", callee_tech)
        more = _extra(extra)
        with self._transaction() as db:
            old = self._load(db, call_id)
            if old.end is not None:
                raise CdrError(f"call {call_id!r} has already ended at {old.end_iso}")
            if old.answer is not None and disp not in (Disposition.ANSWERED, Disposition.FAILED):
                raise CdrError(
                    f"call {call_id!r} was answered; its disposition must be answered or failed"
                )
            if old.answer is None and disp is Disposition.ANSWERED:
                raise CdrError(
                    f"call {call_id!r} was never answered; disposition cannot be answered"
                )
            merged = _extra({**old.extra, **more})
            new = dataclasses.replace(
                old,
                end=self._stamp(
                    "end time", at, old.answer if old.answer is not None else old.start
                ),
                disposition=disp,
                hangup_by=by,
                cause=q850,
                sip_status=sip,
                callee_reached=reached or old.callee_reached,
                callee_tech=tech or old.callee_tech,
                extra=merged,
            )
            db.execute(
                "UPDATE calls SET end_at = ?, end_epoch = ?, disposition = ?, hangup_by = ?, "
                "q850_cause = ?, sip_status = ?, callee_reached = ?, callee_tech = ?, extra = ? "
                "WHERE call_id = ?",
                (
                    new.end_iso,
                    new.end,
                    disp.value,
                    by.value,
                    q850,
                    sip,
                    new.callee_reached,
                    None if new.callee_tech is None else new.callee_tech.value,
                    _dumps(merged),
                    call_id,
                ),
            )
        return new

    def update_extra(self, call_id: str, values: Mapping[str, Any]) -> CallRecord:
        """Merge `values` into a call's extra data, during or after the call.

        For figures that arrive late, e.g. media quality (packets, loss, jitter, MOS) that
        is final only once the RTP stream has closed.
        """
        more = _extra(values)
        with self._transaction() as db:
            old = self._load(db, call_id)
            merged = _extra({**old.extra, **more})
            db.execute("UPDATE calls SET extra = ? WHERE call_id = ?", (_dumps(merged), call_id))
        return dataclasses.replace(old, extra=merged)

    def heartbeat(self) -> None:
        """Note that the box is alive now. The daemon calls this every few seconds so that a
        crash in a quiet period still dates the cut calls closely (see recover())."""
        with self._transaction():
            pass

    def recover(self) -> list[str]:
        """Close the calls that earlier runs left without an end (the box died mid-call).

        Rule: such a call ends with disposition 'failed', hangup_by 'box', cause 41
        (temporary failure), no SIP status, extra["recovered"] = true, and end time = the
        last time its run was known alive -- the latest of that run's writes and heartbeats,
        and never before the call's own start or answer. Calls of the current run are never
        touched. The firmware calls this once at startup; no other process may (to a second
        process, the running firmware's live calls would look like an earlier run's).
        Returns the ids of the calls it closed.
        """
        with self._transaction() as db:
            rows = db.execute(
                "SELECT c.call_id, c.start_epoch, c.answer_epoch, r.last_seen_epoch, c.extra "
                "FROM calls c JOIN runs r ON r.id = c.run_id "
                "WHERE c.end_epoch IS NULL AND c.run_id != ? ORDER BY c.id",
                (self.run_id,),
            ).fetchall()
            for call_id, start, answer, last_seen, extra in rows:
                end = max(last_seen, start, answer if answer is not None else start)
                data = json.loads(extra)
                data["recovered"] = True
                db.execute(
                    "UPDATE calls SET end_at = ?, end_epoch = ?, disposition = 'failed', "
                    "hangup_by = 'box', q850_cause = ?, extra = ? WHERE call_id = ?",
                    (_iso(end), end, RECOVERED_CAUSE, _dumps(data), call_id),
                )
        return [row[0] for row in rows]

    # -- reading --------------------------------------------------------------------------

    def get(self, call_id: str) -> CallRecord | None:
        with self.lock:
            try:
                return self._load(self.db, call_id)
            except CdrError:
                return None

    def recent(self, limit: int = 50, offset: int = 0) -> list[CallRecord]:
        """The latest calls first (by start time): the web UI's call log, page by page."""
        _int_in("limit", limit, 1, 10_000)
        _int_in("offset", offset, 0, 2**62)
        with self.lock:
            rows = self.db.execute(
                f"SELECT {_COLUMNS} FROM calls ORDER BY start_epoch DESC, id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        return [_record(r) for r in rows]

    def in_progress(self) -> list[CallRecord]:
        """Calls that have started and not ended, oldest first."""
        with self.lock:
            rows = self.db.execute(
                f"SELECT {_COLUMNS} FROM calls WHERE end_epoch IS NULL ORDER BY id"
            ).fetchall()
        return [_record(r) for r in rows]

    def query(
        self,
        since: Timestamp | None = None,
        until: Timestamp | None = None,
        number: str | None = None,
        *,
        limit: int | None = None,
    ) -> list[CallRecord]:
        """Calls that started in [since, until), oldest first, optionally only those where
        `number` is the caller, the number dialled or the number reached (exact match)."""
        where, params = _window(since, until)
        if number is not None:
            _text("number", number, _MAX_NUMBER, empty=False)
            where.append("(caller_number = ? OR callee_dialled = ? OR callee_reached = ?)")
            params += [number, number, number]
        sql = f"SELECT {_COLUMNS} FROM calls"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY start_epoch, id"
        if limit is not None:
            _int_in("limit", limit, 1, 10_000_000)
            sql += " LIMIT ?"
            params.append(limit)
        with self.lock:
            rows = self.db.execute(sql, params).fetchall()
        return [_record(r) for r in rows]

    def export_csv(
        self, stream: TextIO, since: Timestamp | None = None, until: Timestamp | None = None
    ) -> int:
        """Write the calls that started in [since, until) as CSV (RFC 4180, header row);
        return the number of calls written.

        Calls still in progress are included with empty end fields, so an export never
        silently omits a call. Reads through a connection of its own (a WAL snapshot), so
        a long export does not hold the lock that live calls need to write their CDRs.
        Cells that a spreadsheet would run as a formula are neutralised.
        """
        where, params = _window(since, until)
        sql = f"SELECT {_COLUMNS} FROM calls"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY start_epoch, id"
        writer = csv.writer(stream)
        writer.writerow(CSV_FIELDS)
        count = 0
        reader = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        try:
            reader.execute("PRAGMA query_only=ON")
            reader.execute("BEGIN")  # one snapshot for the whole export
            for row in reader.execute(sql, params):
                writer.writerow(_csv_row(_record(row)))
                count += 1
            reader.execute("COMMIT")
        finally:
            reader.close()
        return count

    def integrity_ok(self) -> bool:
        with self.lock:
            ok = self.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            return ok and not self.db.execute("PRAGMA foreign_key_check").fetchall()


def _window(since: Timestamp | None, until: Timestamp | None) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if since is not None:
        where.append("start_epoch >= ?")
        params.append(_epoch("since", since))
    if until is not None:
        where.append("start_epoch < ?")
        params.append(_epoch("until", until))
    if len(params) == 2 and params[1] < params[0]:
        raise CdrError(f"until {_iso(params[1])} is before since {_iso(params[0])}")
    return where, params


CSV_FIELDS: Final = (
    "call_id",
    "direction",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "caller_number",
    "caller_name",
    "callee_dialled",
    "callee_reached",
    "caller_tech",
    "callee_tech",
    "disposition",
    "hangup_by",
    "q850_cause",
    "cause_name",
    "sip_status",
    "extra",
)

_PLAIN_NUMBER = re.compile(r"\+?[0-9*#]*")


def _cell(value: str | None, *, number: bool = False) -> str:
    """A text cell safe to open in a spreadsheet: a leading = + - @ (or tab/CR) would be run
    as a formula, so such cells get a leading apostrophe -- except plain numbers like
    +4533123456, which are data, not formulas."""
    if not value:
        return ""
    if number and _PLAIN_NUMBER.fullmatch(value):
        return value
    if value[0] in "=+-@\t\r":
        return "'" + value
    return value


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _csv_row(r: CallRecord) -> list[str]:
    return [
        _cell(r.call_id),
        r.direction.value,
        r.start_iso,
        r.answer_iso or "",
        r.end_iso or "",
        _seconds(r.duration),
        _seconds(r.billsec),
        _cell(r.caller_number, number=True),
        _cell(r.caller_name),
        _cell(r.callee_dialled, number=True),
        _cell(r.callee_reached, number=True),
        r.caller_tech.value,
        "" if r.callee_tech is None else r.callee_tech.value,
        "" if r.disposition is None else r.disposition.value,
        "" if r.hangup_by is None else r.hangup_by.value,
        "" if r.cause is None else str(r.cause),
        "" if r.cause is None else cause_name(r.cause),
        "" if r.sip_status is None else str(r.sip_status),
        _cell(_dumps(r.extra)) if r.extra else "",
    ]
