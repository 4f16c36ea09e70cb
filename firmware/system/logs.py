"""Structured logging: journald fields on the box, one logfmt line per record elsewhere.

Every record carries its ``extra`` fields as structured data (journald fields upper-cased,
logfmt ``key=value`` pairs), so logs can be filtered by service, port or call.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


def _quote(value: Any) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\n\t'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"ts={ts}.{int(record.msecs):03d}Z",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={_quote(record.getMessage())}",
        ]
        parts += [f"{k}={_quote(v)}" for k, v in _extras(record).items()]
        if record.exc_info:
            parts.append(f"exc={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


def _journal_handler() -> logging.Handler | None:
    """journald when it is there (the box); None on a laptop or in CI."""
    if not os.path.exists("/run/systemd/journal/socket"):
        return None
    try:
        from systemd import journal
    except ImportError:
        return None

    class JournalFields(journal.JournalHandler):  # type: ignore[misc]
        def emit(self, record: logging.LogRecord) -> None:
            for key, value in _extras(record).items():
                setattr(record, key.upper(), value)
            super().emit(record)

    handler: logging.Handler = JournalFields(SYSLOG_IDENTIFIER="skillepunkt")
    return handler


def setup_logging(level: str = "INFO") -> str:
    """Install the root handler; returns "journald" or "stderr"."""
    root = logging.getLogger()
    root.handlers.clear()
    handler = _journal_handler()
    where = "journald"
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(LogfmtFormatter())
        where = "stderr"
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return where
