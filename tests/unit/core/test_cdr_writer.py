"""The CDR writer: group commit (one transaction per batch), bounded queue, durability."""

from __future__ import annotations

import logging
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware.core import CdrError, CdrStore
from firmware.core.cdr import CallOp
from firmware.core.cdr_writer import CdrWriter, Step

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CdrStore]:
    with CdrStore.open(tmp_path) as s:
        yield s


def start_step(call_id: str) -> Step:
    return lambda s: s.start(
        call_id, direction="internal", caller_number="100", callee_dialled="201", caller_tech="sip"
    )


def answer_step(call_id: str) -> Step:
    return lambda s: s.answer(call_id)


def end_step(call_id: str) -> Step:
    return lambda s: s.end(call_id, disposition="answered", hangup_by="caller", cause=16)


def test_many_steps_one_commit(store: CdrStore) -> None:
    commits = 0

    def count(statement: str) -> None:
        nonlocal commits
        commits += statement.strip().upper() == "COMMIT"

    store.db.set_trace_callback(count)
    writer = CdrWriter(store, interval=0.05)
    try:
        with store.lock:  # hold the writer off until everything is queued
            for i in range(300):
                assert writer.submit(start_step(f"c{i}"))
                assert writer.submit(answer_step(f"c{i}"))
                assert writer.submit(end_step(f"c{i}"))
            assert writer.backlog == 900
        assert writer.flush()
    finally:
        writer.close()
        store.db.set_trace_callback(None)
    assert writer.backlog == 0
    assert writer.stats.committed == 900 and writer.stats.batches == commits
    assert commits <= 2  # the first batch may have been taken before the lock was
    records = store.recent(limit=1000)
    assert len(records) == 300 and all(r.disposition == "answered" for r in records)


def test_a_refused_step_is_undone_alone(store: CdrStore) -> None:
    writer = CdrWriter(store)
    try:
        with store.lock:
            writer.submit(start_step("ok-1"))
            writer.submit(lambda s: s.answer("no-such-call"))  # CdrError
            writer.submit(start_step("ok-1"))  # duplicate: CdrError
            writer.submit(start_step("ok-2"))
        assert writer.flush()
    finally:
        writer.close()
    assert writer.stats.rejected == 2 and writer.stats.committed == 2
    assert {r.call_id for r in store.recent()} == {"ok-1", "ok-2"}


def test_full_queue_refuses_without_blocking(store: CdrStore) -> None:
    writer = CdrWriter(store, max_queue=10, max_batch=10)
    try:
        with store.lock:  # the writer thread is stuck behind the lock
            time.sleep(0.05)
            began = time.monotonic()
            results = [writer.submit(start_step(f"q{i}")) for i in range(25)]
            assert time.monotonic() - began < 0.5
        assert writer.flush()
    finally:
        writer.close()
    # up to one batch may have left the queue before the lock was taken
    assert results[:10] == [True] * 10 and results.count(False) >= 5
    assert writer.stats.dropped == results.count(False)
    assert len(store.recent(limit=100)) == results.count(True)


def test_close_writes_what_is_queued_then_refuses(store: CdrStore) -> None:
    writer = CdrWriter(store, interval=1.0)
    for i in range(50):
        writer.submit(start_step(f"z{i}"))
    writer.close()
    assert len(store.recent(limit=100)) == 50
    assert not writer.submit(start_step("late"))


def test_batches_nest_not_and_roll_back_whole_on_error(store: CdrStore) -> None:
    with pytest.raises(RuntimeError), store.batch(), store.batch():
        pass
    with pytest.raises(ZeroDivisionError), store.batch():
        start_step("gone")(store)
        1 / 0  # noqa: B018
    assert store.get("gone") is None
    with store.batch():
        with pytest.raises(CdrError):
            store.answer("nothing")
        start_step("kept")(store)
    assert store.get("kept") is not None


