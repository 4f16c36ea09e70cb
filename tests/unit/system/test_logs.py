"""Log lines are structured: logfmt with the record's extra fields."""

from __future__ import annotations

import logging

from firmware.system.logs import LogfmtFormatter


def test_logfmt_carries_extras_and_quotes() -> None:
    record = logging.makeLogRecord(
        {
            "name": "firmware.x",
            "levelname": "ERROR",
            "msg": "service crashed",
            "service": "web",
            "why": 'a "b" c',
        }
    )
    line = LogfmtFormatter().format(record)
    assert (
        'level=error logger=firmware.x msg="service crashed" service=web why="a \\"b\\" c"' in line
    )
    assert line.startswith("ts=") and "\n" not in line
