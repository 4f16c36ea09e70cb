"""Fixtures for whole-box tests: a real daemon in a subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from peers.box import Daemon, start_daemon, stop_daemon


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = start_daemon(tmp_path, watchdog=True)
    try:
        yield d
    finally:
        stop_daemon(d)
