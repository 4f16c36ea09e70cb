"""Principle 6 for feature state: a kill -9 in the middle of writing loses no change that
was committed (reported), and leaves a database that opens and passes integrity_check.

A child process changes features in a loop and prints each change right after its
commit (flushed); we SIGKILL it at random moments, ten times over one data directory.
"""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware.core.features import DB_NAME, FeatureState, FeatureStore

ROOT = Path(__file__).resolve().parents[3]
EXTENSIONS = ("201", "202", "203", "204")

WRITER = r"""
import sys
from firmware.core.features import FeatureState, FeatureStore

EXTENSIONS = ("201", "202", "203", "204")
store = FeatureStore.open(sys.argv[1])
store.configure([{"extension": e, "name": e} for e in EXTENSIONS])
print("R", flush=True)
i = int(sys.argv[2])
while True:
    ext = EXTENSIONS[i % 4]
    target = EXTENSIONS[(i + 1) % 4]
    store.set(ext, FeatureState(forward_no_answer=target, no_answer_s=5 + (i // 4) % 116,
                                dnd=i % 3 == 0))
    print("W", i, flush=True)
    i += 1
"""


def expected(i: int) -> FeatureState:
    """What write number ``i`` stored (mirrors WRITER)."""
    return FeatureState(
        forward_no_answer=EXTENSIONS[(i + 1) % 4], no_answer_s=5 + (i // 4) % 116, dnd=i % 3 == 0
    )


@pytest.mark.slow
def test_kill_9_loses_no_committed_feature_change(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    last: dict[str, int] = {}  # extension -> number of its last reported write
    # extension -> a later write that may have committed just before a kill, unreported
    unreported: dict[str, int] = {}
    start, writes = 0, 0
    began = time.monotonic()
    for run in range(10):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(start)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            first = child.stdout.readline()
            assert first == "R\n", (first, child.stderr.read() if child.stderr else "")
            time.sleep(rng.uniform(0.02, 0.3))
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            assert child.returncode == -signal.SIGKILL
            lines = child.stdout.read().split("\n")[:-1]  # a line cut by the kill is no report
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(10)
            for stream in (child.stdout, child.stderr):
                if stream is not None:
                    stream.close()
        top = start - 1
        for line in lines:
            i = int(line.split()[1])
            last[EXTENSIONS[i % 4]] = top = i
            unreported.pop(EXTENSIONS[i % 4], None)
            writes += 1
        unreported[EXTENSIONS[(top + 1) % 4]] = top + 1

        with contextlib.closing(sqlite3.connect(tmp_path / DB_NAME)) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", f"seed {seed}"
        with FeatureStore.open(tmp_path) as store:
            store.configure([{"extension": e, "name": e} for e in EXTENSIONS])
            for ext in EXTENSIONS:
                state = store.state(ext)
                allowed = [
                    expected(n) for n in (last.get(ext), unreported.get(ext)) if n is not None
                ]
                if not allowed:
                    assert state == FeatureState()
                    continue
                # the reported write, or a later one that committed before its report
                assert state in allowed, (
                    f"{ext} lost write {last.get(ext)} after kill {run} (seed {seed})"
                )
        start = top + 2  # never reuse a number: a committed-unreported write may exist
    assert writes > 40, f"the writer barely ran (seed {seed})"
    assert time.monotonic() - began < 30
    print(f"\nkill -9: {writes} feature changes reported committed over 10 kills, none lost")
