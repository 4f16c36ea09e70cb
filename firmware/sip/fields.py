"""Parsed views of header field values: name-addr, Via, CSeq, media types, numbers.

Each parser takes the trimmed, unfolded text of one value (comma lists are already
split) and returns an immutable object, so a parsed view cached on a message can be
handed out freely. Build new header text with ``str(obj)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from firmware.sip.errors import MAX_VIA_COUNT, SipParseError
from firmware.sip.memo import remember
from firmware.sip.syntax import (
    EMPTY_PARAMS,
    QUOTED_RE,
    TOKEN_CLASS,
    Params,
    is_token,
    parse_params,
    quote,
    unquote,
)
from firmware.sip.uri import Uri, format_host, parse_host, parse_port, parse_uri

MAX_UINT32 = 2**32 - 1

_DISPLAY_TOKENS_RE = re.compile(rf"(?:[{TOKEN_CLASS}]++[ \t]*+)*<")
_LAQUOT_RE = re.compile(r"[ \t]*+<")
_ADDR_SPEC_RE = re.compile(r'[^ \t;,?<>"]++')
_VIA_RE = re.compile(
    rf"([{TOKEN_CLASS}]++)[ \t]*+/[ \t]*+([{TOKEN_CLASS}]++)[ \t]*+/[ \t]*+([{TOKEN_CLASS}]++)"
    r"[ \t]++(\[[0-9A-Fa-f:.]++\]|[A-Za-z0-9_.\-]++)(?:[ \t]*+:[ \t]*+([0-9]++))?[ \t]*+"
)
_CSEQ_RE = re.compile(rf"([0-9]++)[ \t]++([{TOKEN_CLASS}]++)")
_MEDIA_TYPE_RE = re.compile(rf"([{TOKEN_CLASS}]++)[ \t]*+/[ \t]*+([{TOKEN_CLASS}]++)[ \t]*+")
_CALL_ID_RE = re.compile(r"[!-~]++")
_Q_RE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
_DATE_RE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT"
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class NameAddr:
    """From, To, Contact, Route, Record-Route...: [display name] <URI> ;params."""

    uri: Uri
    display_name: str | None = None
    params: Params = EMPTY_PARAMS

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        """A copy with ``;tag=`` set, e.g. the To of a response."""
        # the constructor directly: dataclasses.replace costs a field walk per call
        return type(self)(self.uri, self.display_name, self.params.with_param("tag", tag))

    @property
    def expires(self) -> int | None:
        """Contact ``expires`` parameter (RFC 3261 §10.2.1), clamped to 2**32-1."""
        value = self.params.get("expires")
        return None if value is None else parse_uint(value, "expires", MAX_UINT32, clamp=True)

    @property
    def q(self) -> float | None:
        """Contact ``q`` preference, 0 to 1."""
        value = self.params.get("q")
        if value is None:
            return None
        if _Q_RE.fullmatch(value) is None:
            raise SipParseError("malformed q parameter")
        return float(value)

    def __str__(self) -> str:
        display = "" if self.display_name is None else quote(self.display_name) + " "
        return f"{display}<{self.uri}>{self.params}"


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value: sent-protocol, sent-by and parameters (RFC 3261 §20.42, RFC 3581)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = EMPTY_PARAMS
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport_requested(self) -> bool:
        """The sender asked for symmetric response routing (``;rport``)."""
        return "rport" in self.params

    @property
    def rport(self) -> int | None:
        """The port filled in by the server, when ``rport`` has a value."""
        value = self.params.get("rport")
        return parse_port(value) if value else None

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def ttl(self) -> int | None:
        value = self.params.get("ttl")
        return None if value is None else parse_uint(value, "ttl", 255)

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host, self.port

    def with_param(self, name: str, value: str | None = None) -> Via:
        """A copy with a parameter set: ``received=``, ``rport=`` on the way in."""
        params = self.params.with_param(name, value)
        return type(self)(self.transport, self.host, self.port, params, self.protocol)

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {format_host(self.host)}{port}{self.params}"


@dataclass(frozen=True, slots=True)
class CSeq:
    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


@dataclass(frozen=True, slots=True)
class MediaType:
    """Content-Type: type/subtype;params. ``mime`` is the lower-cased comparable part."""

    type: str
    subtype: str
    params: Params = EMPTY_PARAMS

    @property
    def mime(self) -> str:
        return f"{self.type}/{self.subtype}".lower()

    def __str__(self) -> str:
        return f"{self.type}/{self.subtype}{self.params}"


# memo tables (see `firmware.sip.memo`)
_NAME_ADDR_CACHE: dict[tuple[str, bool], NameAddr] = {}
#: The parsed ``[display] <URI>`` part of name-addrs, by its text up to the closing
#: '>'. A call's From and To differ from the last call's only in the tag after it.
_ADDR_HEAD_CACHE: dict[str, tuple[Uri, str | None]] = {}
#: Via sent-protocol and sent-by (transport, host, port, protocol) by the text before
#: the first ';': one per peer, while the branch after it is new in every message.
_VIA_HEAD_CACHE: dict[str, tuple[str, str, int | None, str]] = {}
_CSEQ_CACHE: dict[str, CSeq] = {}


def parse_name_addr(value: str, *, brackets: bool = False) -> NameAddr:
    """``(name-addr / addr-spec) *(SEMI param)``; ``brackets`` demands the name-addr form.

    Without <>, parameters belong to the header, not to the URI (RFC 3261 §20.10),
    and the URI cannot contain ``;``, ``,`` or ``?``. The result is immutable and
    cached by its text: a dialog's From and To come back in every message of the call.
    """
    key = (value, brackets)
    addr = _NAME_ADDR_CACHE.get(key)
    if addr is None:
        # A cached head was parsed from these very characters, and its parse ends at
        # its '>' whatever follows, so only the parameters after it are left to parse.
        close = value.find(">")
        head = _ADDR_HEAD_CACHE.get(value[: close + 1]) if close > 0 else None
        if head is None:
            addr = _parse_name_addr(value, brackets)
        else:
            addr = NameAddr(head[0], head[1], parse_params(value, close + 1))
        remember(_NAME_ADDR_CACHE, key, addr)
    return addr


def _parse_name_addr(value: str, brackets: bool) -> NameAddr:
    if not value:
        raise SipParseError("empty address")
    display: str | None
    if value[0] == '"':
        m = QUOTED_RE.match(value)
        if m is None:
            raise SipParseError("unterminated quoted display name")
        display = unquote(m.group())
        m = _LAQUOT_RE.match(value, m.end())
        if m is None:
            raise SipParseError("quoted display name without <URI>")
        pos = m.end() - 1
    else:
        m = _DISPLAY_TOKENS_RE.match(value)
        if m is None:
            if brackets:
                raise SipParseError("address must be in <...>")
            m = _ADDR_SPEC_RE.match(value)
            if m is None:
                raise SipParseError("malformed address")
            return NameAddr(parse_uri(m.group()), None, parse_params(value, m.end()))
        pos = m.end() - 1
        display = value[:pos].rstrip(" \t") or None
    close = value.find(">", pos)
    if close < 0:
        raise SipParseError("missing '>' in address")
    uri = parse_uri(value[pos + 1 : close])
    remember(_ADDR_HEAD_CACHE, value[: close + 1], (uri, display))
    return NameAddr(uri, display, parse_params(value, close + 1))


def parse_via(value: str) -> Via:
    """``sent-protocol LWS sent-by *(SEMI via-params)``; whitespace allowed around / and :."""
    semi = value.find(";")
    head = value if semi < 0 else value[:semi]
    known = _VIA_HEAD_CACHE.get(head)
    if known is not None:  # these characters parsed before, up to where params begin
        params = parse_params(value, len(head))
        if "branch" in params and not params["branch"]:
            raise SipParseError("empty Via branch")
        return Via(known[0], known[1], known[2], params, known[3])
    m = _VIA_RE.match(value)
    if m is None:
        raise SipParseError("malformed Via")
    name, version, transport, host, port = m.groups()
    params = parse_params(value, m.end())
    if "branch" in params and not params["branch"]:
        raise SipParseError("empty Via branch")
    via = Via(
        transport.upper(),
        parse_host(host),
        None if port is None else parse_port(port),
        params,
        f"{name.upper()}/{version}",
    )
    if m.end() == len(head):  # the match cannot reach past a ';': all of head is parsed
        remember(_VIA_HEAD_CACHE, head, (via.transport, via.host, via.port, via.protocol))
    return via


def parse_sent_by(value: str) -> tuple[str, str, int | None]:
    """Transport, host and port of a Via value, ignoring what follows them.

    Enough to answer a request whose Via parameters are what is broken (badinv01).
    """
    m = _VIA_RE.match(value)
    if m is None:
        raise SipParseError("malformed Via")
    port = m.group(5)
    return m.group(3).upper(), parse_host(m.group(4)), None if port is None else parse_port(port)


def parse_vias(values: list[str]) -> tuple[Via, ...]:
    if len(values) > MAX_VIA_COUNT:
        raise SipParseError("too many Via header fields")
    if len(values) == 1:
        return (parse_via(values[0]),)
    return tuple([parse_via(v) for v in values])


def parse_cseq(value: str) -> CSeq:
    """``1*DIGIT LWS Method``; the number must fit 32 bits (RFC 3261 §8.1.1.5)."""
    cseq = _CSEQ_CACHE.get(value)  # immutable, and "1 INVITE" starts every call
    if cseq is None:
        m = _CSEQ_RE.fullmatch(value)
        if m is None:
            raise SipParseError("malformed CSeq")
        cseq = remember(
            _CSEQ_CACHE, value, CSeq(parse_uint(m.group(1), "CSeq", MAX_UINT32), m.group(2))
        )
    return cseq


def parse_uint(value: str, what: str, maximum: int, *, clamp: bool = False) -> int:
    """Decimal digits only; above ``maximum`` is an error, or ``maximum`` when clamping."""
    if not (value.isascii() and value.isdigit()):  # isdigit alone takes other scripts' digits
        raise SipParseError(f"malformed {what}")
    if len(value) > 12 or int(value) > maximum:
        if clamp:
            return maximum
        raise SipParseError(f"{what} out of range")
    return int(value)


def parse_media_type(value: str) -> MediaType:
    m = _MEDIA_TYPE_RE.match(value)
    if m is None:
        raise SipParseError("malformed media type")
    return MediaType(m.group(1), m.group(2), parse_params(value, m.end()))


def check_call_id(value: str) -> str:
    """Call-ID: printable ASCII without spaces (a liberal reading of word ["@" word])."""
    if _CALL_ID_RE.fullmatch(value) is None:
        raise SipParseError("malformed Call-ID")
    return value


def parse_contact(value: str) -> NameAddr:
    """A Contact value: name-addr with ``expires`` and ``q`` checked when present."""
    contact = parse_name_addr(value)
    expires = contact.params.get("expires")
    if expires is not None:
        parse_uint(expires, "Contact expires", MAX_UINT32, clamp=True)
    q = contact.params.get("q")
    if q is not None and _Q_RE.fullmatch(q) is None:
        raise SipParseError("malformed Contact q")
    return contact


def parse_contacts(values: list[str]) -> tuple[NameAddr, ...] | Literal["*"]:
    """Contact values, or "*" (REGISTER removing every binding)."""
    if "*" in values:
        if len(values) != 1:
            raise SipParseError("Contact '*' combined with other contacts")
        return "*"
    return tuple(parse_contact(v) for v in values)


def parse_tokens(values: list[str]) -> tuple[str, ...]:
    """Option tags and methods (Require, Supported, Allow, ...); the list may be empty."""
    if len(values) == 1 and not values[0]:
        return ()
    for v in values:
        if not is_token(v):
            raise SipParseError("malformed token list")
    return tuple(values)


def parse_date(value: str) -> datetime:
    """RFC 1123 date, GMT only (RFC 3261 §20.17)."""
    m = _DATE_RE.fullmatch(value)
    if m is None:
        raise SipParseError("malformed Date")
    day, month, year, hour, minute, second = m.groups()
    try:
        return datetime(
            int(year), _MONTHS.index(month) + 1, int(day), int(hour), int(minute), int(second),
            tzinfo=UTC,
        )  # fmt: skip
    except ValueError:
        raise SipParseError("impossible Date") from None
