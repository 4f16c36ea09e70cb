"""kill -9 at random moments of `skillepunkt config import`: the database is never mixed.

Two large documents are imported alternately by real processes that are killed with
SIGKILL at random points of their run (start-up, validation, inside the transaction,
during commit). After every kill the store must pass SQLite's integrity and foreign-key
checks and hold exactly one of the documents (or the one before), never a mix.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from firmware.config import ConfigStore, dump_yaml

pytestmark = pytest.mark.slow

N_USERS = 2000


def document(tag: str, n: int) -> dict[str, Any]:
    users = [{"extension": str(1000 + i), "name": f"{tag} user {i}"} for i in range(n)]
    return {
        "system": {"hostname": f"box-{tag.lower()}"},
        "users": users,
        "queues": [{"name": f"q{i}", "extension": str(600 + i)} for i in range(20)],
        "agents": [
            {
                "extension": users[i]["extension"],
                "queues": [{"queue": f"q{i % 20}", "skill": 1 + i % 9}],
            }
            for i in range(0, n, 3)
        ],
    }


def without_passwords(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        **doc,
        "users": [{k: v for k, v in u.items() if k != "sip_password"} for u in doc["users"]],
    }


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "firmware.cli", *args]


def test_kill_9_loop_never_leaves_a_mixed_database(tmp_path: Path) -> None:
    docs = {"A": document("A", N_USERS), "B": document("B", N_USERS - 7)}
    files = {}
    expected = {}
    for tag, doc in docs.items():
        files[tag] = tmp_path / f"{tag}.yaml"
        files[tag].write_text(dump_yaml(doc))
        with ConfigStore.open(tmp_path / f"ref-{tag}") as ref:  # what a clean import gives
            ref.import_raw(doc, "ref")
            expected[tag] = without_passwords(ref.document())
    data = tmp_path / "data"
    subprocess.run(
        cli("config", "import", str(files["A"]), "--data", str(data)),
        check=True,
        capture_output=True,
    )

    # How long one import takes, so kills land all over its run.
    t0 = time.monotonic()
    subprocess.run(
        cli("config", "import", str(files["B"]), "--data", str(data)),
        check=True,
        capture_output=True,
    )
    duration = time.monotonic() - t0
    rng = random.Random(20261125)
    outcomes = {"killed": 0, "completed": 0}
    seen = set()
    deadline = time.monotonic() + 90
    for i in range(30):  # bounded: 30 imports, 90 s
        assert time.monotonic() < deadline, "kill loop ran out of time"
        tag = "A" if i % 2 == 0 else "B"
        proc = subprocess.Popen(
            cli("config", "import", str(files[tag]), "--data", str(data)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if i % 5 == 4:  # now and then an import runs to the end, so both documents get committed
            rc = proc.wait(60)
        else:
            time.sleep(rng.uniform(0.0, duration * 1.2))
            proc.send_signal(signal.SIGKILL)
            rc = proc.wait()
        outcomes["completed" if rc == 0 else "killed"] += 1
        with ConfigStore.open(data) as store:
            assert store.integrity_ok()
            current = without_passwords(store.document())
            match = [t for t, exp in expected.items() if exp == current]
            assert match, f"iteration {i}: the configuration is neither A nor B"
            seen.add(match[0])
            users = store.document()["users"]
            assert all(u["sip_password"] for u in users)
    assert outcomes["killed"] >= 10, outcomes  # the kills really interrupted imports
    assert seen == {"A", "B"}  # and imports really went through in between