def test_idle_writer_keeps_the_heartbeat(store: CdrStore) -> None:
    def last_seen() -> float:
        return float(
            store.db.execute(
                "SELECT last_seen_epoch FROM runs WHERE id = ?", (store.run_id,)
            ).fetchone()[0]
        )

    before = last_seen()
    time.sleep(0.01)
    writer = CdrWriter(store, interval=0.01, heartbeat=0.05)
    try:
        deadline = time.monotonic() + 5
        while last_seen() == before and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        writer.close()
    assert last_seen() > before


def test_record_call_writes_the_row_three_steps_would(store: CdrStore) -> None:
    base = 1_700_000_000.0
    common = {"direction": "internal", "caller_number": "100", "callee_dialled": "201"}
    store.start("steps", caller_tech="sip", at=base, **common)  # type: ignore[arg-type]
    store.answer("steps", base + 1, callee_tech="sip")
    store.end("steps", base + 5, disposition="answered", hangup_by="caller", cause=16,
              status=200, extra={"media": {"rtp": 1}})  # fmt: skip
    store.record_call(
        "one", caller_tech="sip", callee_tech="sip", start=base, answer=base + 1, end=base + 5,
        disposition="answered", hangup_by="caller", cause=16, status=200,
        extra={"media": {"rtp": 1}}, **common,
    )  # fmt: skip
    steps, one = store.get("steps"), store.get("one")
    assert steps is not None and one is not None
    assert {**vars_of(steps), "call_id": "one"} == vars_of(one)
    with pytest.raises(CdrError):  # the same checks as the steps
        store.record_call("bad", caller_tech="sip", start=base, end=base + 1,
                          disposition="answered", hangup_by="caller", **common)  # type: ignore[arg-type]  # fmt: skip
    with pytest.raises(CdrError):
        store.record_call("bad", caller_tech="sip", start=base, answer=base - 1, end=base + 1,
                          disposition="answered", hangup_by="caller", **common)  # type: ignore[arg-type]  # fmt: skip
    with pytest.raises(CdrError):
        store.record_call("one", caller_tech="sip", start=base, end=base,
                          disposition="failed", hangup_by="box", **common)  # type: ignore[arg-type]  # fmt: skip
    assert store.get("bad") is None


def vars_of(record: object) -> dict[str, object]:
    return {f: getattr(record, f) for f in record.__slots__}  # type: ignore[attr-defined]


async def test_cdr_log_short_calls_one_row_long_calls_early_start(store: CdrStore) -> None:
    import asyncio

    from firmware.core.sip_service import CdrLog
    from firmware.sip.b2bua import Caller

    cdrs = CdrLog(store, CdrWriter(store, interval=0.01), defer=0.2)
    try:
        cdrs.started("short", Caller("100"), "201")
        cdrs.answered("short")
        cdrs.ended("short", 200, "caller", {"rtp_a_to_b_packets": 0})
        cdrs.started("long", Caller("101", "Bo"), "202")
        cdrs.answered("long")
        await asyncio.sleep(0.5)  # past defer: the long call's start and answer are written
        assert cdrs.writer.flush()
        long = store.get("long")
        assert long is not None and long.in_progress and long.answer is not None
        cdrs.ended("long", 200, "callee", {})
        cdrs.started("cut", Caller("102"), "203")  # still up when the service stops
    finally:
        cdrs.close()
    short, long, cut = store.get("short"), store.get("long"), store.get("cut")
    assert short is not None and short.disposition == "answered" and short.answer is not None
    assert long is not None and long.hangup_by == "callee" and long.end is not None
    assert cut is not None and cut.in_progress  # recover() closes it at the next start
    assert cdrs.writer.stats.committed == 5  # short: 1 row; long: start, answer, end; cut


