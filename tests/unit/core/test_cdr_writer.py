"""The CDR writer: group commit (one transaction per batch), bounded queue, durability."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.core import CdrError, CdrStore
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
        writer.submit(lambda s, c=cid: s.start(c, direction="internal", caller_number="1",
                                               callee_dialled="2", caller_tech="sip"))
        writer.submit(lambda s, c=cid: s.end(c, disposition="failed", hangup_by="box", cause=41))
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
