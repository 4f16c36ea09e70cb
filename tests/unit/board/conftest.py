"""Fixtures for the board tests: a sim board that is always closed, and an fd counter."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from board.sim import SimBoard


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def sim_board(tmp_path: Path) -> Iterator[SimBoard]:
    board = SimBoard(tmp_path)
    try:
        yield board
    finally:
        board.close()