CHILD = r"""
import sys
import time
from firmware.core import CdrStore
from firmware.core.cdr_writer import CdrWriter, Step

store = CdrStore.open(sys.argv[1])
store.recover()
writer = CdrWriter(store, interval=0.005)
print("up", flush=True)
i = 0
while True:
    ids = []
    for _ in range(40):
        cid = f"{sys.argv[2]}-{i}"
        if i % 3 == 0:  # steps as callables
            writer.submit(lambda s, c=cid: s.start(c, direction="internal", caller_number="1",
                                                   callee_dialled="2", caller_tech="sip"))
            writer.submit(lambda s, c=cid: s.end(c, disposition="failed", hangup_by="box",
                                                 cause=41))
        elif i % 3 == 1:  # steps as tuples, the event loop's way
            t = time.time()
            writer.submit(("start", cid, "internal", "1", None, "2", "sip", None, t, None))
            writer.submit(("end", cid, t, "failed", "box", 41, None, None))
        else:  # a whole call, one tuple
            t = time.time()
            writer.submit(("call", cid, "internal", "1", None, "2", None, "sip", None, t, None,
                           t, "failed", "box", 41, None, None))
        ids.append(cid)
        i += 1
    writer.flush()
    print(" ".join(ids), flush=True)  # only what the writer reported committed
"""


@pytest.mark.slow
def test_kill_9_loses_no_committed_batch(tmp_path: Path) -> None:
    rng = random.Random()
    committed: set[str] = set()
    for run in range(4):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path), str(run)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "up"
            time.sleep(rng.uniform(0.2, 0.8))
            child.send_signal(signal.SIGKILL)
            out, _ = child.communicate(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(10)
        lines = out.splitlines()
        if lines and not out.endswith("\n"):
            lines.pop()  # a line cut by the kill
        for line in lines:
            committed.update(line.split())
    assert committed
    db = sqlite3.connect(tmp_path / "cdr.db")
    try:
        rows = {r[0]: r[1] for r in db.execute("SELECT call_id, end_epoch FROM calls")}
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
    missing = committed - rows.keys()
    assert not missing, sorted(missing)[:5]
    assert all(rows[c] is not None for c in committed)


# -- steps as tuples (the event loop's fast path) ---------------------------------------

BASE = 1_700_000_000.123456


def call_op(call_id: str, **kw: Any) -> CallOp:
    f: dict[str, Any] = {
        "direction": "internal", "caller_number": "100", "caller_name": "Ada",
        "callee_dialled": "201", "callee_reached": None, "caller_tech": "sip",
        "callee_tech": "sip", "start": BASE, "answer": BASE + 1.5, "end": BASE + 7.25,
        "disposition": "answered", "hangup_by": "caller", "cause": 16, "status": 200,
        "extra": {"media": {"rtp_a_to_b_packets": 350, "mos": 4.3, "name": "Æble"}},
    } | kw  # fmt: skip
    return (
        "call", call_id, f["direction"], f["caller_number"], f["caller_name"],
        f["callee_dialled"], f["callee_reached"], f["caller_tech"], f["callee_tech"],
        f["start"], f["answer"], f["end"], f["disposition"], f["hangup_by"], f["cause"],
        f["status"], f["extra"],
    )  # fmt: skip


def columns(store: CdrStore, call_id: str) -> dict[str, object]:
    db = store.db
    cur = db.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,))
    row = cur.fetchone()
    assert row is not None, call_id
    names = [d[0] for d in cur.description]
    return {n: v for n, v in zip(names, row, strict=True) if n not in ("id", "call_id")}


def write(store: CdrStore, items: list[Any]) -> CdrWriter:
    writer = CdrWriter(store)
    try:
        with store.lock:  # one batch
            for item in items:
                assert writer.submit(item)
        assert writer.flush()
    finally:
        writer.close()
    return writer


