"""The CDR store: lifecycle, validation, recovery of cut calls, queries, CSV export, rate."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from firmware.core import (
    CdrError,
    CdrStore,
    Direction,
    Disposition,
    HangupBy,
    Tech,
    disposition_for,
)
from firmware.core.cdr import CSV_FIELDS, DB_NAME

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC).timestamp()


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[CdrStore]:
    with CdrStore.open(tmp_path, clock=clock) as s:
        yield s


def start(store: CdrStore, call_id: str, **kw: Any) -> None:
    args: dict[str, Any] = {
        "direction": "inbound",
        "caller_number": "+4533123456",
        "callee_dialled": "600",
        "caller_tech": "isdn",
    }
    store.start(call_id, **(args | kw))


def test_pragmas_and_migrations(store: CdrStore, tmp_path: Path) -> None:
    assert store.path == tmp_path / DB_NAME
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    versions = [r[0] for r in store.db.execute("SELECT version FROM schema_migrations")]
    assert versions == [1]
    CdrStore.open(tmp_path).close()  # reopening applies nothing twice
    assert [r[0] for r in store.db.execute("SELECT version FROM schema_migrations")] == [1]
    assert store.integrity_ok()


def test_answered_call_lifecycle(store: CdrStore, clock: FakeClock) -> None:
    rec = store.start(
        "c1",
        direction=Direction.INBOUND,
        caller_number="+4533123456",
        caller_name="Søren Ærø",
        callee_dialled="600",
        caller_tech=Tech.ISDN,
        extra={"trunk": "pri1"},
    )
    assert rec.in_progress and rec.duration is None and rec.billsec is None
    assert store.get("c1") == rec  # durable and intact from the first moment
    assert [r.call_id for r in store.in_progress()] == ["c1"]

    clock.advance(7.25)
    answered = store.answer("c1", callee_reached="101", callee_tech="sip")
    assert answered.answer == T0 + 7.25 and answered.callee_reached == "101"
    clock.advance(60)
    done = store.end("c1", disposition="answered", hangup_by="callee", cause=16, extra={"mos": 4.3})
    assert done == store.get("c1")
    assert done.duration == 67.25 and done.billsec == 60.0
    assert done.start_iso == "2024-05-01T08:00:00.000Z"
    assert done.answer_iso == "2024-05-01T08:00:07.250Z"
    assert done.end_iso == "2024-05-01T08:01:07.250Z"
    assert done.disposition is Disposition.ANSWERED and done.hangup_by is HangupBy.CALLEE
    assert done.cause == 16 and done.sip_status is None
    assert done.callee_tech is Tech.SIP and done.caller_name == "Søren Ærø"
    assert done.extra == {"trunk": "pri1", "mos": 4.3}
    assert store.in_progress() == []
    # the database row carries ISO text too, for people reading it with sqlite3
    row = store.db.execute("SELECT start_at, end_at FROM calls WHERE call_id='c1'").fetchone()
    assert row == ("2024-05-01T08:00:00.000Z", "2024-05-01T08:01:07.250Z")


def test_unanswered_outcomes(store: CdrStore, clock: FakeClock) -> None:
    start(store, "busy", direction="outbound", caller_tech="fxs", callee_dialled="33999999")
    clock.advance(2)
    busy = store.end("busy", disposition="busy", hangup_by="callee", cause=17, status=486)
    assert busy.billsec == 0.0 and busy.duration == 2.0 and busy.sip_status == 486
    start(store, "gone", caller_tech="sip")
    clock.advance(30)
    gone = store.end("gone", disposition="cancelled", hangup_by="caller", status=487)
    assert gone.cause is None and gone.disposition is Disposition.CANCELLED


def test_explicit_times_and_datetimes(store: CdrStore) -> None:
    t = datetime(2024, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))  # 10:00 UTC
    start(store, "x", at=t)
    store.answer("x", at=t + timedelta(seconds=3))
    rec = store.end("x", at=t.timestamp() + 10, disposition="answered", hangup_by="caller")
    assert rec.start_iso == "2024-06-01T10:00:00.000Z" and rec.billsec == 7.0


def test_steps_that_do_not_fit_change_nothing(store: CdrStore, clock: FakeClock) -> None:
    start(store, "c")
    with pytest.raises(CdrError, match="already recorded"):
        start(store, "c")
    with pytest.raises(CdrError, match="no call"):
        store.answer("nope")
    with pytest.raises(CdrError, match="no call"):
        store.end("nope", disposition="failed", hangup_by="box")
    with pytest.raises(CdrError, match="never answered"):
        store.end("c", disposition="answered", hangup_by="caller")
    with pytest.raises(CdrError, match="before the call's previous step"):
        store.answer("c", at=T0 - 1)
    before = store.get("c")
    clock.advance(1)
    store.answer("c")
    with pytest.raises(CdrError, match="already answered"):
        store.answer("c")
    with pytest.raises(CdrError, match="answered or failed"):
        store.end("c", disposition="busy", hangup_by="callee")
    store.end("c", disposition="failed", hangup_by="box", cause=41)  # cut by a fault
    with pytest.raises(CdrError, match="already ended"):
        store.end("c", disposition="failed", hangup_by="box")
    with pytest.raises(CdrError, match="already ended"):
        store.answer("c")
    assert before is not None and before.answer is None
    assert store.integrity_ok()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"direction": "sideways"}, "direction 'sideways' is not one of"),
        ({"caller_tech": "pots"}, "caller_tech"),
        ({"callee_tech": 3}, "callee_tech"),
        ({"caller_number": 4533}, "caller_number must be text"),
        ({"caller_number": "1" * 65}, "at most 64"),
        ({"caller_name": "a\x00b"}, "control characters"),
        ({"at": float("nan")}, "not a valid epoch"),
        ({"at": datetime(2024, 1, 1)}, "no time zone"),
        ({"extra": {"x": object()}}, "not JSON-serializable"),
        ({"extra": {"x": float("inf")}}, "not JSON-serializable"),
        ({"extra": {1: 2}}, "text keys"),
        ({"extra": {"x": "y" * 70_000}}, "at most"),
    ],
)
def test_bad_start_input_is_a_clear_error(
    store: CdrStore, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(CdrError, match=match):
        start(store, "c", **kwargs)
    assert store.get("c") is None


def test_bad_call_id_and_end_input(store: CdrStore) -> None:
    with pytest.raises(CdrError, match="call_id must not be empty"):
        start(store, "")
    start(store, "c")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"disposition": "meh", "hangup_by": "box"}, "disposition"),
        ({"disposition": "failed", "hangup_by": "god"}, "hangup_by"),
        ({"disposition": "failed", "hangup_by": "box", "cause": 128}, "cause"),
        ({"disposition": "failed", "hangup_by": "box", "status": 99}, "status"),
        ({"disposition": "failed", "hangup_by": "box", "at": T0 - 5}, "before"),
    ]
    for kwargs, match in cases:
        with pytest.raises(CdrError, match=match):
            store.end("c", **kwargs)
    rec = store.get("c")
    assert rec is not None and rec.in_progress


def test_clock_stepping_back_never_gives_negative_durations(
    store: CdrStore, clock: FakeClock
) -> None:
    start(store, "c")
    clock.advance(-3600)  # NTP stepped the clock back an hour
    store.answer("c")
    rec = store.end("c", disposition="answered", hangup_by="caller")
    assert rec.duration == 0.0 and rec.billsec == 0.0


def test_update_extra_after_the_end(store: CdrStore) -> None:
    start(store, "c", extra={"a": 1})
    store.end("c", disposition="failed", hangup_by="box", cause=38)
    media = {"packets": 1500, "loss": 0.2, "jitter_ms": 4.5, "mos": 4.1}
    rec = store.update_extra("c", {"media": media})
    assert rec.extra == {"a": 1, "media": media} and store.get("c") == rec
    with pytest.raises(CdrError, match="no call"):
        store.update_extra("nope", {})


def test_disposition_for() -> None:
    assert disposition_for(16, answered=True, hangup_by="caller") is Disposition.ANSWERED
    assert disposition_for(17, answered=False, hangup_by="callee") is Disposition.BUSY
    assert disposition_for(19, answered=False, hangup_by="box") is Disposition.NO_ANSWER
    assert disposition_for(None, answered=False, hangup_by="caller") is Disposition.CANCELLED
    assert disposition_for(16, answered=False, hangup_by="caller") is Disposition.CANCELLED
    assert disposition_for(34, answered=False, hangup_by="box") is Disposition.FAILED
    with pytest.raises(CdrError):
        disposition_for(16, answered=False, hangup_by="nobody")


# -- recovery --------------------------------------------------------------------------


def test_recover_closes_calls_cut_by_a_crash(tmp_path: Path, clock: FakeClock) -> None:
    first = CdrStore.open(tmp_path, clock=clock)
    start(first, "ringing")
    clock.advance(5)
    start(first, "talking")
    clock.advance(2)
    first.answer("talking")
    start(first, "finished")
    first.end("finished", disposition="cancelled", hangup_by="caller", cause=16)
    clock.advance(40)
    first.heartbeat()  # last sign of life: T0 + 47
    clock.advance(100)
    first.db.close()  # "crash": no close(), no final heartbeat

    clock.advance(20)
    second = CdrStore.open(tmp_path, clock=clock)
    start(second, "new")  # a call of the current run is never touched
    assert second.recover() == ["ringing", "talking"]
    ringing, talking = second.get("ringing"), second.get("talking")
    assert ringing is not None and talking is not None
    for rec in (ringing, talking):
        assert rec.end == T0 + 47
        assert rec.disposition is Disposition.FAILED and rec.hangup_by is HangupBy.BOX
        assert rec.cause == 41 and rec.sip_status is None and rec.extra == {"recovered": True}
    assert ringing.billsec == 0.0 and talking.billsec == 40.0
    finished = second.get("finished")
    assert finished is not None and finished.disposition is Disposition.CANCELLED
    new = second.get("new")
    assert new is not None and new.in_progress
    assert second.recover() == []  # idempotent
    assert second.integrity_ok()
    second.close()


def test_recover_never_ends_a_call_before_it_started(tmp_path: Path) -> None:
    clock = FakeClock()
    first = CdrStore.open(tmp_path, clock=clock)
    start(first, "future", at=T0 + 3600)  # explicit time later than the run's last write
    first.db.close()
    with CdrStore.open(tmp_path, clock=clock) as second:
        assert second.recover() == ["future"]
        rec = second.get("future")
        assert rec is not None and rec.end == T0 + 3600 and rec.duration == 0.0


# -- queries and export ----------------------------------------------------------------


@pytest.fixture
def day(store: CdrStore, clock: FakeClock) -> CdrStore:
    """Five calls, one every ten minutes from T0."""
    rows = [
        ("a", "+4533123456", "600", "101"),
        ("b", "101", "+4570101010", None),
        ("c", "102", "103", "103"),
        ("d", "+4533123456", "600", "102"),
        ("e", '=HYPERLINK("http://x")', "600", None),
    ]
    for i, (call_id, caller, dialled, reached) in enumerate(rows):
        clock.now = T0 + 600 * i
        start(store, call_id, caller_number=caller, callee_dialled=dialled, caller_name="-x")
        clock.advance(1)
        if reached:
            store.answer(call_id, callee_reached=reached)
            clock.advance(30)
            store.end(call_id, disposition="answered", hangup_by="caller", cause=16)
        elif call_id == "b":
            store.end(call_id, disposition="busy", hangup_by="callee", cause=17, status=486)
    return store


def test_recent_pages_latest_first(day: CdrStore) -> None:
    assert [r.call_id for r in day.recent(2)] == ["e", "d"]
    assert [r.call_id for r in day.recent(2, offset=2)] == ["c", "b"]
    assert [r.call_id for r in day.recent(10, offset=4)] == ["a"]
    with pytest.raises(CdrError, match="limit"):
        day.recent(0)
    with pytest.raises(CdrError, match="offset"):
        day.recent(10, -1)


def test_query_window_and_number(day: CdrStore) -> None:
    assert [r.call_id for r in day.query()] == ["a", "b", "c", "d", "e"]
    since, until = T0 + 600, T0 + 1800  # [since, until): b and c
    assert [r.call_id for r in day.query(since, until)] == ["b", "c"]
    aware = datetime.fromtimestamp(T0 + 600, UTC)
    assert [r.call_id for r in day.query(since=aware, limit=1)] == ["b"]
    assert [r.call_id for r in day.query(number="+4533123456")] == ["a", "d"]
    assert [r.call_id for r in day.query(number="103")] == ["c"]  # dialled and reached
    assert [r.call_id for r in day.query(number="102")] == ["c", "d"]  # caller or reached
    assert [r.call_id for r in day.query(T0 + 1200, number="102")] == ["c", "d"]
    assert day.query(number="999") == []
    with pytest.raises(CdrError, match="before since"):
        day.query(T0 + 10, T0)
    with pytest.raises(CdrError, match="no time zone"):
        day.query(datetime(2024, 5, 1))


def test_export_csv(day: CdrStore) -> None:
    out = io.StringIO(newline="")
    assert day.export_csv(out) == 5
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert tuple(rows[0]) == CSV_FIELDS
    a = rows[0]
    assert a["call_id"] == "a" and a["direction"] == "inbound"
    assert a["start"] == "2024-05-01T08:00:00.000Z" and a["answer"] == "2024-05-01T08:00:01.000Z"
    assert (a["duration"], a["billsec"]) == ("31.000", "30.000")
    assert a["caller_number"] == "+4533123456"  # a plain number stays as it is
    assert a["callee_reached"] == "101" and a["q850_cause"] == "16"
    assert a["cause_name"] == "Normal call clearing"
    assert a["caller_name"] == "'-x"  # would be a formula in a spreadsheet
    b = rows[1]
    assert (b["disposition"], b["sip_status"], b["billsec"]) == ("busy", "486", "0.000")
    e = rows[4]
    assert e["caller_number"] == '\'=HYPERLINK("http://x")'
    assert e["end"] == "" and e["disposition"] == ""  # in progress: exported, empty end
    # window
    out = io.StringIO()
    assert day.export_csv(out, since=T0 + 600, until=T0 + 1200) == 1
    assert out.getvalue().splitlines()[1].startswith("b,")
    assert out.getvalue().endswith("\r\n")


def test_export_does_not_block_writers(day: CdrStore, clock: FakeClock) -> None:
    """The export reads a snapshot on its own connection: a write while it runs neither
    waits for it nor shows up in it."""

    class Slow(io.StringIO):
        def write(self, s: str) -> int:
            if "call_id" not in s and not started.is_set():
                started.set()
                assert wrote.wait(5)
            return super().write(s)

    started, wrote = threading.Event(), threading.Event()
    out = Slow()
    worker = threading.Thread(target=day.export_csv, args=(out,))
    worker.start()
    assert started.wait(5)
    start(day, "during")  # would deadlock if the export held the store's lock
    wrote.set()
    worker.join(5)
    assert not worker.is_alive()
    assert "during" not in out.getvalue() and day.get("during") is not None


def test_extra_survives_json_round_trip(store: CdrStore) -> None:
    start(store, "j", extra={"nested": {"list": [1, 2.5, None, "æ"]}})
    raw = store.db.execute("SELECT extra FROM calls WHERE call_id='j'").fetchone()[0]
    assert json.loads(raw) == {"nested": {"list": [1, 2.5, None, "æ"]}}


def test_thread_safety(store: CdrStore) -> None:
    def worker(n: int) -> None:
        for i in range(50):
            cid = f"t{n}-{i}"
            start(store, cid)
            store.answer(cid)
            store.end(cid, disposition="answered", hangup_by="caller", cause=16)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.query()) == 200 and store.in_progress() == []
    assert store.integrity_ok()


def test_database_constraints_back_the_api(store: CdrStore) -> None:
    """Even a write that bypasses the API cannot store a half-ended call."""
    start(store, "c")
    with pytest.raises(sqlite3.IntegrityError):
        store.db.execute("UPDATE calls SET end_epoch = 1 WHERE call_id = 'c'")


@pytest.mark.slow
def test_cdr_rate(tmp_path: Path) -> None:
    """Calls per second for start+answer+end (three fsynced commits each) on this disk."""
    with CdrStore.open(tmp_path) as store:
        n, began = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - began) < 2.0:
            cid = f"r{n}"
            store.start(
                cid,
                direction="inbound",
                caller_number="+4533123456",
                callee_dialled="600",
                caller_tech="sip",
            )
            store.answer(cid, callee_reached="101")
            store.end(cid, disposition="answered", hangup_by="caller", cause=16, status=200)
            n += 1
        print(
            f"\nCDR start+answer+end: {n / elapsed:,.0f} calls/s ({3 * n / elapsed:,.0f} commits/s)"
        )
        assert n / elapsed > 100  # "a few hundred calls per second" with margin for CI
