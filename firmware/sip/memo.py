"""Bounded memo tables of the SIP parsers: parsed values by the text they came from.

The same few texts recur in every message (the box's, its phones' and trunks' URIs and
Via sent-bys, CSeq values, the list values the box writes) and what they parse into is
immutable, so each is parsed once. A table that fills up is emptied whole: no
bookkeeping on a hit, and a flood of new texts costs only their parsing.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

CACHE_SIZE = 4096


def remember(table: dict[K, V], key: K, value: V, size: int = CACHE_SIZE) -> V:
    """Store ``value`` under ``key`` (emptying ``table`` first when it holds ``size``)."""
    if len(table) >= size:
        table.clear()
    table[key] = value
    return value
