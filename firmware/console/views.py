"""What the "show" commands print: plain text for an 80-column dumb terminal.

Text that did not come from us (error messages, config values) is made printable
first, so nothing shown can move the cursor or change the terminal's state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config import dump_yaml
from ..system.supervisor import ServiceStatus
from .backend import VersionInfo

MASK = "********"
_SECRET_KEYS = frozenset({"password", "secret"})
_SECRET_SUFFIXES = ("_password", "_secret")
_ERROR_WIDTH = 48


def is_secret(key: object) -> bool:
    """Keys whose values must never be shown (``sip_password``, a trunk's ``password``...)."""
    return isinstance(key, str) and (key in _SECRET_KEYS or key.endswith(_SECRET_SUFFIXES))


def mask_secrets(value: Any) -> Any:
    """A copy of ``value`` with every secret replaced by ``MASK``, at any depth."""
    if isinstance(value, dict):
        return {k: MASK if is_secret(k) else mask_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value


def config_yaml(document: dict[str, Any]) -> str:
    return dump_yaml(mask_secrets(document))


def printable(text: str, width: int | None = None) -> str:
    """First line of ``text``, control characters as "?", cut to ``width`` with "..."."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = "".join(c if c.isprintable() else "?" for c in line)
    if width is not None and len(line) > width:
        line = line[: width - 3] + "..."
    return line


def uptime(seconds: float) -> str:
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}d {clock}" if days else clock


def version(info: VersionInfo) -> str:
    return (
        f"Firmware:  Skillepunkt {printable(info.firmware)}\n"
        f"Board:     {printable(info.board)}\n"
        f"Hostname:  {printable(info.hostname)}\n"
        f"Uptime:    {uptime(info.uptime_s)}\n"
    )


def services(statuses: Sequence[ServiceStatus], overall: str) -> str:
    header = ("SERVICE", "STATE", "RESTARTS", "LAST ERROR")
    rows = [
        (
            printable(s.name),
            str(s.state),
            str(s.restarts),
            printable(s.last_error, _ERROR_WIDTH) if s.last_error else "-",
        )
        for s in statuses
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    lines = [
        f"{r[0].ljust(widths[0])}  {r[1].ljust(widths[1])}  {r[2].rjust(widths[2])}  {r[3]}"
        for r in [header, *rows]
    ]
    lines.append(f"Overall: {overall}")
    return "\n".join(line.rstrip() for line in lines) + "\n"
