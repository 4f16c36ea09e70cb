"""JSON answers of the API, with one error shape everywhere.

Every error is ``{"error": "<one sentence>", "problems": [{"path", "reason"}...]}``, so a
client (or the web UI) can show a configuration's problems the same way whether they
came from the YAML parser, the schema, the cross-reference checks or the API itself.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from ..config import Problem

_dumps = functools.partial(json.dumps, ensure_ascii=False)


def json_ok(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


def json_error(
    status: int,
    error: str,
    problems: Iterable[Problem] = (),
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body = {"error": error, "problems": [{"path": p.path, "reason": p.reason} for p in problems]}
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)
