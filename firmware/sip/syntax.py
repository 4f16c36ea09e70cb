"""Lexical building blocks of RFC 3261 §25 shared by the URI and header parsers.

Every pattern here runs in linear time: quantifiers are possessive or their
alternatives start with distinct characters, so a hostile 8 KiB header line cannot
make the regex engine backtrack exponentially. Scanning is done by compiled
patterns and str methods, not per-character Python loops.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping

from firmware.sip.errors import MAX_PARAM_COUNT, SipParseError

#: RFC 3261 token characters (inside a regex character class).
TOKEN_CLASS = r"A-Za-z0-9\-.!%*_+`'~"
TOKEN_RE = re.compile(f"[{TOKEN_CLASS}]++")
#: A quoted-string with quoted-pairs; DOTALL so a backslash may escape anything.
QUOTED = r'"[^"\\]*+(?:\\.[^"\\]*+)*"'
QUOTED_RE = re.compile(QUOTED, re.DOTALL)

# A header parameter: SEMI name [EQUAL value]. The value is a quoted string or a run
# of characters that cannot end a parameter (liberal: token, host and a bit more).
_HEADER_PARAM_RE = re.compile(
    rf"[ \t]*+;[ \t]*+([{TOKEN_CLASS}]++)"
    rf'(?:[ \t]*+=[ \t]*+({QUOTED}|[^ \t;,"<>=\\]++))?[ \t]*+',
    re.DOTALL,
)
_QUOTED_PAIR_RE = re.compile(r"\\(.)", re.DOTALL)
_NEEDS_ESCAPE_RE = re.compile(r'[\\"\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')
# One piece of a comma list that is not a comma: plain text, a quoted string, or <...>.
_LIST_PIECE_RE = re.compile(rf'[^,"<]++|{QUOTED}|<[^>]*+>', re.DOTALL)


def is_token(text: str) -> bool:
    """True when ``text`` is a non-empty RFC 3261 token."""
    return TOKEN_RE.fullmatch(text) is not None


def unquote(value: str) -> str:
    """The content of a quoted-string with quoted-pairs resolved; other text unchanged."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        inner = value[1:-1]
        return _QUOTED_PAIR_RE.sub(r"\1", inner) if "\\" in inner else inner
    return value


def quote(text: str) -> str:
    """``text`` as a quoted-string. CR and LF cannot be quoted (RFC 3261 quoted-pair)."""
    if "\r" in text or "\n" in text:
        raise ValueError("CR or LF cannot appear in a quoted string")
    return '"' + _NEEDS_ESCAPE_RE.sub(lambda m: "\\" + m.group(), text) + '"'


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value, not at commas inside quotes or <...>.

    Empty elements ("a,,b", a trailing comma) are rejected: RFC 3261 lists have none.
    """
    if "," not in value:
        return [value]
    if '"' not in value and "<" not in value:
        parts = [p.strip(" \t") for p in value.split(",")]
    else:
        parts = []
        begin = pos = 0
        end = len(value)
        match = _LIST_PIECE_RE.match
        while pos < end:
            if value[pos] == ",":
                parts.append(value[begin:pos].strip(" \t"))
                pos += 1
                begin = pos
                continue
            m = match(value, pos)
            if m is None:
                raise SipParseError("unbalanced quote or angle bracket")
            pos = m.end()
        parts.append(value[begin:].strip(" \t"))
    if "" in parts:
        raise SipParseError("empty element in a comma-separated list")
    return parts


class Params(Mapping[str, str | None]):
    """Ordered parameters with case-insensitive names, as received.

    Values are kept raw (a quoted value keeps its quotes; `unquote` it) so a header
    rebuilt from parsed parts says exactly what the peer said. A parameter without a
    value maps to None. Immutable: `with_param`/`without` return new objects, which
    keeps cached parsed headers consistent with their text.
    """

    __slots__ = ("_items",)
    _key: Callable[[str], str] = staticmethod(str.lower)  # C: no Python frame per lookup

    def __init__(self, items: Iterable[tuple[str, str | None]] = ()) -> None:
        found: dict[str, tuple[str, str | None]] = {}
        self._items = found
        key = self._key
        for name, value in items:
            k = key(name)
            if k in found:
                raise SipParseError(f"duplicate parameter {name!r}")
            found[k] = (name, value)

    # Lookups try the name as given first: the stack asks by the key spelling ("tag",
    # "branch"), and str.lower is idempotent, so a hit on the raw name is the entry
    # the keyed lookup finds (UriParams, whose key is not idempotent, overrides these).
    def __getitem__(self, name: str) -> str | None:
        item = self._items.get(name)
        if item is None:
            return self._items[self._key(name)][1]
        return item[1]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name in self._items or self._key(name) in self._items

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        item = self._items.get(name)
        if item is None:
            item = self._items.get(self._key(name))
            if item is None:
                return default
        return item[1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Params):
            return NotImplemented
        mine = {k: v for k, (_, v) in self._items.items()}
        theirs = {k: v for k, (_, v) in other._items.items()}
        return mine == theirs

    def __hash__(self) -> int:
        return hash(frozenset((k, v) for k, (_, v) in self._items.items()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._items.values())!r})"

    def __str__(self) -> str:
        if not self._items:
            return ""
        return "".join([
            f";{name}" if value is None else f";{name}={value}"
            for name, value in self._items.values()
        ])  # fmt: skip

    def with_param(self, name: str, value: str | None = None) -> Params:
        """A copy with ``name`` set (replacing it in place, or appended)."""
        k = self._key(name)
        items = dict(self._items)
        items[k] = (items[k][0] if k in items else name, value)
        return self._from_items(items)

    def without(self, name: str) -> Params:
        """A copy without ``name``."""
        items = dict(self._items)
        items.pop(self._key(name), None)
        return self._from_items(items)

    def _from_items(self, items: dict[str, tuple[str, str | None]]) -> Params:
        new = type(self).__new__(type(self))
        new._items = items
        return new


EMPTY_PARAMS = Params()


def parse_params(text: str, pos: int = 0) -> Params:
    """Header parameters ``*(SEMI generic-param)`` from ``text[pos:]`` to its end."""
    end = len(text)
    if pos >= end:
        return EMPTY_PARAMS
    items: list[tuple[str, str | None]] = []
    append = items.append
    match = _HEADER_PARAM_RE.match
    while pos < end:
        m = match(text, pos)
        if m is None:
            if not text[pos:].strip(" \t"):
                break
            raise SipParseError("malformed header parameter")
        append(m.group(1, 2))  # type: ignore[arg-type]  # (name, value or None)
        if len(items) > MAX_PARAM_COUNT:
            raise SipParseError("too many header parameters")
        pos = m.end()
    return Params(items)
