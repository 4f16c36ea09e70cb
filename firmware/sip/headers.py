"""Header field names and the `Headers` multi-dict.

Names are case-insensitive and have compact forms (RFC 3261 §7.3.3, §20); this module
maps them all to one canonical spelling. Header fields that RFC 3261 and its
extensions define as comma lists are split into one value each, so "Via: a, b" and
two Via lines look the same to the layers above; fields whose commas belong to the
value (WWW-Authenticate, Authorization, Date, unknown fields, ...) are never split.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from firmware.sip.errors import SipParseError
from firmware.sip.memo import remember
from firmware.sip.syntax import is_token, split_list

T = TypeVar("T")

#: Value may be a comma-separated list (split into one entry per element).
LIST = 1
#: At most one instance allowed (duplicates make the message invalid).
SINGLE = 2

#: Lists of plain tokens (methods, option tags, codings, languages): their elements are
#: kept one entry each, but adjacent ones go out on one line, as everyone writes them
#: (ten ``Allow:`` lines for one Allow list are legal, only longer to send and to read).
JOINED_ON_OUTPUT = frozenset(
    {
        "accept-encoding",
        "accept-language",
        "allow",
        "allow-events",
        "content-encoding",
        "content-language",
        "proxy-require",
        "require",
        "supported",
        "unsupported",
    }
)

COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

# Canonical spelling -> flags. Every name here is written this way on output.
_KNOWN: dict[str, int] = {
    "Accept": LIST,
    "Accept-Contact": LIST,
    "Accept-Encoding": LIST,
    "Accept-Language": LIST,
    "Accept-Resource-Priority": LIST,
    "Alert-Info": LIST,
    "Allow": LIST,
    "Allow-Events": LIST,
    "Authentication-Info": 0,
    "Authorization": 0,
    "Call-ID": SINGLE,
    "Call-Info": LIST,
    "Contact": LIST,
    "Content-Disposition": 0,
    "Content-Encoding": LIST,
    "Content-Language": LIST,
    "Content-Length": SINGLE,
    "Content-Type": 0,
    "CSeq": SINGLE,
    "Date": 0,
    "Diversion": LIST,
    "Error-Info": LIST,
    "Event": 0,
    "Expires": 0,
    "From": SINGLE,
    "History-Info": LIST,
    "Identity": 0,
    "Identity-Info": 0,
    "In-Reply-To": LIST,
    "Join": 0,
    "Max-Forwards": SINGLE,
    "MIME-Version": 0,
    "Min-Expires": 0,
    "Min-SE": 0,
    "Organization": 0,
    "P-Access-Network-Info": 0,
    "P-Asserted-Identity": LIST,
    "P-Associated-URI": LIST,
    "P-Called-Party-ID": 0,
    "P-Charging-Vector": 0,
    "P-Preferred-Identity": LIST,
    "Path": LIST,
    "Priority": 0,
    "Privacy": 0,
    "Proxy-Authenticate": 0,
    "Proxy-Authorization": 0,
    "Proxy-Require": LIST,
    "RAck": 0,
    "Reason": LIST,
    "Record-Route": LIST,
    "Refer-To": 0,
    "Referred-By": 0,
    "Reject-Contact": LIST,
    "Replaces": 0,
    "Reply-To": 0,
    "Request-Disposition": LIST,
    "Require": LIST,
    "Resource-Priority": LIST,
    "Retry-After": 0,
    "Route": LIST,
    "RSeq": 0,
    "Security-Client": LIST,
    "Security-Server": LIST,
    "Security-Verify": LIST,
    "Server": 0,
    "Service-Route": LIST,
    "Session-Expires": 0,
    "SIP-ETag": 0,
    "SIP-If-Match": 0,
    "Subject": 0,
    "Subscription-State": 0,
    "Supported": LIST,
    "Timestamp": 0,
    "To": SINGLE,
    "Unsupported": LIST,
    "User-Agent": 0,
    "Via": LIST,
    "Warning": LIST,
    "WWW-Authenticate": 0,
}

#: lookup spelling -> (key, canonical name, flags); the key is the lower-cased
#: canonical name. Holds canonical, lower-case and compact spellings, so the usual
#: header names resolve with one dict lookup and no lower().
NAME_TABLE: dict[str, tuple[str, str, int]] = {}
for _name, _flags in _KNOWN.items():
    NAME_TABLE[_name] = NAME_TABLE[_name.lower()] = (_name.lower(), _name, _flags)
for _short, _long in COMPACT_FORMS.items():
    NAME_TABLE[_short] = NAME_TABLE[_short.upper()] = NAME_TABLE[_long]
del _name, _flags, _short, _long


def name_info(name: str) -> tuple[str, str, int]:
    """(lookup key, canonical spelling, flags) for a header name; validates unknown ones."""
    info = NAME_TABLE.get(name)
    if info is None:
        info = NAME_TABLE.get(name.lower())
        if info is None:
            if not is_token(name):
                raise SipParseError(f"invalid header name {name[:40]!r}")
            info = (name.lower(), name, 0)
    return info


def canonical_name(name: str) -> str:
    """The spelling used on output: long form, canonical case (unknown names as given)."""
    return name_info(name)[1]


def _key(name: str) -> str:
    info = NAME_TABLE.get(name)
    return info[0] if info is not None else name_info(name)[0]


#: The entries of list values the box writes again and again (its Allow, Supported),
#: split once: (canonical name, value) -> entries. Bounded: emptied when full.
_SPLIT_CACHE: dict[tuple[str, str], tuple[tuple[str, str, str], ...]] = {}
_SPLIT_CACHE_SIZE = 256


def _split_entries(key: str, canonical: str, value: str) -> tuple[tuple[str, str, str], ...]:
    split = _SPLIT_CACHE.get((canonical, value))
    if split is None:
        split = tuple([(key, canonical, v) for v in split_list(value)])
        remember(_SPLIT_CACHE, (canonical, value), split, _SPLIT_CACHE_SIZE)
    return split


def _append(entries: list[tuple[str, str, str]], name: str, value: str) -> str:
    """Check one field and append it to ``entries`` (a list value split into its
    elements); returns its key."""
    _extend(entries, ((name, value),))
    return entries[-1][0]


def _extend(entries: list[tuple[str, str, str]], items: Iterable[tuple[str, str]]) -> None:
    """Check fields and append them to ``entries`` (a list value split into its
    elements), in one loop: messages are built in bulk."""
    table = NAME_TABLE
    append = entries.append
    for name, value in items:
        info = table.get(name)
        key, canonical, flags = info if info is not None else name_info(name)
        value = value.strip(" \t")
        if "\r" in value or "\n" in value or "\0" in value:
            raise ValueError(f"CR, LF or NUL in the value of {canonical}")
        if flags & LIST and "," in value:
            entries.extend(_split_entries(key, canonical, value))
        else:
            append((key, canonical, value))


class Headers:
    """Ordered multi-dict of header fields: (name, value) in message order.

    Lookups are case-insensitive and accept compact forms. Values are the text as
    received (unfolded, trimmed). Parsed views of a header (see `parsed`) are cached
    here and dropped when that header is changed, so a message is parsed once per
    field no matter how often the layers above look at it.
    """

    __slots__ = ("_cache", "_entries")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._entries: list[tuple[str, str, str]] = []  # (key, canonical name, value)
        self._cache: dict[str, tuple[object, object]] = {}
        _extend(self._entries, items)

    @classmethod
    def _from_entries(cls, entries: list[tuple[str, str, str]]) -> Headers:
        """Adopt entries produced by the parser (already validated and split)."""
        new = cls.__new__(cls)
        new._entries = entries
        new._cache = {}
        return new

    @staticmethod
    def _checked(name: str, value: str) -> tuple[str, str, list[str]]:
        """(key, canonical name, elements) of one field, checked as `_extend` does."""
        fields: list[tuple[str, str, str]] = []
        _extend(fields, ((name, value),))
        key, canonical, _ = fields[0]
        return key, canonical, [v for _, _, v in fields]

    # --- reading ---
    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``."""
        key = _key(name)
        for k, _, v in self._entries:
            if k == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in order (comma lists already split)."""
        key = _key(name)
        return [v for k, _, v in self._entries if k == key]

    def count(self, name: str) -> int:
        key = _key(name)
        return sum(1 for k, _, _ in self._entries if k == key)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = _key(name)
        for entry in self._entries:  # noqa: SIM110  (no generator frame on the hot path)
            if entry[0] == key:
                return True
        return False

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((n, v) for _, n, v in self._entries)

    def items(self) -> list[tuple[str, str]]:
        return [(n, v) for _, n, v in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def parsed(self, name: str, parse: Callable[[list[str]], T]) -> T:
        """``parse(get_all(name))``, computed once and cached until ``name`` changes."""
        return self.parsed_key(_key(name), parse)

    def parsed_key(self, key: str, parse: Callable[[list[str]], T]) -> T:
        """`parsed` by lookup key (the lower-cased canonical name): the hot path of the
        message properties, which know their key."""
        cached = self._cache.get(key)
        if cached is not None and cached[0] is parse:
            return cached[1]  # type: ignore[return-value]  # stored by this very parse
        value = parse([v for k, _, v in self._entries if k == key])
        self._cache[key] = (parse, value)
        return value

    def _prime(self, key: str, parse: Callable[[list[str]], object], value: object) -> None:
        """Store a value the parser already computed while validating the message."""
        self._cache[key] = (parse, value)

    # --- writing ---
    def add(self, name: str, value: str) -> None:
        """Append a header field (a list value is split into its elements)."""
        key = _append(self._entries, name, value)
        if self._cache:
            self._cache.pop(key, None)

    def prepend(self, name: str, value: str) -> None:
        """Insert before the first ``name`` field (or at the top): Via, Record-Route."""
        key, canonical, values = self._checked(name, value)
        entries = self._entries
        index = 0
        for i, entry in enumerate(entries):
            if entry[0] == key:
                index = i
                break
        if len(values) == 1:
            entries.insert(index, (key, canonical, values[0]))
        else:
            entries[index:index] = [(key, canonical, v) for v in values]
        if self._cache:
            self._cache.pop(key, None)

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` field by this value, where the first one was."""
        key, canonical, values = self._checked(name, value)
        index = next((i for i, e in enumerate(self._entries) if e[0] == key), None)
        if index is not None:
            canonical = self._entries[index][1]  # an unknown name keeps its spelling
        self._entries = [e for e in self._entries if e[0] != key]
        new = [(key, canonical, v) for v in values]
        if index is None:
            self._entries.extend(new)
        else:
            self._entries[index:index] = new
        self._cache.pop(key, None)

    def remove(self, name: str) -> int:
        """Delete every ``name`` field; returns how many there were."""
        key = _key(name)
        before = len(self._entries)
        self._entries = [e for e in self._entries if e[0] != key]
        self._cache.pop(key, None)
        return before - len(self._entries)

    def pop_first(self, name: str) -> str | None:
        """Remove and return the first ``name`` value (a proxy stripping its Via)."""
        key = _key(name)
        for i, entry in enumerate(self._entries):
            if entry[0] == key:
                del self._entries[i]
                self._cache.pop(key, None)
                return entry[2]
        return None

    def copy(self) -> Headers:
        new = Headers._from_entries(list(self._entries))
        new._cache = dict(self._cache)
        return new

    def __eq__(self, other: object) -> bool:
        """Same fields in the same order; Content-Length is framing, not content."""
        if not isinstance(other, Headers):
            return NotImplemented
        mine = [(k, v) for k, _, v in self._entries if k != "content-length"]
        theirs = [(k, v) for k, _, v in other._entries if k != "content-length"]
        return mine == theirs

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"
