"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966) and opaque absolute URIs.

Components are stored as received (escapes intact) so a URI is forwarded byte for
byte; comparison follows RFC 3261 §19.1.4, which decodes %-escapes of unreserved
characters, ignores the case of everything but user and password, and has special
rules for parameters. That comparison is not transitive, so the hash covers only
scheme, user, password, host and port.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import string
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote as _url_unquote

from firmware.sip.errors import MAX_PARAM_COUNT, MAX_URI_LENGTH, SipParseError
from firmware.sip.memo import CACHE_SIZE as CACHE_SIZE  # the tables' bound (re-exported)
from firmware.sip.memo import remember
from firmware.sip.syntax import Params

UNRESERVED = frozenset(string.ascii_letters + string.digits + "-_.!~*'()")

_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_USER_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%&=+$,;?/]++")
_PASSWORD_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%&=+$,]*+")
_PARAMCHARS_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%\[\]/:&+$]++")
_HNAME_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%\[\]/?:+$]++")
_HVALUE_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%\[\]/?:+$]*+")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_\-]++(?:\.[A-Za-z0-9_\-]++)*\.?")
_PORT_RE = re.compile(r"[0-9]{1,5}")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*+")
_OPAQUE_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%;/?:@&=+$,\[\]#]++")
_TEL_NUMBER_RE = re.compile(r"[0-9A-Fa-f*#+\-.()pPwW%]++")
_TEL_SEPARATORS = str.maketrans("", "", "-.()")
# Parameters that make two URIs differ when only one of them has it (§19.1.4).
_MUST_MATCH_PARAMS = ("user", "ttl", "method", "maddr")


def _normalize_escape(m: re.Match[str]) -> str:
    ch = chr(int(m.group(1), 16))
    return ch if ch in UNRESERVED else "%" + m.group(1).upper()


def normalize_escapes(text: str) -> str:
    """Decode %-escapes of unreserved characters, upper-case the rest (§19.1.4 form)."""
    return _ESCAPE_RE.sub(_normalize_escape, text) if "%" in text else text


def unescape(text: str) -> str:
    """Decode every %-escape (UTF-8; invalid sequences kept as surrogate escapes)."""
    return _url_unquote(text, errors="surrogateescape") if "%" in text else text


def _check_escapes(text: str) -> None:
    if "%" in text and _BAD_ESCAPE_RE.search(text):
        raise SipParseError("malformed %-escape in URI")


def _uri_param_key(name: str) -> str:
    return normalize_escapes(name).lower()


