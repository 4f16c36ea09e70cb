"""Fixtures of the SIP interop tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from peers.sipp_rig import Rig, running_rig


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    """The box with a SIPp trunk caller and SIPp extensions around it."""
    with running_rig(tmp_path) as r:
        yield r
