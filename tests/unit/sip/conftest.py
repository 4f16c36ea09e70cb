"""Fixtures for the SIP message layer tests: the RFC 4475 torture messages.

The messages live in ../shared/sip-torture beside the repository (CI places a copy of
shared/ there); they are test data we must not copy into the repo. A test asking for
``torture_case`` runs once per manifest row.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pytest

TORTURE_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "sip-torture"


@dataclass(frozen=True)
class TortureCase:
    name: str
    section: str
    expected: str  # "valid" | "invalid"
    note: str
    data: bytes

    @property
    def liberal_ok(self) -> bool:
        return "[liberal-ok]" in self.note

    @property
    def may_400(self) -> bool:
        return "[400-ok]" in self.note


def _manifest() -> list[dict[str, str]]:
    with (TORTURE_DIR / "manifest.tsv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "torture_name" in metafunc.fixturenames:
        names = [row["name"] for row in _manifest()] if TORTURE_DIR.is_dir() else ["missing"]
        metafunc.parametrize("torture_name", names)


@pytest.fixture(scope="session")
def torture_cases() -> dict[str, TortureCase]:
    """Every torture message by name (fails loudly when the shared data is absent)."""
    if not TORTURE_DIR.is_dir():
        pytest.fail(f"RFC 4475 torture messages not found at {TORTURE_DIR}")
    return {
        row["name"]: TortureCase(
            row["name"],
            row["section"],
            row["expected"],
            row["note"],
            (TORTURE_DIR / f"{row['name']}.dat").read_bytes(),
        )
        for row in _manifest()
    }


@pytest.fixture
def torture_case(torture_cases: dict[str, TortureCase], torture_name: str) -> TortureCase:
    return torture_cases[torture_name]


@pytest.fixture
def torture(torture_cases: dict[str, TortureCase]) -> dict[str, bytes]:
    """name -> raw bytes, for spot checks."""
    return {name: case.data for name, case in torture_cases.items()}
