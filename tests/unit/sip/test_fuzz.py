"""Runs the atheris fuzz target for a bounded time, seeded with the RFC 4475 messages.

A clean exit means libFuzzer found nothing escaping the parser but SipParseError
(and no accepted message that fails to round-trip) within the budget.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TARGET = ROOT / "tests" / "fuzz" / "sip_parser_fuzz.py"
TORTURE_DIR = ROOT.parent / "shared" / "sip-torture"
SECONDS = 30

pytestmark = pytest.mark.slow


def test_fuzz_parser(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    seeds = sorted(TORTURE_DIR.glob("*.dat"))
    assert seeds, f"no torture messages in {TORTURE_DIR}"
    for seed in seeds:
        shutil.copy(seed, corpus / seed.name)
    result = subprocess.run(
        [
            sys.executable,
            str(TARGET),
            f"-max_total_time={SECONDS}",
            f"-dict={TARGET.parent / 'sip.dict'}",
            "-rss_limit_mb=2048",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
    )
    crashes = [
        p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-"))
    ]
    assert result.returncode == 0 and not crashes, result.stderr[-4000:]
    assert "Done " in result.stderr
