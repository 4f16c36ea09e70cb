"""SIP messages: the `Request`/`Response` model, the parser and the serializer.

Sans-I/O: bytes in, objects out, nothing else. `parse_message` splits the header
section once, maps names to canonical form, splits comma lists, and validates what
every message must get right before the transaction layer can touch it: the start
line, framing (Content-Length), UTF-8, control characters, and the header fields that
identify a transaction and route its responses (Via, From, To, Call-ID, CSeq,
Max-Forwards). Everything else is parsed on first access and cached; such an access
can raise `SipParseError` too, which the UAS answers with 400 via `make_response`.
`Message.validate` forces every parser this package has (tests and strict peers).

Invalid UTF-8 in the header section is rejected (400), as RFC 3261 §25 requires
UTF-8; the body is opaque bytes.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Literal, TypeVar

from firmware.sip.errors import (
    MAX_BODY_SIZE,
    MAX_DATAGRAM_SIZE,
    MAX_HEADER_COUNT,
    MAX_HEADER_SECTION,
    MAX_LINE_LENGTH,
    MAX_STREAM_MESSAGE_SIZE,
    SipParseError,
)
from firmware.sip.fields import (
    CSeq,
    MediaType,
    NameAddr,
    Via,
    check_call_id,
    parse_contacts,
    parse_cseq,
    parse_date,
    parse_media_type,
    parse_name_addr,
    parse_sent_by,
    parse_tokens,
    parse_uint,
    parse_vias,
)
from firmware.sip.headers import JOINED_ON_OUTPUT, LIST, NAME_TABLE, SINGLE, Headers, _extend
from firmware.sip.ids import random_hex
from firmware.sip.syntax import is_token, split_list
from firmware.sip.uri import SipUri, Uri, parse_uri

T = TypeVar("T")

REASON_PHRASES: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated", 200: "OK", 202: "Accepted",
    204: "No Notification", 300: "Multiple Choices", 301: "Moved Permanently",
    302: "Moved Temporarily", 305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    412: "Conditional Request Failed", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 417: "Unknown Resource-Priority", 420: "Bad Extension",
    421: "Extension Required", 422: "Session Interval Too Small", 423: "Interval Too Brief",
    428: "Use Identity Header", 429: "Provide Referrer Identity", 430: "Flow Failed",
    433: "Anonymity Disallowed", 436: "Bad Identity-Info", 437: "Unsupported Certificate",
    438: "Invalid Identity Header", 439: "First Hop Lacks Outbound Support",
    440: "Max-Breadth Exceeded", 469: "Bad Info Package", 470: "Consent Needed",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    494: "Security Agreement Required", 500: "Server Internal Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Server Time-out", 505: "Version Not Supported", 513: "Message Too Large",
    555: "Push Notification Service Not Supported", 580: "Precondition Failure",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable", 607: "Unwanted", 608: "Rejected",
}  # fmt: skip

_VERSION_RE = re.compile(r"SIP/[0-9]++\.[0-9]++", re.IGNORECASE)
_FOLD_RE = re.compile(r"\r\n[ \t]++")
_CTL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A line whose control characters (other than HTAB) are all quoted-pairs inside
# quoted strings, which is the only place RFC 3261 lets them be (intmeth's To).
_CLEAN_LINE_RE = re.compile(
    r'(?:[^"\x00-\x08\x0a-\x1f\x7f]++'
    r'|"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]++|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*")*'
)
_MANDATORY = ("via", "from", "to", "call-id", "cseq")
#: Methods known to be tokens (Request() checks others with the regex).
_METHODS = frozenset(
    ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "UPDATE", "INFO",
     "REFER", "NOTIFY", "SUBSCRIBE", "MESSAGE", "PUBLISH")
)  # fmt: skip
_CANONICAL = {"via": "Via", "from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq"}
_ANSWER_COPIES = ("from", "to", "call-id", "cseq")  # with every Via (§8.2.6.2)


def _required(parse: Callable[[str], T], what: str) -> Callable[[list[str]], T]:
    def one(values: list[str]) -> T:
        if len(values) != 1:
            raise SipParseError(f"{'missing' if not values else 'more than one'} {what}")
        return parse(values[0])

    return one


def _optional(parse: Callable[[str], T], what: str) -> Callable[[list[str]], T | None]:
    def one(values: list[str]) -> T | None:
        if len(values) > 1:
            raise SipParseError(f"more than one {what}")
        return parse(values[0]) if values else None

    return one


def _routes(values: list[str]) -> tuple[NameAddr, ...]:
    return tuple(parse_name_addr(v, brackets=True) for v in values)


def _name_addrs(values: list[str]) -> tuple[NameAddr, ...]:
    return tuple(parse_name_addr(v) for v in values)


_FROM = _required(parse_name_addr, "From")
_TO = _required(parse_name_addr, "To")
_CALL_ID = _required(check_call_id, "Call-ID")
_CSEQ = _required(parse_cseq, "CSeq")
_MAX_FORWARDS = _optional(lambda v: parse_uint(v, "Max-Forwards", 255), "Max-Forwards")
_CONTENT_LENGTH = _optional(
    lambda v: parse_uint(v, "Content-Length", MAX_BODY_SIZE), "Content-Length"
)
_EXPIRES = _optional(lambda v: parse_uint(v, "Expires", 2**32 - 1, clamp=True), "Expires")
_MIN_EXPIRES = _optional(lambda v: parse_uint(v, "Min-Expires", 2**32 - 1), "Min-Expires")
_CONTENT_TYPE = _optional(parse_media_type, "Content-Type")
_DATE = _optional(parse_date, "Date")
_SINGLE_ADDR = _optional(parse_name_addr, "address header")
# Address headers parsed only by `validate` (the layers above use `name_addrs`).
_ADDRESS_LISTS = ("P-Asserted-Identity", "P-Preferred-Identity")
_ROUTE_LISTS = ("Path", "Service-Route")
_SINGLE_ADDRESSES = ("Reply-To", "Refer-To", "Referred-By")
_TOKEN_LISTS = ("Require", "Proxy-Require", "Supported", "Unsupported", "Allow")


class Message(ABC):
    """What requests and responses share: headers, body and parsed header views."""

    __slots__ = ("body", "headers")

    def __init__(self, headers: Headers | Iterable[tuple[str, str]] | None, body: bytes) -> None:
        self.headers = headers if isinstance(headers, Headers) else Headers(headers or ())
        self.body = body if type(body) is bytes else bytes(body)

    @abstractmethod
    def start_line(self) -> str:
        """The Request-Line or Status-Line, without CRLF."""

    # --- parsed views (cached in self.headers; may raise SipParseError) ---
    @property
    def via(self) -> tuple[Via, ...]:
        return self.headers.parsed_key("via", parse_vias)

    @property
    def top_via(self) -> Via:
        vias = self.via
        if not vias:
            raise SipParseError("missing Via")
        return vias[0]

    @property
    def from_(self) -> NameAddr:
        return self.headers.parsed_key("from", _FROM)

    @property
    def to(self) -> NameAddr:
        return self.headers.parsed_key("to", _TO)

    @property
    def call_id(self) -> str:
        return self.headers.parsed_key("call-id", _CALL_ID)

    @property
    def cseq(self) -> CSeq:
        return self.headers.parsed_key("cseq", _CSEQ)

    @property
    def max_forwards(self) -> int | None:
        return self.headers.parsed_key("max-forwards", _MAX_FORWARDS)

    @property
    def content_length(self) -> int | None:
        """The Content-Length header (None when absent); `to_bytes` writes len(body)."""
        return self.headers.parsed_key("content-length", _CONTENT_LENGTH)

    @property
    def contact(self) -> tuple[NameAddr, ...] | Literal["*"]:
        """Contact values, or "*" for a REGISTER removing all bindings."""
        return self.headers.parsed_key("contact", parse_contacts)

    @property
    def route(self) -> tuple[NameAddr, ...]:
        return self.headers.parsed_key("route", _routes)

    @property
    def record_route(self) -> tuple[NameAddr, ...]:
        return self.headers.parsed_key("record-route", _routes)

    @property
    def content_type(self) -> MediaType | None:
        return self.headers.parsed_key("content-type", _CONTENT_TYPE)

    @property
    def expires(self) -> int | None:
        """Expires in seconds; values above 2**32-1 are clamped (RFC 3261 §20.19)."""
        return self.headers.parsed_key("expires", _EXPIRES)

    @property
    def min_expires(self) -> int | None:
        return self.headers.parsed_key("min-expires", _MIN_EXPIRES)

    @property
    def date(self) -> datetime | None:
        return self.headers.parsed_key("date", _DATE)

    @property
    def require(self) -> tuple[str, ...]:
        return self.headers.parsed("Require", parse_tokens)

    @property
    def proxy_require(self) -> tuple[str, ...]:
        return self.headers.parsed("Proxy-Require", parse_tokens)

    @property
    def supported(self) -> tuple[str, ...]:
        return self.headers.parsed("Supported", parse_tokens)

    @property
    def allow(self) -> tuple[str, ...]:
        return self.headers.parsed("Allow", parse_tokens)

    def name_addrs(self, name: str) -> tuple[NameAddr, ...]:
        """Any address-list header (P-Asserted-Identity, Path, Diversion...) parsed."""
        return self.headers.parsed(name, _name_addrs)

    def validate(self) -> None:
        """Parse every header field this package understands; raise on the first bad one."""
        for prop in (
            "via", "from_", "to", "call_id", "cseq", "max_forwards", "content_length",
            "contact", "route", "record_route", "content_type", "expires", "min_expires",
            "date",
        ):  # fmt: skip
            getattr(self, prop)
        for name in _TOKEN_LISTS:
            self.headers.parsed(name, parse_tokens)
        for name in _ADDRESS_LISTS:
            self.headers.parsed(name, _name_addrs)
        for name in _ROUTE_LISTS:
            self.headers.parsed(name, _routes)
        for name in _SINGLE_ADDRESSES:
            self.headers.parsed(name, _SINGLE_ADDR)

    # --- serializer ---
    def to_bytes(self) -> bytes:
        """Canonical wire form: long header names, CRLF, a correct Content-Length (where
        the first one was, else last); adjacent elements of a token list on one line."""
        out = [self.start_line()]
        length = ""
        previous = ""
        for key, name, value in self.headers._entries:
            if key == previous and key in JOINED_ON_OUTPUT:
                out[-1] += ", " + value
                continue
            previous = key
            if key != "content-length":
                out.append(f"{name}: {value}")
            elif not length:
                length = f"Content-Length: {len(self.body)}"
                out.append(length)
        if not length:
            out.append(f"Content-Length: {len(self.body)}")
        out.append("\r\n")
        return "\r\n".join(out).encode("utf-8", "surrogateescape") + self.body

    def __bytes__(self) -> bytes:
        return self.to_bytes()


class Request(Message):
    """A SIP request. ``uri`` may be given as text; it is parsed (and validated)."""

    __slots__ = ("method", "uri")

    def __init__(
        self,
        method: str,
        uri: Uri | str,
        headers: Headers | Iterable[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        if method not in _METHODS and not is_token(method):
            raise ValueError(f"invalid method {method!r}")
        super().__init__(headers, body)
        self.method = method
        self.uri: Uri = parse_uri(uri) if isinstance(uri, str) else uri

    def start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"

    def make_response(
        self,
        status: int,
        reason: str | None = None,
        *,
        to_tag: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Response:
        """A response with Via, From, To, Call-ID and CSeq copied (RFC 3261 §8.2.6.2).

        ``to_tag`` is added to To when it has none and the status is above 100.
        Extra ``headers`` are appended. Dialog-forming responses must also copy
        Record-Route (§12.1.1); that is the caller's business.
        """
        copied: list[tuple[str, str, str]] = []
        first: dict[str, tuple[str, str, str]] = {}
        for entry in self.headers._entries:
            key = entry[0]
            if key == "via":
                copied.append(entry)
            elif key in _ANSWER_COPIES and key not in first:
                first[key] = entry
        for key in _ANSWER_COPIES:
            entry = first.get(key)  # type: ignore[assignment]
            if entry is None:
                raise SipParseError(f"cannot answer a request without {_CANONICAL[key]}")
            if key == "to" and to_tag is not None and status > 100 and self.to.tag is None:
                entry = (key, entry[1], f"{entry[2]};tag={to_tag}")
            copied.append(entry)
        response = Response(status, reason, Headers._from_entries(copied), body)
        if headers:
            _extend(copied, headers)  # what Headers.add does, for all of them (no cache yet)
        return response

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return (
            self.method == other.method
            and str(self.uri) == str(other.uri)
            and self.headers == other.headers
            and self.body == other.body
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} ({len(self.headers)} headers, {len(self.body)} B body)>"


class Response(Message):
    """A SIP response; ``reason`` defaults to the standard phrase for ``status``."""

    __slots__ = ("reason", "status")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Headers | Iterable[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        if not 100 <= status <= 699:
            raise ValueError(f"invalid status code {status}")
        if reason is None:
            reason = REASON_PHRASES.get(status, "Unknown")
        elif "\r" in reason or "\n" in reason:
            raise ValueError("CR or LF in reason phrase")
        super().__init__(headers, body)
        self.status = status
        self.reason = reason

    def start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Response):
            return NotImplemented
        return (
            self.status == other.status
            and self.reason == other.reason
            and self.headers == other.headers
            and self.body == other.body
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} ({len(self.headers)} headers, {len(self.body)} B body)>"


# ---------------------------------------------------------------------------- parser


def parse_message(
    data: bytes | bytearray | memoryview, *, stream: bool = False
) -> Request | Response:
    """Parse one SIP message.

    Datagram (``stream=False``): the body is bounded by Content-Length, octets after it
    are ignored (RFC 3261 §18.3), no Content-Length means the rest of the datagram.
    Stream (``stream=True``): ``data`` is one message as cut by `firmware.sip.framing`;
    Content-Length is mandatory and must match exactly.

    Raises `SipParseError` and nothing else.
    """
    try:
        return _parse(bytes(data), stream)
    except SipParseError:
        raise
    except Exception as exc:  # safety net: a parser bug must not take the box down
        error = SipParseError(f"internal parser error ({type(exc).__name__})")
        error.internal = True
        raise error from exc


def _parse(raw: bytes, stream: bool) -> Request | Response:
    size = len(raw)
    if size > (MAX_STREAM_MESSAGE_SIZE if stream else MAX_DATAGRAM_SIZE):
        raise SipParseError("message too large", 513)
    start = 0
    if raw[:1] in (b"\r", b"\n"):  # CRLFs before the start line are ignored (§7.5)
        start = size - len(raw.lstrip(b"\r\n"))
    end = raw.find(b"\r\n\r\n", start, start + MAX_HEADER_SECTION)
    if end < 0:
        if size - start >= MAX_HEADER_SECTION:
            raise SipParseError("header section too large")
        raise SipParseError("no empty line after the header section")
    head_bytes = raw[start:end]
    try:
        head = head_bytes.decode("utf-8")
        bad_utf8 = False
    except UnicodeDecodeError:
        head = head_bytes.decode("utf-8", "surrogateescape")
        bad_utf8 = True
    crs = head.count("\r")
    if crs != head.count("\n") or crs != head.count("\r\n"):
        raise SipParseError("bare CR or LF in the header section")
    folded = "\r\n " in head or "\r\n\t" in head
    lines = (_FOLD_RE.sub(" ", head) if folded else head).split("\r\n")
    # All printable (no CR or LF is left in the lines) means no control character at
    # all, nor TAB or a surrogate escape: the regex runs only when there is one of those.
    has_ctl = not "".join(lines).isprintable() and _CTL_RE.search(head) is not None
    if len(lines) > MAX_HEADER_COUNT + 1:
        raise SipParseError("too many header fields")
    if len(head) > MAX_LINE_LENGTH and any(len(line) > MAX_LINE_LENGTH for line in lines):
        raise SipParseError("line too long")

    # Split the header fields. A bad field is remembered, not raised at once, so the
    # error still carries the headers a 400 needs.
    entries: list[tuple[str, str, str]] = []
    append = entries.append
    seen: dict[str, str] = {}
    problem: str | None = None
    table = NAME_TABLE
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            problem = problem or "header line without a colon"
            continue
        info = table.get(name)
        if info is None:
            name = name.rstrip(" \t")
            info = table.get(name) or table.get(name.lower())
            if info is None:
                if not is_token(name):
                    problem = problem or "malformed header name"
                    continue
                info = (name.lower(), name, 0)
        key, canonical, flags = info
        value = value.strip(" \t")
        if flags & SINGLE:
            if key in seen:
                problem = problem or f"more than one {canonical}"
                continue
            seen[key] = value
        if flags & LIST and "," in value:
            try:
                entries.extend((key, canonical, v) for v in split_list(value))
            except SipParseError as exc:
                problem = problem or f"{canonical}: {exc.reason}"
                append((key, canonical, value))
        else:
            append((key, canonical, value))
    if len(entries) > MAX_HEADER_COUNT:
        raise SipParseError("too many header fields")
    headers = Headers._from_entries(entries)
    vias = [e[2] for e in entries if e[0] == "via"]

    start_line = lines[0]
    first = start_line.partition(" ")[0]
    is_response = "/" in first
    method = None if is_response or not is_token(first) else first
    try:
        if is_response:
            status, reason = _parse_status_line(start_line)
        else:
            uri = _parse_request_line(start_line)
        if problem:
            raise SipParseError(problem)
        if bad_utf8:
            raise SipParseError("invalid UTF-8 in the header section")
        if has_ctl:
            for line in lines:
                if _CTL_RE.search(line) and not _CLEAN_LINE_RE.fullmatch(line):
                    raise SipParseError("control character in the header section")
        body = _body(raw, end + 4, seen.get("content-length"), stream)
        for key in _MANDATORY:
            if key not in seen and (key != "via" or not vias):
                raise SipParseError(f"missing {_CANONICAL[key]}")
        cache = headers._cache  # what the properties would compute, computed now
        cache["via"] = (parse_vias, parse_vias(vias))
        cache["from"] = (_FROM, parse_name_addr(seen["from"]))
        cache["to"] = (_TO, parse_name_addr(seen["to"]))
        cache["call-id"] = (_CALL_ID, check_call_id(seen["call-id"]))
        cseq = parse_cseq(seen["cseq"])
        cache["cseq"] = (_CSEQ, cseq)
        if "max-forwards" in seen:
            max_forwards = parse_uint(seen["max-forwards"], "Max-Forwards", 255)
            cache["max-forwards"] = (_MAX_FORWARDS, max_forwards)
        if is_response:  # the status line parser checked status and reason
            response = Response.__new__(Response)
            response.status, response.reason, response.headers, response.body = (
                status, reason, headers, body,
            )  # fmt: skip
            return response
        if method is None or cseq.method != method:
            raise SipParseError("CSeq method does not match the request method")
        request = Request.__new__(Request)
        request.method, request.uri, request.headers, request.body = method, uri, headers, body
        return request
    except SipParseError as exc:
        exc.method = method
        exc.headers = headers
        raise


def _parse_request_line(line: str) -> Uri:
    parts = line.split(" ")
    if len(parts) != 3 or "" in parts:
        raise SipParseError("malformed Request-Line")
    method, uri_text, version = parts
    if not is_token(method):
        raise SipParseError("malformed method")
    if version != "SIP/2.0" and version.upper() != "SIP/2.0":
        if _VERSION_RE.fullmatch(version):
            raise SipParseError("SIP version not supported", 505)
        raise SipParseError("malformed Request-Line")
    uri = parse_uri(uri_text)
    if isinstance(uri, SipUri) and uri.headers:
        raise SipParseError("header fields in the Request-URI")
    return uri


def _parse_status_line(line: str) -> tuple[int, str]:
    version, _, rest = line.partition(" ")
    if version.upper() != "SIP/2.0":
        raise SipParseError("SIP version not supported", 505)
    code, _, reason = rest.partition(" ")
    if len(code) != 3 or not code.isdigit() or not code.isascii() or code[0] not in "123456":
        raise SipParseError("malformed status code")
    return int(code), reason


def _body(raw: bytes, begin: int, length_text: str | None, stream: bool) -> bytes:
    available = len(raw) - begin
    if length_text is None:
        if stream:
            raise SipParseError("no Content-Length on a stream transport")
        return raw[begin:]
    length = parse_uint(length_text, "Content-Length", 2**32 - 1)
    if length > MAX_BODY_SIZE:
        raise SipParseError("body too large", 413)
    if length > available:
        raise SipParseError("body shorter than Content-Length")
    if stream and length < available:
        raise SipParseError("octets after the body")
    return raw[begin:] if length == available else raw[begin : begin + length]


def error_response(exc: SipParseError, *, to_tag: str | None = None) -> Response | None:
    """The response to a request the parser refused, or None: drop it silently.

    Answerable when the request line was recognisable (not ACK: never answered), the
    top Via parses (it is where the answer goes) and From, To, Call-ID and CSeq are
    present to copy; they are copied as received, even if malformed, since the
    client matches the response by Via branch and CSeq. ``to_tag`` (random if not
    given) is added to a To without one.
    """
    headers = exc.headers
    if exc.method is None or headers is None or exc.method == "ACK":
        return None
    vias = headers.get_all("via")
    if not vias or any(_CTL_RE.search(v) for v in vias):
        return None
    try:
        parse_sent_by(vias[0])
    except SipParseError:
        return None
    copied = [("via", "Via", v) for v in vias]
    for key in ("from", "to", "call-id", "cseq"):
        value = headers.get(key)
        if value is None or _CTL_RE.search(value):
            return None
        if key == "to":
            try:
                if parse_name_addr(value).tag is None:
                    value = f"{value};tag={to_tag or random_hex(6)}"
            except SipParseError:
                pass
        copied.append((key, _CANONICAL[key], value))
    return Response(exc.status, None, Headers._from_entries(copied))
