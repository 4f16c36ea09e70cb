"""Principle 6 for CDRs: a kill -9 at any moment loses no committed call record.

A child process writes calls in a loop and prints each call id right after the commit
that recorded it (flushed). We SIGKILL it at random moments, ten times over one database;
every call it reported must be there, intact, and the database must pass integrity_check.
The next child runs recover() first, like the firmware at startup, so the calls a kill
cut in the middle get closed as 'failed' by the box.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware.core import CdrStore, Disposition, HangupBy

ROOT = Path(__file__).resolve().parents[3]

WRITER = r"""
import sys
from firmware.core import CdrStore

data, run = sys.argv[1], int(sys.argv[2])
store = CdrStore.open(data)
print("R", len(store.recover()), flush=True)
i = 0
while True:
    cid = f"{run}-{i}"
    store.start(cid, direction="inbound", caller_number=f"+45{i:08d}", caller_name=f"Kunde {i}",
                callee_dialled=str(600 + i % 7), caller_tech="isdn", extra={"run": run, "i": i})
    print("S", cid, flush=True)
    store.answer(cid, callee_reached=str(100 + i % 50), callee_tech="sip")
    store.end(cid, disposition="answered", hangup_by="caller", cause=16, status=200,
              extra={"media": {"packets": i * 50, "loss": 0.5, "mos": 4.2}})
    print("E", cid, flush=True)
    if i % 25 == 0:
        store.heartbeat()
    i += 1
"""


def check_complete(row: sqlite3.Row) -> None:
    run, i = (int(x) for x in row["call_id"].split("-"))
    assert row["caller_number"] == f"+45{i:08d}" and row["caller_name"] == f"Kunde {i}"
    assert row["callee_dialled"] == str(600 + i % 7)
    assert row["callee_reached"] == str(100 + i % 50)
    assert (row["caller_tech"], row["callee_tech"], row["direction"]) == ("isdn", "sip", "inbound")
    assert (row["disposition"], row["hangup_by"]) == ("answered", "caller")
    assert (row["q850_cause"], row["sip_status"]) == (16, 200)
    assert row["start_epoch"] <= row["answer_epoch"] <= row["end_epoch"]
    assert row["extra"] == (
        f'{{"run":{run},"i":{i},"media":{{"packets":{i * 50},"loss":0.5,"mos":4.2}}}}'
    )


@pytest.mark.slow
def test_kill_9_loses_no_committed_cdr(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    started: set[str] = set()
    ended: set[str] = set()
    began = time.monotonic()
    for run in range(10):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(run)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        first = child.stdout.readline()  # the child is up and has run recover()
        assert first.startswith("R "), (first, child.stderr.read() if child.stderr else "")
        time.sleep(rng.uniform(0.0, 0.25))
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        assert child.returncode == -signal.SIGKILL
        # only whole lines count: a line cut by the kill reports nothing
        lines = (first + child.stdout.read()).split("\n")[:-1]
        child.stdout.close()
        if child.stderr:
            child.stderr.close()
        for line in lines[1:]:
            kind, cid = line.split()
            (started if kind == "S" else ended).add(cid)

        db = sqlite3.connect(tmp_path / "cdr.db")
        db.row_factory = sqlite3.Row
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", f"seed {seed}"
            rows = {r["call_id"]: r for r in db.execute("SELECT * FROM calls")}
        finally:
            db.close()
        missing = (started | ended) - rows.keys()
        assert not missing, f"reported but lost after kill {run} (seed {seed}): {missing}"
        for cid in ended:
            check_complete(rows[cid])
    assert len(ended) > 10, f"the writer barely ran (seed {seed})"
    assert time.monotonic() - began < 20

    # The last run's cut call is closed at the next start; every call ends up closed.
    with CdrStore.open(tmp_path) as store:
        store.recover()
        assert store.in_progress() == []
        assert store.integrity_ok()
        for cid in started - ended:
            rec = store.get(cid)
            assert rec is not None
            # killed after the end's commit but before its line was printed: complete;
            # otherwise closed by recovery
            if rec.disposition is Disposition.FAILED:
                assert rec.hangup_by is HangupBy.BOX and rec.cause == 41
                assert rec.extra["recovered"] is True and rec.end is not None
                assert rec.end >= (rec.answer or rec.start)
            else:
                assert rec.disposition is Disposition.ANSWERED and rec.cause == 16
    print(f"\nkill -9: {len(ended)} CDRs reported committed over 10 kills, all intact")
