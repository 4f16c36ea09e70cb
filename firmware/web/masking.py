"""Secrets in exported configuration, and what happens when the mask comes back.

The secret fields are found in the schema itself (every ``SecretStr``), so a secret
added to the schema later is masked without anyone remembering to list it here.

A document fetched without ``?secrets=true`` shows each secret as ``MASK``. When such a
document is imported again, the mask must never become somebody's password:

* ``users[].sip_password``: the key is dropped, and the store then keeps that user's
  current password (or generates one for a new user). Editing the masked export and
  putting it back is therefore safe and keeps every phone registered.
* any other secret (``trunks[].password``): refused with a problem at its path. The
  store has no "keep" rule for those, and silently dropping the key would erase the
  carrier password; so the technician has to write the real one.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, SecretStr

from ..config import Document, Problem

MASK = "********"

Path = tuple[str, ...]  # "*" stands for every item of a list
KEPT_WHEN_MASKED: frozenset[Path] = frozenset({("users", "*", "sip_password")})


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types inside Annotated[...], Optional[...] and unions."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _secret_paths(model: type[BaseModel], prefix: Path = ()) -> list[Path]:
    paths: list[Path] = []
    for name, info in model.model_fields.items():
        for kind in _unwrap(info.annotation):
            if kind is SecretStr:
                paths.append((*prefix, name))
            elif typing.get_origin(kind) is list:
                for item in _unwrap(typing.get_args(kind)[0]):
                    if isinstance(item, type) and issubclass(item, BaseModel):
                        paths.extend(_secret_paths(item, (*prefix, name, "*")))
            elif isinstance(kind, type) and issubclass(kind, BaseModel):
                paths.extend(_secret_paths(kind, (*prefix, name)))
    return paths


SECRET_PATHS: tuple[Path, ...] = tuple(_secret_paths(Document))


def _visit(node: Any, path: Path, where: str) -> list[tuple[Any, str, str]]:
    """(container, key, display path) for every value at ``path`` that exists in ``node``."""
    if not path:
        return []
    head, rest = path[0], path[1:]
    if head == "*":
        if not isinstance(node, list):
            return []
        return [hit for i, item in enumerate(node) for hit in _visit(item, rest, f"{where}[{i}]")]
    if not isinstance(node, dict) or head not in node:
        return []
    here = f"{where}.{head}" if where else head
    if not rest:
        return [(node, head, here)]
    return _visit(node[head], rest, here)


def mask(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` with every secret that is set replaced by ``MASK``."""
    masked: dict[str, Any] = _copy(document)
    for path in SECRET_PATHS:
        for container, key, _ in _visit(masked, path, ""):
            if container[key] not in (None, ""):
                container[key] = MASK
    return masked


def unmask(raw: Any) -> tuple[Any, list[Problem]]:
    """Apply the rules above to an incoming document: (document to import, problems)."""
    if not isinstance(raw, dict):
        return raw, []
    cleaned: dict[str, Any] = _copy(raw)
    problems: list[Problem] = []
    for path in SECRET_PATHS:
        for container, key, where in _visit(cleaned, path, ""):
            if container[key] != MASK:
                continue
            if path in KEPT_WHEN_MASKED:
                del container[key]
            else:
                problems.append(
                    Problem(
                        where,
                        f"{MASK!r} is the mask of an exported secret, not a password: "
                        "write the real password here (or export with secrets)",
                    )
                )
    return cleaned, problems


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