def test_tuple_steps_write_what_the_methods_write(store: CdrStore) -> None:
    """Every column (the ISO texts and the JSON of extra included) as the methods write it."""
    variants: list[dict[str, Any]] = [
        {},
        {"caller_name": None, "callee_tech": None, "extra": None, "status": None},
        {"answer": None, "end": BASE + 0.0005, "disposition": "cancelled", "cause": 16},
        {"answer": None, "disposition": "busy", "hangup_by": "callee", "cause": 17,
         "status": 486, "direction": "inbound", "caller_tech": "isdn",
         "callee_reached": "+4533123456"},
        {"start": BASE + 0.9999995, "answer": BASE + 1.9994999, "end": BASE + 2.0},
    ]  # fmt: skip
    items: list[Any] = []
    for n, v in enumerate(variants):
        op = call_op(f"op{n}", **v)
        items.append(op)
        store.record_call(
            f"m{n}", direction=op[2], caller_number=op[3], caller_name=op[4],
            callee_dialled=op[5], callee_reached=op[6], caller_tech=op[7], callee_tech=op[8],
            start=op[9], answer=op[10], end=op[11], disposition=op[12], hangup_by=op[13],
            cause=op[14], status=op[15], extra=op[16],
        )  # fmt: skip
    # a long call: start, answer and end as three tuples, against the three methods
    media = {"media": {"rtp_a_to_b_packets": 7}}
    items += [
        ("start", "op-long", "internal", "100", "Ada", "201", "sip", "sip", BASE, None),
        ("answer", "op-long", BASE + 2.0),
        ("end", "op-long", BASE + 9.5, "answered", "callee", 16, 200, media),
    ]
    store.start("m-long", direction="internal", caller_number="100", caller_name="Ada",
                callee_dialled="201", caller_tech="sip", callee_tech="sip", at=BASE)  # fmt: skip
    store.answer("m-long", BASE + 2.0)
    store.end("m-long", BASE + 9.5, disposition="answered", hangup_by="callee", cause=16,
              status=200, extra=media)  # fmt: skip
    writer = write(store, items)
    assert writer.stats.committed == len(items) and writer.stats.rejected == 0
    assert writer.stats.batches == 1
    for n in range(len(variants)):
        assert columns(store, f"op{n}") == columns(store, f"m{n}")
    assert columns(store, "op-long") == columns(store, "m-long")
    assert columns(store, "op0")["answer_at"] == "2023-11-14T22:13:21.623Z"
    assert columns(store, "op4")["start_at"] == "2023-11-14T22:13:21.123Z"


def test_refused_tuple_steps_change_nothing_and_are_logged(
    store: CdrStore, caplog: pytest.LogCaptureFixture
) -> None:
    items: list[Any] = [
        call_op("a"),
        call_op("a"),  # duplicate in the same INSERT: the others of it are still written
        call_op("b", answer=BASE - 1),  # answered before it started
        call_op("c", answer=None),  # unanswered, disposition 'answered'
        call_op("d", direction="sideways"),
        call_op("e", extra={"x": float("nan")}),
        call_op("f"),
        ("answer", "nobody", BASE),
        ("end", "nobody", BASE, "failed", "box", 41, None, None),
        ("start", "g", "internal", "100", None, "201", "sip", None, BASE, None),
        ("answer", "g", BASE - 5),  # before its start
        ("end", "g", BASE + 1, "answered", "box", 16, None, None),  # never answered
        ("end", "g", BASE + 1, "failed", "box", 41, None, None),
        ("answer", "g", BASE + 2),  # already ended
        ("end", "g", BASE + 3, "failed", "box", 41, None, None),  # already ended
        ("hangup", "g"),  # no such step
        ("call", "short"),  # malformed
        lambda s: s.answer("a"),  # a callable between tuples: in order, after "a" exists
        call_op("h"),
    ]
    with caplog.at_level(logging.WARNING, logger="firmware.core.cdr_writer"):
        writer = write(store, items)
    refused = [r for r in caplog.records if r.getMessage() == "CDR step refused"]
    assert writer.stats.rejected == len(refused) == 14
    assert writer.stats.committed == 5  # a, f, g's start, g's end, h
    assert writer.stats.lost == 0 and writer.backlog == 0
    assert {r.call_id for r in store.recent(limit=100)} == {"a", "f", "g", "h"}
    g = store.get("g")
    assert g is not None and g.answer is None and g.end == BASE + 1 and g.cause == 41
    # each refusal is logged with why and, for a tuple, the step itself (drop-to-log)
    why: dict[int, str] = {}
    for record in refused:
        op = getattr(record, "cdr", None)
        at = 17 if op is None else next(i for i, item in enumerate(items) if item is op)
        why[at] = getattr(record, "error", "")
    expected = {
        1: "already recorded", 2: "before the start", 3: "never answered", 4: "is not one of",
        5: "not JSON-serializable", 7: "no call with id", 8: "no call with id",
        10: "before the call's previous step", 11: "never answered", 13: "has already ended",
        14: "has already ended", 15: "no such CDR step", 16: "malformed CDR step",
        17: "has already ended",
    }  # fmt: skip
    assert why.keys() == expected.keys(), why
    assert [i for i in expected if expected[i] not in why[i]] == [], why