class UriParams(Params):
    """URI parameters: names compare case-insensitively and with escapes decoded."""

    __slots__ = ()
    _key = staticmethod(_uri_param_key)

    # Keyed lookups only (not the raw-name-first of Params): decoding escapes is not
    # idempotent ("%%34%31" -> "%41" -> "a"), so a raw hit could miss the keyed entry.
    def __getitem__(self, name: str) -> str | None:
        return self._items[self._key(name)][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._items

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        item = self._items.get(self._key(name))
        return default if item is None else item[1]


EMPTY_URI_PARAMS = UriParams()


#: Parsed URIs and hosts by their text (see `firmware.sip.memo`).
_URI_CACHE: dict[str, Uri] = {}
_HOST_CACHE: dict[str, str] = {}


def parse_host(text: str) -> str:
    """Validate a host; an IPv6 reference comes back without its brackets."""
    host = _HOST_CACHE.get(text)
    if host is None:
        host = remember(_HOST_CACHE, text, _parse_host(text))
    return host


def _parse_host(text: str) -> str:
    if text.startswith("["):
        inner = text[1:-1]
        if not text.endswith("]") or "%" in inner:
            raise SipParseError("malformed IPv6 reference")
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise SipParseError("malformed IPv6 address") from None
        return inner
    if _HOSTNAME_RE.fullmatch(text) is None:
        raise SipParseError("malformed host")
    if text[-1].isdigit() and text.replace(".", "").isdigit():
        octets = text.split(".")
        if len(octets) != 4 or any(len(o) > 3 or int(o) > 255 for o in octets):
            raise SipParseError("malformed IPv4 address")
    return text


def parse_port(text: str) -> int:
    """A port number 0-65535."""
    if _PORT_RE.fullmatch(text) is None or int(text) > 65535:
        raise SipParseError("malformed port")
    return int(text)


def format_host(host: str) -> str:
    """A host as written in a URI or Via: IPv6 addresses get their brackets back."""
    return f"[{host}]" if ":" in host else host


def _hosts_equal(a: str, b: str) -> bool:
    if ":" in a and ":" in b:
        try:
            return ipaddress.IPv6Address(a) == ipaddress.IPv6Address(b)
        except ValueError:
            return False
    return a.lower() == b.lower()


@dataclass(frozen=True, slots=True, eq=False)
class SipUri:
    """A sip:, sips: or tel: URI. For tel: the number is ``user`` and ``host`` is empty.

    Constructing one directly trusts the caller; `parse_uri` validates.
    """

    scheme: str = "sip"
    user: str | None = None
    host: str = ""
    port: int | None = None
    params: UriParams = EMPTY_URI_PARAMS
    headers: tuple[tuple[str, str], ...] = ()
    password: str | None = None
    _text: str | None = field(default=None, init=False, repr=False)

    def __str__(self) -> str:
        text = self._text
        if text is None:
            text = self._build()
            object.__setattr__(self, "_text", text)
        return text

    def _build(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user}{self.params}"
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out += (":", self.password)
            out.append("@")
        out.append(format_host(self.host))
        if self.port is not None:
            out += (":", str(self.port))
        out.append(str(self.params))
        if self.headers:
            out += ("?", "&".join(f"{n}={v}" for n, v in self.headers))
        return "".join(out)

    def replace(self, **changes: Any) -> SipUri:
        """A modified copy (its text is rebuilt from the components)."""
        return dataclasses.replace(self, **changes)

    @property
    def transport(self) -> str | None:
        """The transport parameter, lower-cased."""
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def lr(self) -> bool:
        """Loose routing flag (RFC 3261 §16.12)."""
        return "lr" in self.params

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def secure(self) -> bool:
        return self.scheme == "sips"

    @property
    def address_of_record(self) -> str:
        """Canonical AOR key (RFC 3261 §10.3): no parameters, escapes normalized."""
        if self.scheme == "tel":
            return "tel:" + normalize_escapes(self.user or "").translate(_TEL_SEPARATORS)
        user = normalize_escapes(self.user) + "@" if self.user is not None else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}:{user}{format_host(self.host.lower())}{port}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SipUri):
            return NotImplemented
        if self.scheme != other.scheme:
            return False
        if self.scheme == "tel":
            return self._tel_key() == other._tel_key() and self._param_map() == other._param_map()
        if (
            _opt_norm(self.user) != _opt_norm(other.user)
            or _opt_norm(self.password) != _opt_norm(other.password)
            or self.port != other.port
            or not _hosts_equal(self.host, other.host)
        ):
            return False
        mine, theirs = self._param_map(), other._param_map()
        for name in mine.keys() & theirs.keys():
            if mine[name] != theirs[name]:
                return False
        for name in _MUST_MATCH_PARAMS:
            if (name in mine) != (name in theirs):
                return False
        return self._header_map() == other._header_map()

    def __hash__(self) -> int:
        if self.scheme == "tel":
            return hash(("tel", self._tel_key()))
        host = self.host.lower() if ":" not in self.host else "ipv6"
        return hash((self.scheme, _opt_norm(self.user), host, self.port))

    def _tel_key(self) -> str:
        return normalize_escapes(self.user or "").translate(_TEL_SEPARATORS).lower()

    def _param_map(self) -> dict[str, str | None]:
        return {
            normalize_escapes(n).lower(): None if v is None else normalize_escapes(v).lower()
            for n, v in self.params.items()
        }

    def _header_map(self) -> dict[str, str]:
        return {normalize_escapes(n).lower(): normalize_escapes(v) for n, v in self.headers}


def _opt_norm(text: str | None) -> str | None:
    return None if text is None else normalize_escapes(text)


@dataclass(frozen=True, slots=True, eq=False)
class AbsoluteUri:
    """A URI of another scheme (http:, urn:, an unknown one): kept opaque."""

    scheme: str
    opaque: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AbsoluteUri):
            return NotImplemented
        return self.scheme.lower() == other.scheme.lower() and self.opaque == other.opaque

    def __hash__(self) -> int:
        return hash((self.scheme.lower(), self.opaque))


Uri = SipUri | AbsoluteUri


