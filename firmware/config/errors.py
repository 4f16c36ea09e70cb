"""The one error type of the configuration package: every problem, each with its path."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    path: str  # e.g. "users[2].extension"; "" for the document itself
    reason: str

    def __str__(self) -> str:
        return f"{self.path or '(document)'}: {self.reason}"


class ConfigError(Exception):
    """A configuration document was rejected; ``problems`` lists every reason at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(set(problems), key=_natural)
        super().__init__("\n".join(str(p) for p in self.problems))


def _natural(p: Problem) -> tuple[object, ...]:
    import re

    return (*tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.path)), p.reason)