def test_steps_of_one_call_in_one_batch_keep_their_order(store: CdrStore) -> None:
    items: list[Any] = []
    for i in range(300):  # more than one INSERT's rows
        cid = f"x{i}"
        items.append(("start", cid, "internal", "100", None, "201", "sip", "sip", BASE, None))
        if i % 2:
            items.append(("answer", cid, BASE + 1))
        if i % 3:
            disposition = "answered" if i % 2 else "no-answer"
            items.append(("end", cid, BASE + 2, disposition, "caller", 16, None, None))
    items.append(call_op("x7"))  # a duplicate of a call started above: refused alone
    writer = write(store, items)
    assert writer.stats.rejected == 1 and writer.stats.committed == len(items) - 1
    records = {r.call_id: r for r in store.query(limit=1000)}
    assert len(records) == 300
    for i in range(300):
        r = records[f"x{i}"]
        assert (r.answer is not None) == bool(i % 2) and (r.end is not None) == bool(i % 3)
    ids = [row[0] for row in store.db.execute("SELECT call_id FROM calls ORDER BY id")]
    assert ids == [f"x{i}" for i in range(300)]  # inserted in the order submitted


def test_large_batches_many_rows_per_statement(store: CdrStore) -> None:
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)
    try:
        writer = write(store, [call_op(f"r{i}") for i in range(700)])
    finally:
        store.db.set_trace_callback(None)
    inserts = [s for s in statements if s.startswith("INSERT INTO calls")]
    assert writer.stats.committed == 700 and writer.stats.batches == 1
    assert len(inserts) == 3  # 256 + 256 + 188 (padded to 256)
    assert store.db.execute("SELECT count(*) FROM calls").fetchone()[0] == 700


def test_apply_only_inside_a_batch(store: CdrStore) -> None:
    with pytest.raises(RuntimeError):
        store.apply([call_op("z")])
    with store.batch():
        assert store.apply([call_op("z")]) == []
    assert store.get("z") is not None


def test_a_batch_that_cannot_commit_logs_its_steps(
    store: CdrStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.db.execute("PRAGMA query_only = ON")  # a real failure: every write refused
    try:
        with caplog.at_level(logging.ERROR, logger="firmware.core.cdr_writer"):
            writer = write(store, [call_op("p1"), call_op("p2"), start_step("p3")])
    finally:
        store.db.execute("PRAGMA query_only = OFF")
    assert writer.stats.lost == 3 and writer.stats.committed == 0 and writer.backlog == 0
    logged = [
        getattr(r, "cdr", None) for r in caplog.records if r.getMessage() == "CDR step not stored"
    ]
    assert [op[1] for op in logged if op] == ["p1", "p2"]
    assert store.get("p1") is None


def test_one_commit_per_interval_and_flush_does_not_wait(store: CdrStore) -> None:
    writer = CdrWriter(store, interval=0.25)
    try:
        began = time.monotonic()
        n = 0
        while time.monotonic() - began < 1.2:  # a step every ~2 ms for 1.2 s
            assert writer.submit(call_op(f"s{n}"))
            n += 1
            time.sleep(0.002)
        assert writer.stats.batches <= 1.2 / 0.25 + 2
        writer.submit(call_op("last"))
        began = time.monotonic()
        assert writer.flush()
        assert time.monotonic() - began < 0.2  # written now, not at the next interval
        assert store.get("last") is not None and writer.stats.committed == n + 1
    finally:
        writer.close()
