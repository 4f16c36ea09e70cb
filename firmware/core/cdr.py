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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from itertools import chain
from pathlib import Path
from typing import Any, Final, Literal, TextIO, TypeVar, cast

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
    "Op",
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


_ISO_SECONDS: dict[int, str] = {}  # whole epoch second -> "YYYY-MM-DDTHH:MM:SS", recent ones


def _iso(epoch: float) -> str:
    """ISO 8601 text in UTC with milliseconds, e.g. ``2024-05-01T08:00:00.123Z``.

    The text ``datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")``
    gives (microseconds rounded half-even, then milliseconds truncated), without a
    datetime per stamp: the date and time of day are formatted once per second.
    """
    frac, whole = math.modf(epoch)
    micros = round(frac * 1e6)
    second = int(whole)
    if micros >= 1_000_000:
        second += 1
        micros -= 1_000_000
    prefix = _ISO_SECONDS.get(second)
    if prefix is None:
        if len(_ISO_SECONDS) >= 256:
            _ISO_SECONDS.clear()
        prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _ISO_SECONDS[second] = prefix
    return f"{prefix}.{micros // 1000:03d}Z"


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


_MEMBERS: dict[type[StrEnum], dict[str, Any]] = {
    kind: {m.value: m for m in kind} for kind in (Direction, Tech, Disposition, HangupBy)
}
# The text stored for each value (plain str, also for an enum member given).
_DIRECTIONS: Final = {m.value: m.value for m in Direction}
_TECHS: Final = {m.value: m.value for m in Tech}
_DISPOSITIONS: Final = {m.value: m.value for m in Disposition}
_HANGUP_BYS: Final = {m.value: m.value for m in HangupBy}


def _enum(kind: type[_E], field: str, value: object) -> _E:
    try:
        return cast(_E, _MEMBERS[kind][value])  # type: ignore[index]
    except (KeyError, TypeError):  # TypeError: unhashable
        allowed = ", ".join(m.value for m in kind)
        raise CdrError(f"{field} {value!r} is not one of: {allowed}") from None


def _choice(table: dict[str, str], kind: type[StrEnum], field: str, value: object) -> str:
    """`value` checked against an enum's values, as the plain text stored."""
    try:
        return table[value]  # type: ignore[index]
    except (KeyError, TypeError):
        allowed = ", ".join(m.value for m in kind)
        raise CdrError(f"{field} {value!r} is not one of: {allowed}") from None


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


# One encoder for every write: json.dumps with these options would build one per call.
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _extra(value: object) -> dict[str, Any]:
    data = _extra_data(value)
    _extra_text(data)
    return data