def parse_uri(text: str) -> Uri:
    """Parse a URI; sip/sips/tel into `SipUri`, any other scheme into `AbsoluteUri`.

    URIs are immutable: the same text gives the same (cached) object.
    """
    uri = _URI_CACHE.get(text)
    if uri is None:
        uri = remember(_URI_CACHE, text, _parse_uri(text))
    return uri


def _parse_uri(text: str) -> Uri:
    if len(text) > MAX_URI_LENGTH:
        raise SipParseError("URI too long")
    colon = text.find(":")
    if colon <= 0:
        raise SipParseError("URI without a scheme")
    scheme = text[:colon].lower()
    if scheme in ("sip", "sips"):
        uri = _parse_sip(scheme, text, colon + 1)
    elif scheme == "tel":
        uri = _parse_tel(text, colon + 1)
    else:
        opaque = text[colon + 1 :]
        if _SCHEME_RE.fullmatch(text[:colon]) is None or _OPAQUE_RE.fullmatch(opaque) is None:
            raise SipParseError("malformed URI")
        _check_escapes(opaque)
        return AbsoluteUri(text[:colon], opaque)
    object.__setattr__(uri, "_text", text)
    return uri


def _parse_sip(scheme: str, text: str, pos: int) -> SipUri:
    user = password = None
    at = text.find("@", pos)
    if at >= 0:
        user, sep, pw = text[pos:at].partition(":")
        if _USER_RE.fullmatch(user) is None:
            raise SipParseError("malformed user part in URI")
        _check_escapes(user)
        if sep:
            if _PASSWORD_RE.fullmatch(pw) is None:
                raise SipParseError("malformed password in URI")
            _check_escapes(pw)
            password = pw
        pos = at + 1
    end = len(text)
    semi = text.find(";", pos)
    qmark = text.find("?", pos)
    hp_end = min(i for i in (semi, qmark, end) if i >= 0)
    host, port = _parse_hostport(text[pos:hp_end])
    params = EMPTY_URI_PARAMS
    if hp_end == semi:
        params = _parse_uri_params(text[semi + 1 : qmark if qmark > semi else end])
    headers: tuple[tuple[str, str], ...] = ()
    if qmark >= 0:
        headers = _parse_uri_headers(text[qmark + 1 :])
    return SipUri(scheme, user, host, port, params, headers, password)


def _parse_hostport(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise SipParseError("malformed IPv6 reference")
        host = parse_host(text[: close + 1])
        rest = text[close + 1 :]
        if not rest:
            return host, None
        if rest[0] != ":":
            raise SipParseError("malformed host:port")
        return host, parse_port(rest[1:])
    host_text, sep, port_text = text.partition(":")
    host = parse_host(host_text)
    return host, parse_port(port_text) if sep else None


def _parse_uri_params(text: str) -> UriParams:
    if text.count(";") >= MAX_PARAM_COUNT:
        raise SipParseError("too many URI parameters")
    items: list[tuple[str, str | None]] = []
    for piece in text.split(";"):
        name, sep, value = piece.partition("=")
        if _PARAMCHARS_RE.fullmatch(name) is None or (
            sep and _PARAMCHARS_RE.fullmatch(value) is None
        ):
            raise SipParseError("malformed URI parameter")
        _check_escapes(piece)
        items.append((name, value if sep else None))
    return UriParams(items)


def _parse_uri_headers(text: str) -> tuple[tuple[str, str], ...]:
    if text.count("&") >= MAX_PARAM_COUNT:
        raise SipParseError("too many URI headers")
    items = []
    for piece in text.split("&"):
        name, sep, value = piece.partition("=")
        if not sep or _HNAME_RE.fullmatch(name) is None or _HVALUE_RE.fullmatch(value) is None:
            raise SipParseError("malformed URI header")
        _check_escapes(piece)
        items.append((name, value))
    return tuple(items)


def _parse_tel(text: str, pos: int) -> SipUri:
    semi = text.find(";", pos)
    number = text[pos:] if semi < 0 else text[pos:semi]
    if _TEL_NUMBER_RE.fullmatch(number) is None:
        raise SipParseError("malformed tel URI")
    _check_escapes(number)
    params = EMPTY_URI_PARAMS if semi < 0 else _parse_uri_params(text[semi + 1 :])
    return SipUri("tel", number, "", None, params)
