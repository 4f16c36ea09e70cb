"""Importing a whole configuration document that arrived over the web (API or form).

It goes through exactly the checks of ``skillepunkt config import``: the strict YAML
loader, then ``ConfigStore.import_raw`` (schema and cross-references, one
transaction). JSON is held to the same strictness (duplicate keys are an error). On
any problem a ConfigError lists all of them and nothing changes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from enum import Enum
from typing import Any

from aiohttp import web

from ..config import ConfigError, Problem, load_yaml, validate
from .context import WebState
from .masking import unmask

log = logging.getLogger(__name__)

YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})
JSON_TYPES = frozenset({"application/json"})


class Syntax(Enum):
    YAML = "yaml"
    JSON = "json"


def syntax_of(content_type: str) -> Syntax | None:
    if content_type in YAML_TYPES:
        return Syntax.YAML
    if content_type in JSON_TYPES:
        return Syntax.JSON
    return None


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


async def read_bounded(request: web.Request, limit: int) -> bytes:
    """The request body, refused as soon as it is known to exceed ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def load_json(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem("", f"not UTF-8 text (byte {exc.start})")]) from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            [Problem("", f"malformed JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}")]
        ) from None
    except ValueError as exc:
        raise ConfigError([Problem("", f"malformed JSON: {exc}")]) from None


async def import_document(web_state: WebState, data: bytes | str, syntax: Syntax) -> int:
    """Parse, check and import; return the new revision or raise ConfigError (no change).

    Parsing a large YAML document is pure Python and can take a while, so it runs in a
    worker thread; the import itself stays on the event loop, where every other writer
    of the store runs, so no two writers ever share the database connection at once.
    """
    try:
        if syntax is Syntax.YAML:
            raw = await asyncio.to_thread(load_yaml, data)
        else:
            raw = await asyncio.to_thread(
                load_json, data.encode() if isinstance(data, str) else data
            )
        raw, mask_problems = unmask(raw)
        if mask_problems:
            problems = list(mask_problems)
            try:
                validate(raw)
            except ConfigError as exc:
                problems.extend(exc.problems)
            raise ConfigError(problems)
        revision = web_state.app.store.import_raw(raw, source="web")
    except ConfigError as exc:
        web_state.imports["rejected"] += 1
        log.info("configuration import rejected", extra={"problems": len(exc.problems)})
        raise
    web_state.imports["ok"] += 1
    log.info("configuration imported", extra={"revision": revision, "source": "web"})
    return revision