def _extra_data(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise CdrError("extra must be a mapping with text keys")
    return dict(value)


def _extra_text(data: dict[str, Any]) -> str:
    """The JSON text stored for validated extra data (checked: serializable, size)."""
    try:
        text: str = _ENCODER.encode(data)
    except (TypeError, ValueError) as exc:
        raise CdrError(f"extra is not JSON-serializable: {exc}") from None
    if len(text) > _MAX_EXTRA:
        raise CdrError(f"extra is {len(text)} characters of JSON; at most {_MAX_EXTRA} allowed")
    return text


def _dumps(value: Mapping[str, Any]) -> str:
    return _ENCODER.encode(value)


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


# -- steps as tuples: the CDR writer's fast path -------------------------------------------
#
# The event loop hands the CDR writer plain tuples (the cheapest thing to build) and the
# writer applies a whole batch of them with `CdrStore.apply`: the same checks and rows as
# the methods named below, without a SAVEPOINT per step, and with whole calls and starts
# inserted many rows per statement. Fields are in the order of the table's columns.

CallOp = tuple[
    Literal["call"],
    str,  # call_id
    Direction | str,  # direction
    str,  # caller_number
    str | None,  # caller_name
    str,  # callee_dialled
    str | None,  # callee_reached
    Tech | str,  # caller_tech
    Tech | str | None,  # callee_tech
    Timestamp,  # start
    Timestamp | None,  # answer
    Timestamp,  # end
    Disposition | str,  # disposition
    HangupBy | str,  # hangup_by
    int | None,  # cause (Q.850)
    int | None,  # status (SIP)
    Mapping[str, Any] | None,  # extra
]
"""A call that has ended, as one row: what `CdrStore.record_call` writes."""

StartOp = tuple[
    Literal["start"],
    str,  # call_id
    Direction | str,  # direction
    str,  # caller_number
    str | None,  # caller_name
    str,  # callee_dialled
    Tech | str,  # caller_tech
    Tech | str | None,  # callee_tech
    Timestamp,  # at
    Mapping[str, Any] | None,  # extra
]
"""A call in progress: what `CdrStore.start` writes."""

AnswerOp = tuple[Literal["answer"], str, Timestamp]  # call_id, at: `CdrStore.answer`
EndOp = tuple[
    Literal["end"],
    str,  # call_id
    Timestamp,  # at
    Disposition | str,  # disposition
    HangupBy | str,  # hangup_by
    int | None,  # cause (Q.850)
    int | None,  # status (SIP)
    Mapping[str, Any] | None,  # extra, merged into the call's
]
"""The end of a call already written: what `CdrStore.end` writes."""

Op = CallOp | StartOp | AnswerOp | EndOp

_INSERT: Final = (
    "INSERT INTO calls (call_id, run_id, direction, caller_number, caller_name, "
    "callee_dialled, callee_reached, caller_tech, callee_tech, start_at, start_epoch, "
    "answer_at, answer_epoch, end_at, end_epoch, disposition, hangup_by, q850_cause, "
    "sip_status, extra) SELECT * FROM (VALUES {}) WHERE column1 IS NOT NULL"
)
_INSERT_WIDTH: Final = 20  # values per row
_INSERT_ROWS: Final = 256  # most rows in one INSERT (a power of two)
_insert_sql: dict[int, str] = {}
_NULLS: Final[list[None]] = [None] * (_INSERT_ROWS * _INSERT_WIDTH)


def _insert_rows_sql(slots: int) -> str:
    """INSERT of up to `slots` rows (a power of two): the rows' values, then rows of NULLs
    up to `slots` (skipped). So a batch of any size is one statement, of few shapes,
    all of them in the connection's cache of prepared statements."""
    sql = _insert_sql.get(slots)
    if sql is None:
        one = "(" + ", ".join("?" * _INSERT_WIDTH) + ")"
        sql = _insert_sql[slots] = _INSERT.format(", ".join([one] * slots))
    return sql


def _start_row(run_id: int, op: StartOp) -> tuple[Any, ...]:
    """The row `op` inserts, checked (CdrError)."""
    _, call_id, direction, number, name, dialled, caller_tech, callee_tech, at, extra = op
    call_id = _text("call_id", call_id, _MAX_ID, empty=False)
    direction = _choice(_DIRECTIONS, Direction, "direction", direction)
    number = _text("caller_number", number, _MAX_NUMBER)
    name = None if name is None else _text("caller_name", name, _MAX_NAME)
    dialled = _text("callee_dialled", dialled, _MAX_NUMBER)
    caller_tech = _choice(_TECHS, Tech, "caller_tech", caller_tech)
    if callee_tech is not None:
        callee_tech = _choice(_TECHS, Tech, "callee_tech", callee_tech)
    begin = _epoch("start time", at)
    return (
        call_id, run_id, direction, number, name, dialled, None, caller_tech, callee_tech,
        _iso(begin), begin, None, None, None, None, None, None, None, None,
        "{}" if extra is None else _extra_text(_extra_data(extra)),
    )  # fmt: skip


def _call_row(run_id: int, op: CallOp) -> tuple[Any, ...]:
    """The row `op` inserts, checked (CdrError)."""
    (
        _, call_id, direction, number, name, dialled, reached, caller_tech, callee_tech,
        start, answer, end, disposition, hangup_by, cause, status, extra,
    ) = op  # fmt: skip
    begin = _epoch("start time", start)
    answered = None if answer is None else _epoch("answer time", answer)
    finish = _epoch("end time", end)
    if answered is not None and answered < begin:
        raise CdrError(f"answer time {_iso(answered)} is before the start {_iso(begin)}")
    if finish < (begin if answered is None else answered):
        raise CdrError(f"end time {_iso(finish)} is before the call's previous step")
    disp = _choice(_DISPOSITIONS, Disposition, "disposition", disposition)
    if answered is not None and disp != "answered" and disp != "failed":
        raise CdrError(f"call {call_id!r} was answered; its disposition must be answered or failed")
    if answered is None and disp == "answered":
        raise CdrError(f"call {call_id!r} was never answered; disposition cannot be answered")
    call_id = _text("call_id", call_id, _MAX_ID, empty=False)
    direction = _choice(_DIRECTIONS, Direction, "direction", direction)
    number = _text("caller_number", number, _MAX_NUMBER)
    name = None if name is None else _text("caller_name", name, _MAX_NAME)
    dialled = _text("callee_dialled", dialled, _MAX_NUMBER)
    reached = None if reached is None else _text("callee_reached", reached, _MAX_NUMBER)
    caller_tech = _choice(_TECHS, Tech, "caller_tech", caller_tech)
    if callee_tech is not None:
        callee_tech = _choice(_TECHS, Tech, "callee_tech", callee_tech)
    return (
        call_id, run_id, direction, number, name, dialled, reached, caller_tech, callee_tech,
        _iso(begin), begin, None if answered is None else _iso(answered), answered,
        _iso(finish), finish, disp, _choice(_HANGUP_BYS, HangupBy, "hangup_by", hangup_by),
        _int_in("cause", cause, 0, 127), _int_in("status", status, 100, 699),
        "{}" if extra is None else _extra_text(_extra_data(extra)),
    )  # fmt: skip


def _inserted(row: tuple[Any, ...]) -> CallRecord:
    """The record of a row as `_start_row` / `_call_row` build it."""
    return _record(
        (row[0], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[10], row[12],
         row[14], row[15], row[16], row[17], row[18], row[19])
    )  # fmt: skip


def _refused_insert(call_id: object, exc: sqlite3.IntegrityError) -> CdrError:
    if "UNIQUE" in str(exc):
        return CdrError(f"call id {call_id!r} is already recorded")
    return CdrError(f"call {call_id!r} refused by the database: {exc}")


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
        # rows per INSERT of `apply`: a power of two the connection's variable limit allows
        width = max(1, self.db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // _INSERT_WIDTH)
        self._insert_rows = 1 << (min(_INSERT_ROWS, width).bit_length() - 1)
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

    def apply(self, ops: Iterable[Op]) -> list[tuple[Op, CdrError]]:
        """Write steps given as tuples (`Op`) inside `batch`: the CDR writer's fast path.

        Each step gets the checks of its method (`record_call`, `start`, `answer`, `end`)
        and writes what that method would, but none needs a SAVEPOINT: a step checks
        before it writes and writes with one statement, so a refused step changes
        nothing. Whole calls and starts are inserted up to `_INSERT_ROWS` rows per
        statement, in order; an answer or end is written after the pending inserts if
        its call is among them. Returns the steps refused (with why); the others are
        part of the batch's transaction, durable once it commits. A database error
        other than a constraint (disk, I/O) propagates: the batch rolls back.
        """
        with self.lock:
            if not self._batching:
                raise RuntimeError("CdrStore.apply runs inside batch()")
            db, run_id = self.db, self.run_id
            refused: list[tuple[Op, CdrError]] = []
            rows: list[tuple[Any, ...]] = []
            inserting: list[Op] = []
            pending: set[str] = set()  # call ids of `rows`
            for op in ops:
                try:
                    kind = op[0]
                    if kind == "call":
                        rows.append(_call_row(run_id, op))  # type: ignore[arg-type]
                    elif kind == "start":
                        rows.append(_start_row(run_id, op))  # type: ignore[arg-type]
                    else:
                        if op[1] in pending:  # its row first
                            self._insert(rows, inserting, refused)
                            rows, inserting = [], []
                            pending.clear()
                        if kind == "answer":
                            self._apply_answer(db, op)  # type: ignore[arg-type]
                        elif kind == "end":
                            self._apply_end(db, op)  # type: ignore[arg-type]
                        else:
                            raise CdrError(f"no such CDR step: {kind!r}")
                        continue
                except CdrError as exc:
                    refused.append((op, exc))
                    continue
                except sqlite3.IntegrityError as exc:  # a CHECK: the statement wrote nothing
                    refused.append((op, CdrError(f"refused by the database: {exc}")))
                    continue
                except (TypeError, ValueError, IndexError) as exc:  # not an Op
                    refused.append((op, CdrError(f"malformed CDR step: {exc!r}")))
                    continue
                inserting.append(op)
                pending.add(op[1])
            if rows:
                self._insert(rows, inserting, refused)
            return refused

    def _insert(
        self, rows: list[tuple[Any, ...]], ops: list[Op], refused: list[tuple[Op, CdrError]]
    ) -> None:
        """INSERT `rows` (checked), many per statement; a row the database refuses (a call
        id already recorded) is reported in `refused` and the others are still written."""
        db = self.db
        done, count = 0, len(rows)
        while done < count:
            size = min(self._insert_rows, count - done)
            slots = 1 << (size - 1).bit_length()
            chunk = rows[done : done + size]
            values = list(chain.from_iterable(chunk))
            values += _NULLS[: (slots - size) * _INSERT_WIDTH]
            try:
                db.execute(_insert_rows_sql(slots), values)
            except sqlite3.IntegrityError:  # the statement wrote nothing: row by row
                for row, op in zip(chunk, ops[done : done + size], strict=True):
                    try:
                        db.execute(_insert_rows_sql(1), row)
                    except sqlite3.IntegrityError as exc:
                        refused.append((op, _refused_insert(row[0], exc)))
            done += size

    def _apply_answer(self, db: sqlite3.Connection, op: AnswerOp) -> None:
        _, call_id, at = op
        when = _epoch("answer time", at)
        cur = db.execute(
            "UPDATE calls SET answer_at = ?, answer_epoch = ? WHERE call_id = ? "
            "AND answer_epoch IS NULL AND end_epoch IS NULL AND start_epoch <= ?",
            (_iso(when), when, call_id, when),
        )
        if cur.rowcount != 1:  # say why, as answer() would
            old = self._load(db, call_id)
            if old.end is not None:
                raise CdrError(f"call {call_id!r} has already ended")
            if old.answer is not None:
                raise CdrError(f"call {call_id!r} was already answered at {old.answer_iso}")
            self._stamp("answer time", when, old.start)
            raise CdrError(f"the answer of call {call_id!r} was not written")

    def _apply_end(self, db: sqlite3.Connection, op: EndOp) -> None:
        _, call_id, at, disposition, hangup_by, cause, status, extra = op
        disp = _choice(_DISPOSITIONS, Disposition, "disposition", disposition)
        by = _choice(_HANGUP_BYS, HangupBy, "hangup_by", hangup_by)
        q850 = _int_in("cause", cause, 0, 127)
        sip = _int_in("status", status, 100, 699)
        more = _extra_data(extra)
        when = _epoch("end time", at)
        row = db.execute(
            "SELECT start_epoch, answer_epoch, end_epoch, extra FROM calls WHERE call_id = ?",
            (call_id,),
        ).fetchone()
        if row is None:
            raise CdrError(f"no call with id {call_id!r}")
        start, answer, end, old_extra = row
        if end is not None:
            raise CdrError(f"call {call_id!r} has already ended at {_iso(end)}")
        if answer is not None and disp != "answered" and disp != "failed":
            raise CdrError(
                f"call {call_id!r} was answered; its disposition must be answered or failed"
            )
        if answer is None and disp == "answered":
            raise CdrError(f"call {call_id!r} was never answered; disposition cannot be answered")
        self._stamp("end time", when, start if answer is None else answer)
        merged = more if old_extra == "{}" else {**json.loads(old_extra), **more}
        db.execute(
            "UPDATE calls SET end_at = ?, end_epoch = ?, disposition = ?, hangup_by = ?, "
            "q850_cause = ?, sip_status = ?, extra = ? WHERE call_id = ?",
            (_iso(when), when, disp, by, q850, sip, _extra_text(merged), call_id),
        )

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
        row = _start_row(
            self.run_id,
            ("start", call_id, direction, caller_number, caller_name, callee_dialled,
             caller_tech, callee_tech, self._now() if at is None else at, extra),
        )  # fmt: skip
        try:
            with self._transaction() as db:
                db.execute(_insert_rows_sql(1), row)
        except sqlite3.IntegrityError as exc:
            raise _refused_insert(call_id, exc) from None
        return _inserted(row)

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
        row = _call_row(
            self.run_id,
            ("call", call_id, direction, caller_number, caller_name, callee_dialled,
             callee_reached, caller_tech, callee_tech, start, answer, end, disposition,
             hangup_by, cause, status, extra),
        )  # fmt: skip
        try:
            with self._transaction() as db:
                db.execute(_insert_rows_sql(1), row)
        except sqlite3.IntegrityError as exc:
            raise _refused_insert(call_id, exc) from None
        return _inserted(row)

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
