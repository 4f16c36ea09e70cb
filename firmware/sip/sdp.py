"""SDP (RFC 4566) as a small mutable data model, plus the offer/answer helpers (RFC 3264)
an anchoring B2BUA needs.

Parsing is strict where a mistake would hurt (line syntax, numbers, the attributes we
interpret: rtpmap, fmtp, ptime, rtcp, crypto) and tolerant where real phones are sloppy
(LF or CRLF, trailing blanks, blank lines, session-level lines out of order, missing
``s=``/``t=``). Everything else, unknown attributes included, is kept in order so a
pass-through B2BUA changes only what it means to change. Bad input raises `SdpError`
and nothing else, within hard size limits, because the body comes from the network.

The model is mutable on purpose: a B2BUA edits SDP (ports, direction, codecs) field by
field. `rewrite_for_anchor` works on a copy so the peer's original stays comparable.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

from firmware.sip.ids import random_bits

# --- Hard limits. Exceeding one raises SdpError. ---
#: Whole body in bytes: an audio offer is ~300-800 B, WebRTC-style ones reach ~10 KiB.
MAX_SDP_SIZE = 32_768
#: Lines in the body (blank lines included).
MAX_LINES = 1_024
#: One line in characters (ICE candidates and crypto keys are well below).
MAX_LINE_LENGTH = 4_096
#: m= sections: a call has audio, maybe video/T.38; more is an attack or a bug.
MAX_MEDIA = 16
#: a= lines at session level, and per media section.
MAX_ATTRIBUTES = 128
#: Formats on one m= line (RTP has only 128 payload types).
MAX_FORMATS = 64

CRLF = "\r\n"
Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
DIRECTIONS: frozenset[str] = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})
#: ICE attributes point at the peer's own addresses; an anchor that kept them would let
#: the other side bypass the relay (and would leak LAN addresses to the trunk).
ICE_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "candidate",
        "remote-candidates",
        "end-of-candidates",
        "ice-ufrag",
        "ice-pwd",
        "ice-options",
        "ice-lite",
        "ice-mismatch",
        "ice-pacing",
    }
)

_TOKEN = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"
_TOKEN_RE = re.compile(_TOKEN)
_PROTO_RE = re.compile(rf"{_TOKEN}(?:/{_TOKEN})*")
_ADDRESS_RE = re.compile(r"[!-~]{1,255}")
_DIGITS_RE = re.compile(r"[0-9]{1,20}")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# controls but tab, LF and CR (`_Parser.run` finds a bare CR by counting)
_BODY_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_RTPMAP_RE = re.compile(r"([0-9]{1,3}) ([^/\s]{1,64})/([0-9]{1,9})(?:/([0-9]{1,3}))?")
_FMTP_RE = re.compile(r"(\S{1,64})(?: (.*))?")
_PTIME_RE = re.compile(r"[0-9]{1,5}(?:\.[0-9]{1,3})?")
_RTCP_RE = re.compile(rf"([0-9]{{1,5}})(?: ({_TOKEN}) ({_TOKEN}) ([!-~]{{1,255}}))?")
_CRYPTO_RE = re.compile(r"[0-9]{1,9} \S+ \S+(?: .*)?")
# The usual shape of a line, single blanks between plain fields; the parser checks a
# line field by field (and words the error) only when it does not match.
_ORIGIN_LINE_RE = re.compile(
    rf"(\S+) ([0-9]{{1,20}}) ([0-9]{{1,20}}) ({_TOKEN}) ({_TOKEN}) ([!-~]{{1,255}})"
)
_CONNECTION_LINE_RE = re.compile(rf"({_TOKEN}) ({_TOKEN}) ([!-~]{{1,255}})")
_PT = "(?:12[0-7]|1[01][0-9]|[1-9]?[0-9])"  # 0-127 without leading zeros
_MEDIA_LINE_RE = re.compile(
    rf"({_TOKEN}) ([0-9]{{1,5}}) ({_TOKEN}(?:/{_TOKEN})*) ({_PT}(?: {_PT})*)"
)
#: Attribute names that need no check against the token syntax (all are tokens).
_COMMON_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "rtpmap",
        "fmtp",
        "ptime",
        "maxptime",
        "rtcp",
        "rtcp-mux",
        "crypto",
        "sendrecv",
        "sendonly",
        "recvonly",
        "inactive",
        "silenceSupp",
        "mid",
        "ssrc",
        "X-nat",
    }
)
_SESSION_TYPES = frozenset("vosiuepcbtrzka")
_MEDIA_TYPES = frozenset("icbka")


class SdpError(ValueError):
    """An SDP body (or an edit of one) that we refuse; a B2BUA answers it with 488.

    ``line`` is the 1-based line number when the error is tied to one. ``internal``
    marks a parser bug caught by the safety net; fuzzers treat it as a crash.
    """

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason if line is None else f"line {line}: {reason}")
        self.reason = reason
        self.line = line
        self.internal = False


# --------------------------------------------------------------------------- model


@dataclass(slots=True)
class Origin:
    """``o=``: who made the description and which revision it is (RFC 3264 §8)."""

    username: str
    session_id: str
    session_version: int
    address: str
    addrtype: str = "IP4"
    nettype: str = "IN"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(slots=True)
class Connection:
    """``c=``: where media goes. ``address`` keeps a multicast ``/ttl`` suffix verbatim."""

    address: str
    addrtype: str = "IP4"
    nettype: str = "IN"

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"

    @property
    def host(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def is_null(self) -> bool:
        """The RFC 2543 hold style: "send me nothing" as an unroutable address."""
        return self.address.partition("/")[0] in ("0.0.0.0", "::")  # (`host`, inlined)


@dataclass(slots=True)
class Bandwidth:
    """``b=<type>:<kbit/s or bit/s>`` (AS, CT, TIAS, RS, RR...)."""

    type: str
    value: int

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"


@dataclass(slots=True)
class Timing:
    """``t=`` with its ``r=`` repeat lines (kept as text: nobody schedules calls by SDP)."""

    start: int = 0
    stop: int = 0
    repeats: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Attribute:
    """``a=name`` (``value`` None) or ``a=name:value`` (value may be empty)."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass(frozen=True, slots=True)
class RtpMap:
    """``a=rtpmap:<pt> <name>/<clock rate>[/<channels>]``."""

    pt: int
    encoding: str
    clock_rate: int
    channels: int = 1


@dataclass(frozen=True, slots=True)
class RtcpAddress:
    """``a=rtcp:<port> [IN IP4 <address>]`` (RFC 3605)."""

    port: int
    address: str | None = None
    addrtype: str | None = None


def _attribute_lines(attributes: list[Attribute]) -> list[str]:
    # `Attribute.__str__` written out: one method call less per line
    return [f"a={a.name}" if a.value is None else f"a={a.name}:{a.value}" for a in attributes]


def _remove_names(attributes: list[Attribute], names: Container[str]) -> int:
    """`_Attributes.remove` for a set of names (the list is edited only if one is there)."""
    for a in attributes:  # usually none is: a loop is cheaper than building the list
        if a.name in names:
            break
    else:
        return 0
    kept = [a for a in attributes if a.name not in names]
    removed = len(attributes) - len(kept)
    if removed:
        attributes[:] = kept
    return removed


#: What `SessionDescription.lines` writes when ``times`` is empty: ``t=0 0``.
_NO_TIMES = (Timing(),)


class _Attributes:
    """Ordered ``a=`` lines with the look-ups both levels need."""

    __slots__ = ()
    attributes: list[Attribute]

    def has(self, name: str) -> bool:
        return any(a.name == name for a in self.attributes)

    def value(self, name: str) -> str | None:
        """Value of the first ``a=name`` (None when absent or a flag)."""
        for a in self.attributes:
            if a.name == name:
                return a.value
        return None

    def values(self, name: str) -> list[str]:
        return [a.value for a in self.attributes if a.name == name and a.value is not None]

    def remove(self, *names: str) -> int:
        """Drop every ``a=`` with one of these names; returns how many went."""
        return _remove_names(self.attributes, names)

    def set(self, name: str, value: str | None = None) -> None:
        """Replace the first ``a=name`` in place (dropping the others) or append one."""
        for i, a in enumerate(self.attributes):
            if a.name == name:
                self.attributes[i] = Attribute(name, value)
                self.attributes[i + 1 :] = [b for b in self.attributes[i + 1 :] if b.name != name]
                return
        self.attributes.append(Attribute(name, value))


@dataclass(slots=True)
class Media(_Attributes):
    """One ``m=`` section. ``kind`` is the media type (audio, video, image...)."""

    kind: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    title: str | None = None
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)

    @property
    def is_rtp(self) -> bool:
        return _is_rtp_proto(self.proto)

    @property
    def payload_types(self) -> list[int]:
        """Formats as RTP payload types (empty for non-RTP media)."""
        return [int(f) for f in self.formats] if self.is_rtp else []

    def format_maps(self) -> tuple[dict[int, RtpMap], dict[str, str]]:
        """``a=rtpmap`` by payload type and ``a=fmtp`` parameters by format, in one pass
        over the a= lines (the first line for a format wins)."""
        rtpmaps: dict[int, RtpMap] = {}
        fmtps: dict[str, str] = {}
        for a in self.attributes:
            if a.value is not None:
                if a.name == "rtpmap":
                    parsed = _parse_rtpmap(a.value)
                    rtpmaps.setdefault(parsed.pt, parsed)
                elif a.name == "fmtp":
                    fmt, _, params = a.value.partition(" ")
                    fmtps.setdefault(fmt, params)
        return rtpmaps, fmtps

    def rtpmaps(self) -> dict[int, RtpMap]:
        return self.format_maps()[0]

    def fmtp(self, fmt: str | int) -> str | None:
        """Format parameters of one format (``a=fmtp:<fmt> <params>``)."""
        return self.format_maps()[1].get(str(fmt))

    @property
    def ptime(self) -> int | None:
        value = self.value("ptime")
        return None if value is None else round(float(value))

    @property
    def rtcp(self) -> RtcpAddress | None:
        value = self.value("rtcp")
        return None if value is None else _parse_rtcp(value)

    def copy(self) -> Media:
        """A deep copy (see `SessionDescription.copy`)."""
        c = self.connection
        return Media(
            self.kind,
            self.port,
            self.proto,
            list(self.formats),
            self.port_count,
            self.title,
            None if c is None else Connection(c.address, c.addrtype, c.nettype),
            _copy_bandwidths(self.bandwidths),
            self.key,
            _copy_attributes(self.attributes),
        )

    def lines(self) -> list[str]:
        out: list[str] = []
        self._write(out)
        return out

    def _write(self, out: list[str]) -> None:
        """Append the section's lines to ``out``."""
        port = self.port if self.port_count is None else f"{self.port}/{self.port_count}"
        out.append(f"m={' '.join([self.kind, str(port), self.proto, *self.formats])}")
        if self.title is not None:
            out.append(f"i={self.title}")
        if (c := self.connection) is not None:
            out.append(f"c={c.nettype} {c.addrtype} {c.address}")
        if self.bandwidths:
            out.extend([f"b={b.type}:{b.value}" for b in self.bandwidths])
        if self.key is not None:
            out.append(f"k={self.key}")
        out.extend(_attribute_lines(self.attributes))


@dataclass(slots=True)
class SessionDescription(_Attributes):
    """A whole SDP body. Serialize with ``str()``/`to_bytes` (CRLF, RFC 4566 order)."""

    origin: Origin
    name: str = "-"
    info: str | None = None
    uri: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    times: list[Timing] = field(default_factory=lambda: [Timing()])
    zone: str | None = None
    key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = ["v=0", f"o={self.origin}"]
        self._write_after_origin(out)
        return out

    def _write_after_origin(self, out: list[str]) -> None:
        """Append the lines from ``s=`` on to ``out`` (the o= line is the caller's)."""
        out.append(f"s={self.name or '-'}")
        if self.info is not None:
            out.append(f"i={self.info}")
        if self.uri is not None:
            out.append(f"u={self.uri}")
        if self.emails:
            out.extend([f"e={e}" for e in self.emails])
        if self.phones:
            out.extend([f"p={p}" for p in self.phones])
        if (c := self.connection) is not None:
            out.append(f"c={c.nettype} {c.addrtype} {c.address}")
        if self.bandwidths:
            out.extend([f"b={b.type}:{b.value}" for b in self.bandwidths])
        for t in self.times or _NO_TIMES:
            out.append(f"t={t.start} {t.stop}")
            if t.repeats:
                out.extend([f"r={r}" for r in t.repeats])
        if self.zone is not None:
            out.append(f"z={self.zone}")
        if self.key is not None:
            out.append(f"k={self.key}")
        out.extend(_attribute_lines(self.attributes))
        for m in self.media:
            m._write(out)

    def __str__(self) -> str:
        return CRLF.join(self.lines()) + CRLF

    def to_bytes(self) -> bytes:
        return str(self).encode("utf-8")

    def copy(self) -> SessionDescription:
        """A deep copy to edit without touching the original.

        Written out field by field: `copy.deepcopy` of an offer cost ~100 µs, the
        largest single item of an anchored call's signalling (strings are immutable
        and shared; every mutable part is new).
        """
        o, c = self.origin, self.connection
        return SessionDescription(
            Origin(o.username, o.session_id, o.session_version, o.address, o.addrtype, o.nettype),
            self.name,
            self.info,
            self.uri,
            list(self.emails),
            list(self.phones),
            None if c is None else Connection(c.address, c.addrtype, c.nettype),
            _copy_bandwidths(self.bandwidths),
            [Timing(t.start, t.stop, list(t.repeats)) for t in self.times],
            self.zone,
            self.key,
            _copy_attributes(self.attributes),
            [m.copy() for m in self.media],
        )


# (a comprehension is a function call in Python 3.11: none for the usual empty list)
def _copy_bandwidths(bandwidths: list[Bandwidth]) -> list[Bandwidth]:
    return [Bandwidth(b.type, b.value) for b in bandwidths] if bandwidths else []


def _copy_attributes(attributes: list[Attribute]) -> list[Attribute]:
    return [Attribute(a.name, a.value) for a in attributes] if attributes else []


# --------------------------------------------------------------------------- parsing


def parse_sdp(data: bytes | bytearray | memoryview | str) -> SessionDescription:
    """Parse an SDP body; raises `SdpError` (only) when it is malformed or too big."""
    try:
        return _Parser(_decode(data)).run()
    except SdpError:
        raise
    except Exception as exc:  # safety net: a parser bug must not take the caller down
        error = SdpError(f"internal parser error: {exc!r}")
        error.internal = True
        raise error from exc


def _decode(data: bytes | bytearray | memoryview | str) -> str:
    if isinstance(data, str):
        if len(data) > MAX_SDP_SIZE:
            raise SdpError(f"SDP body larger than {MAX_SDP_SIZE} bytes")
        return data
    raw = bytes(data)
    if len(raw) > MAX_SDP_SIZE:
        raise SdpError(f"SDP body larger than {MAX_SDP_SIZE} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SdpError("SDP body is not UTF-8") from None


#: The parser's o= until it reads one (`_Parser.finish` replaces or refuses it).
_NO_ORIGIN = Origin("-", "0", 0, "0.0.0.0")


class _Parser:
    """One pass over the lines: session level until the first ``m=``, then media.

    The common shape of each line (single blanks, plain tokens) is checked with one
    regular expression; anything else takes the field-by-field path, which accepts the
    same lines and words the error.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.lineno = 0
        self.seen: set[str] = set()  # o= s= i= ... seen at session level
        self.seen_media: set[str] = set()  # i= c= k= seen in the current media section
        self.origin: Origin | None = None
        # every field by position, lists new: a third faster than defaults by keyword
        self.sdp = SessionDescription(
            _NO_ORIGIN, "-", None, None, [], [], None, [], [], None, None, [], []
        )
        self.media: Media | None = None

    def fail(self, reason: str) -> SdpError:
        return SdpError(reason, self.lineno)

    def run(self) -> SessionDescription:
        text = self.text
        # one scan of the whole body; lines are checked one by one only if it finds
        # something (CR is fine where it ends a line; counting CRs is much faster than
        # an expression with a look-ahead for a bare one)
        bare_cr = text.count("\r") != text.count("\r\n")
        suspect = bare_cr or _BODY_CONTROL_RE.search(text) is not None
        # without a bare CR, every CR ends a line: all go at once
        lines = (text if bare_cr else text.replace("\r\n", "\n")).split("\n")
        if len(lines) > MAX_LINES + 1:
            raise SdpError(f"more than {MAX_LINES} lines")
        long_lines = len(text) > MAX_LINE_LENGTH
        got_version = False
        attributes = self.sdp.attributes  # the current section's
        for self.lineno, raw in enumerate(lines, 1):
            if bare_cr and raw.endswith("\r"):
                raw = raw[:-1]
            line = raw.rstrip(" \t")
            if not line:
                continue
            if long_lines and len(line) > MAX_LINE_LENGTH:
                raise self.fail(f"line longer than {MAX_LINE_LENGTH} characters")
            if suspect and _CONTROL_RE.search(line):
                raise self.fail("control character (bare CR, NUL...) in line")
            letter = line[0]
            if len(line) < 2 or line[1] != "=" or not "a" <= letter <= "z":
                raise self.fail("not a <type>=<value> line")
            value = line[2:]
            if letter == "a" and got_version:  # most lines: both levels, any number
                self.add_attribute(attributes, value)
            elif not got_version:
                if letter != "v":
                    raise self.fail("SDP must start with v=")
                if value != "0":
                    raise self.fail(f"unsupported SDP version {value!r}")
                got_version = True
            elif letter == "m":
                attributes = self.start_media(value).attributes
            elif self.media is None:
                self.session_line(letter, value)
            else:
                self.media_line(self.media, letter, value)
        if not got_version:
            raise SdpError("empty SDP body")
        return self.finish()

    def once(self, letter: str) -> None:
        if self.media is None:
            seen, scope = self.seen, "session"
        else:
            seen, scope = self.seen_media, f"media {len(self.sdp.media)}"
        if letter in seen:
            raise self.fail(f"more than one {letter}= line at {scope} level")
        seen.add(letter)

    def session_line(self, letter: str, value: str) -> None:
        sdp = self.sdp
        if letter not in _SESSION_TYPES:
            # RFC 4566 §5: a description with an unknown type letter is to be ignored whole.
            raise self.fail(f"unknown or misplaced line type {letter}=")
        if letter == "v":
            raise self.fail("more than one v= line")
        if letter in "osiuczk":
            self.once(letter)
        if letter == "o":
            self.origin = self.parse_origin(value)
        elif letter == "s":
            sdp.name = value or "-"  # RFC 4566 wants a name; "-" is the usual filler
        elif letter == "c":
            sdp.connection = self.parse_connection(value)
        elif letter == "t":
            sdp.times.append(self.parse_timing(value))
        elif letter == "i":
            sdp.info = value
        elif letter == "u":
            sdp.uri = value
        elif letter == "e":
            sdp.emails.append(value)
        elif letter == "p":
            sdp.phones.append(value)
        elif letter == "b":
            sdp.bandwidths.append(self.parse_bandwidth(value))
        elif letter == "r":
            if not sdp.times:
                raise self.fail("r= without a preceding t=")
            sdp.times[-1].repeats.append(value)
        elif letter == "z":
            sdp.zone = value
        elif letter == "k":
            sdp.key = value
        else:
            self.add_attribute(sdp.attributes, value)

    def media_line(self, media: Media, letter: str, value: str) -> None:
        if letter not in _MEDIA_TYPES:
            raise self.fail(f"{letter}= line not allowed in a media section")
        if letter in "ick":
            self.once(letter)
        if letter == "c":
            media.connection = self.parse_connection(value)
        elif letter == "i":
            media.title = value
        elif letter == "b":
            media.bandwidths.append(self.parse_bandwidth(value))
        elif letter == "k":
            media.key = value
        else:
            self.add_attribute(media.attributes, value)

    def start_media(self, value: str) -> Media:
        if len(self.sdp.media) >= MAX_MEDIA:
            raise self.fail(f"more than {MAX_MEDIA} media sections")
        self.seen_media = set()
        fast = _MEDIA_LINE_RE.fullmatch(value)
        if fast is not None:  # "audio 5000 RTP/AVP 0 8 101": payload types for any proto
            kind, port_text, proto, format_text = fast.groups()
            port = int(port_text)
            formats = format_text.split(" ")
            if port <= 65_535 and len(formats) <= MAX_FORMATS:
                self.media = Media(kind, port, proto, formats)
                self.sdp.media.append(self.media)
                return self.media
        fields = _fields(value)
        if len(fields) < 3:
            raise self.fail("m= needs <media> <port> <proto> <fmt>...")
        kind, port_text, proto, *formats = fields
        if not _TOKEN_RE.fullmatch(kind):
            raise self.fail("bad media type in m=")
        port_part, slash, count_part = port_text.partition("/")
        port = self.number(port_part, "m= port", 65_535)
        count = self.number(count_part, "m= port count", 65_535) if slash else None
        if not _PROTO_RE.fullmatch(proto):
            raise self.fail("bad transport protocol in m=")
        if len(formats) > MAX_FORMATS:
            raise self.fail(f"more than {MAX_FORMATS} formats on m=")
        if not formats and port != 0:
            raise self.fail("m= without formats")
        rtp = _is_rtp_proto(proto)
        for fmt in formats:
            if rtp:
                self.number(fmt, "RTP payload type", 127)
            elif not _TOKEN_RE.fullmatch(fmt):
                raise self.fail("bad format in m=")
        self.media = Media(kind, port, proto, formats, port_count=count)
        self.sdp.media.append(self.media)
        return self.media

    def add_attribute(self, attributes: list[Attribute], value: str) -> None:
        if len(attributes) >= MAX_ATTRIBUTES:
            raise self.fail(f"more than {MAX_ATTRIBUTES} a= lines in one section")
        name, colon, rest = value.partition(":")
        if name not in _COMMON_ATTRIBUTES and not _TOKEN_RE.fullmatch(name):
            raise self.fail("bad attribute name")
        attribute = Attribute(name, rest) if colon else Attribute(name)
        try:
            _check_attribute(attribute)
        except SdpError as exc:
            raise self.fail(exc.reason) from None
        attributes.append(attribute)

    def parse_origin(self, value: str) -> Origin:
        fast = _ORIGIN_LINE_RE.fullmatch(value)
        if fast is not None:  # "- 1 1 IN IP4 192.0.2.1"
            username, session_id, version, nettype, addrtype, address = fast.groups()
            return Origin(username, session_id, int(version), address, addrtype, nettype)
        fields = _fields(value)
        if len(fields) != 6:
            raise self.fail("o= needs 6 fields")
        username, session_id, version, nettype, addrtype, address = fields
        if not _DIGITS_RE.fullmatch(session_id) or not _DIGITS_RE.fullmatch(version):
            raise self.fail("o= session id and version must be numbers (<= 20 digits)")
        self.check_net(nettype, addrtype, address)
        return Origin(username, session_id, int(version), address, addrtype, nettype)

    def parse_connection(self, value: str) -> Connection:
        fast = _CONNECTION_LINE_RE.fullmatch(value)
        if fast is not None:  # "IN IP4 192.0.2.1"
            nettype, addrtype, address = fast.groups()
            return Connection(address, addrtype, nettype)
        fields = _fields(value)
        if len(fields) != 3:
            raise self.fail("c= needs <nettype> <addrtype> <address>")
        nettype, addrtype, address = fields
        self.check_net(nettype, addrtype, address)
        return Connection(address, addrtype, nettype)

    def check_net(self, nettype: str, addrtype: str, address: str) -> None:
        if not _TOKEN_RE.fullmatch(nettype) or not _TOKEN_RE.fullmatch(addrtype):
            raise self.fail("bad network or address type")
        if not _ADDRESS_RE.fullmatch(address):
            raise self.fail("bad address")

    def parse_bandwidth(self, value: str) -> Bandwidth:
        bwtype, colon, amount = value.partition(":")
        if not colon or not _TOKEN_RE.fullmatch(bwtype):
            raise self.fail("b= needs <type>:<value>")
        return Bandwidth(bwtype, self.number(amount, "bandwidth", 10**12))

    def parse_timing(self, value: str) -> Timing:
        if value == "0 0":  # nearly every SDP: an unbounded session
            return Timing()
        fields = _fields(value)
        if len(fields) != 2:
            raise self.fail("t= needs <start> <stop>")
        return Timing(self.number(fields[0], "t= start"), self.number(fields[1], "t= stop"))

    def number(self, text: str, what: str, maximum: int = 2**64 - 1) -> int:
        # ASCII digits only (str.isdigit alone takes "²" and other Unicode digits)
        if 0 < len(text) <= 20 and text.isascii() and text.isdigit():
            value = int(text)
            if value <= maximum:
                return value
        raise self.fail(f"bad {what} {text[:20]!r}")

    def finish(self) -> SessionDescription:
        if self.origin is None:
            raise SdpError("missing o= line")
        sdp = self.sdp
        sdp.origin = self.origin
        if not sdp.times:
            sdp.times.append(Timing())
        if sdp.connection is None:
            for index, media in enumerate(sdp.media):
                if media.port != 0 and media.connection is None:
                    raise SdpError(f"no c= line for media section {index} ({media.kind})")
        return sdp


def _fields(value: str) -> list[str]:
    """Space-separated fields; runs of blanks (a common slip) count as one."""
    if "\t" in value:
        value = value.replace("\t", " ")
    return [f for f in value.split(" ") if f]


def _is_rtp_proto(proto: str) -> bool:
    upper = proto.upper()
    return "RTP/AVP" in upper or "RTP/SAVP" in upper


def _check_attribute(attribute: Attribute) -> None:
    """Validate the attributes we interpret, so their accessors cannot fail later."""
    check = _ATTRIBUTE_CHECKS.get(attribute.name)
    if check is not None:
        if attribute.value is None:
            raise SdpError(f"a={attribute.name} needs a value")
        check(attribute.value)


@functools.lru_cache(maxsize=512)
def _parse_rtpmap(value: str) -> RtpMap:
    """Cached: every call brings the same few rtpmap lines (RtpMap is immutable)."""
    match = _RTPMAP_RE.fullmatch(value)
    if match is None or int(match[1]) > 127:
        raise SdpError(f"malformed a=rtpmap:{value[:40]}")
    channels = int(match[4]) if match[4] else 1
    return RtpMap(int(match[1]), match[2], int(match[3]), channels)


def _parse_fmtp(value: str) -> str:
    if _FMTP_RE.fullmatch(value) is None:
        raise SdpError(f"malformed a=fmtp:{value[:40]}")
    return value


def _parse_ptime(value: str) -> str:
    if _PTIME_RE.fullmatch(value) is None:
        raise SdpError(f"malformed packet time {value[:20]!r}")
    return value


def _parse_rtcp(value: str) -> RtcpAddress:
    match = _RTCP_RE.fullmatch(value)
    if match is None or int(match[1]) > 65_535:
        raise SdpError(f"malformed a=rtcp:{value[:40]}")
    return RtcpAddress(int(match[1]), match[4], match[3])


def _parse_crypto(value: str) -> str:
    if _CRYPTO_RE.fullmatch(value) is None:
        raise SdpError("malformed a=crypto")
    return value


_ATTRIBUTE_CHECKS: dict[str, Callable[[str], object]] = {
    "rtpmap": _parse_rtpmap,
    "fmtp": _parse_fmtp,
    "ptime": _parse_ptime,
    "maxptime": _parse_ptime,
    "rtcp": _parse_rtcp,
    "crypto": _parse_crypto,
}


# --------------------------------------------------------------------------- direction


def direction(media: Media, session: SessionDescription | None = None) -> Direction:
    """Effective direction of a stream: media level, else session level, else sendrecv."""
    for owner in (media, session):
        if owner is not None:
            for a in owner.attributes:
                if a.name in DIRECTIONS:
                    return cast(Direction, a.name)
    return "sendrecv"


def set_direction(media: Media, value: Direction) -> None:
    """Set the media-level direction, replacing any there (in place, keeping order)."""
    if value not in DIRECTIONS:
        raise ValueError(f"not an SDP direction: {value!r}")
    for i, a in enumerate(media.attributes):
        if a.name in DIRECTIONS:
            media.attributes[i] = Attribute(value)
            media.attributes[i + 1 :] = [
                b for b in media.attributes[i + 1 :] if b.name not in DIRECTIONS
            ]
            return
    media.attributes.append(Attribute(value))


_HELD: dict[Direction, Direction] = {"sendrecv": "sendonly", "recvonly": "inactive"}
_RESUMED: dict[Direction, Direction] = {"sendonly": "sendrecv", "inactive": "recvonly"}


def held(value: Direction) -> Direction:
    """The direction to offer when putting a stream on hold (RFC 3264 §8.4)."""
    return _HELD.get(value, value)


def resumed(value: Direction) -> Direction:
    """The direction to offer when taking a stream off hold."""
    return _RESUMED.get(value, value)


def effective_connection(sdp: SessionDescription, media: Media) -> Connection | None:
    return media.connection if media.connection is not None else sdp.connection


def is_hold(sdp: SessionDescription, media: Media) -> bool:
    """Whether the sender of ``sdp`` holds this stream: it wants nothing sent to it.

    True for ``sendonly``/``inactive`` and for the RFC 2543 style ``c=0.0.0.0``.
    """
    if direction(media, sdp) in ("sendonly", "inactive"):
        return True
    conn = effective_connection(sdp, media)
    return conn is not None and conn.is_null


# --------------------------------------------------------------------------- addresses


def rtp_address(sdp: SessionDescription, index: int) -> tuple[str, int] | None:
    """Where to send RTP for media ``index``; None when rejected (port 0) or null-held."""
    media = sdp.media[index]
    conn = effective_connection(sdp, media)
    if media.port == 0 or conn is None or conn.is_null:
        return None
    return conn.host, media.port


def rtcp_address(sdp: SessionDescription, index: int) -> tuple[str, int] | None:
    """Where to send RTCP: ``a=rtcp`` (RFC 3605) if given, else the RTP port + 1.

    rtcp-mux is not looked at: whether it applies depends on the answer, which the
    caller knows; with mux agreed, RTCP simply travels on the RTP address.
    """
    rtp = rtp_address(sdp, index)
    if rtp is None:
        return None
    rtcp = sdp.media[index].rtcp
    if rtcp is None:
        return rtp[0], min(rtp[1] + 1, 65_535)
    if rtcp.address is None or Connection(rtcp.address).is_null:
        return rtp[0], rtcp.port
    return rtcp.address, rtcp.port


@functools.lru_cache(maxsize=256)
def _addrtype(address: str) -> str:
    try:
        return "IP6" if ipaddress.ip_address(address).version == 6 else "IP4"
    except ValueError:
        raise ValueError(f"not an IP address: {address!r}") from None


# --------------------------------------------------------------------------- anchoring


def rewrite_for_anchor(
    sdp: SessionDescription,
    address: str,
    ports: Sequence[int],
    *,
    strip_ice: bool = True,
    in_place: bool = False,
) -> SessionDescription:
    """A copy of ``sdp`` (``sdp`` itself with ``in_place``) that points every stream at
    the box's relay.

    ``ports`` has one RTP port per m= line (RTCP is port + 1). Rejected streams
    (port 0) stay rejected whatever is passed for them. Codecs, direction, crypto and
    unknown attributes are kept. An RFC 2543 ``c=0.0.0.0`` hold is turned into the
    matching direction, since replacing the address would otherwise lose the hold.
    ICE attributes are dropped (see `ICE_ATTRIBUTES`). Only the o= address is replaced
    (it would leak an internal address): `OriginManager.render` then makes the o= line
    the box's own for that leg.
    """
    if len(ports) != len(sdp.media):
        raise ValueError(f"{len(ports)} ports for {len(sdp.media)} media sections")
    addrtype = _addrtype(address)
    for port in ports:
        if not 0 <= port <= 65_535:
            raise ValueError(f"bad port {port}")
    # what the rewrite depends on, read before anything is changed (in place: the same)
    facts = []
    for original in sdp.media:
        conn = effective_connection(sdp, original)
        hold = original.port != 0 and conn is not None and conn.is_null
        facts.append((original.port, held(direction(original, sdp)) if hold else None))
    out = sdp if in_place else sdp.copy()
    out.connection = Connection(address, addrtype)
    for media, (original_port, hold_direction), port in zip(out.media, facts, ports, strict=True):
        if hold_direction is not None:
            set_direction(media, hold_direction)
        if media.connection is not None:
            media.connection = Connection(address, addrtype)
        media.port = 0 if original_port == 0 else port
        media.port_count = None
        rtcp = media.rtcp
        if rtcp is not None and media.port == 0:
            media.remove("rtcp")
        elif rtcp is not None:
            value = str(media.port + 1)
            if rtcp.address is not None:
                value += f" IN {addrtype} {address}"
            media.set("rtcp", value)
        if strip_ice:
            media.remove(*ICE_ATTRIBUTES)
    if strip_ice:
        out.remove(*ICE_ATTRIBUTES)
    out.origin.address = address  # the peer's would leak; `OriginManager` stamps the box's
    out.origin.addrtype = addrtype
    return out


def _fingerprint(sdp: SessionDescription) -> str:
    """The body with the o= version blanked: equal fingerprints = same description."""
    lines = sdp.lines()
    o = sdp.origin
    lines[1] = f"o={o.username} {o.session_id} - {o.nettype} {o.addrtype} {o.address}"
    return "\n".join(lines)


def sdp_changed(previous: SessionDescription | None, current: SessionDescription) -> bool:
    """Whether a peer's new SDP differs from its previous one (ignoring the o= version).

    RFC 3264 §8 says an unchanged version means an unchanged body, but comparing the
    content also copes with peers that forget to bump it.
    """
    return previous is None or _fingerprint(previous) != _fingerprint(current)


class OriginManager:
    """The box's ``o=`` toward one leg: a stable session id, and a version that goes up
    by one exactly when the description sent on that leg changes (RFC 3264 §8).

    Re-sending the same SDP (session refresh, retransmitted 200) keeps the version, so
    peers that compare versions do not renegotiate media for nothing.
    """

    def __init__(
        self,
        address: str,
        *,
        username: str = "skillepunkt",
        session_id: int | None = None,
        version: int = 1,
    ) -> None:
        self.address = address
        self.addrtype = _addrtype(address)
        self.username = username
        self.session_id = str(session_id if session_id is not None else random_bits(62))
        self.version = version
        self._last: str | None = None

    def stamp(self, sdp: SessionDescription) -> SessionDescription:
        """Put the box's o= line on ``sdp`` (in place; returned for chaining)."""
        self._stamp(sdp)
        return sdp

    def render(self, sdp: SessionDescription) -> bytes:
        """`stamp` ``sdp`` and return its body: the lines are built once for both."""
        after_origin = self._stamp(sdp)
        o = sdp.origin
        return (
            f"v=0\r\no={o.username} {o.session_id} {o.session_version} {o.nettype} "
            f"{o.addrtype} {o.address}\r\n{CRLF.join(after_origin)}\r\n"
        ).encode()

    def _stamp(self, sdp: SessionDescription) -> list[str]:
        """Stamp; returns ``sdp``'s lines after the o= line."""
        o = sdp.origin = Origin(
            self.username, self.session_id, self.version, self.address, self.addrtype
        )
        after_origin: list[str] = []
        sdp._write_after_origin(after_origin)
        # the body with the o= version blanked (see `_fingerprint`)
        fingerprint = (
            f"v=0\no={o.username} {o.session_id} - {o.nettype} {o.addrtype} {o.address}\n"
            + "\n".join(after_origin)
        )
        if self._last is not None and fingerprint != self._last:
            self.version += 1
            o.session_version = self.version
        self._last = fingerprint
        return after_origin


# --------------------------------------------------------------------------- codecs


@dataclass(frozen=True, slots=True)
class Codec:
    """An RTP payload format by name/clock rate/channels; ``pt`` as numbered in an SDP."""

    name: str
    clock_rate: int
    channels: int = 1
    pt: int | None = None
    fmtp: str | None = None

    @property
    def key(self) -> tuple[str, int, int]:
        """What makes two codecs the same (encoding names are case-insensitive)."""
        return self.name.lower(), self.clock_rate, self.channels


PCMU = Codec("PCMU", 8000, pt=0)
PCMA = Codec("PCMA", 8000, pt=8)
G722 = Codec("G722", 8000, pt=9)
TELEPHONE_EVENT = Codec("telephone-event", 8000)
#: Static audio payload types (RFC 3551 table 4) that may appear without a=rtpmap.
STATIC_PAYLOAD_TYPES: dict[int, Codec] = {
    c.pt: c
    for c in (
        PCMU,
        Codec("GSM", 8000, pt=3),
        Codec("G723", 8000, pt=4),
        Codec("DVI4", 8000, pt=5),
        Codec("DVI4", 16000, pt=6),
        Codec("LPC", 8000, pt=7),
        PCMA,
        G722,
        Codec("L16", 44100, 2, pt=10),
        Codec("L16", 44100, pt=11),
        Codec("QCELP", 8000, pt=12),
        Codec("CN", 8000, pt=13),
        Codec("G728", 8000, pt=15),
        Codec("G729", 8000, pt=18),
    )
    if c.pt is not None
}


def media_codecs(media: Media) -> list[Codec]:
    """The stream's codecs in m= (preference) order; unknown dynamic types are skipped."""
    rtpmaps, fmtps = media.format_maps()
    if not media.is_rtp:
        return []
    result = []
    for fmt in media.formats:  # (`payload_types` without building the list first)
        pt = int(fmt)
        rtpmap = rtpmaps.get(pt)
        fmtp = fmtps.get(str(pt)) if fmtps else None
        if rtpmap is not None:
            result.append(_codec(rtpmap.encoding, rtpmap.clock_rate, rtpmap.channels, pt, fmtp))
        elif pt in STATIC_PAYLOAD_TYPES:
            codec = STATIC_PAYLOAD_TYPES[pt]
            result.append(_codec(codec.name, codec.clock_rate, codec.channels, pt, fmtp))
    return result


@functools.lru_cache(maxsize=1024)
def _codec(name: str, clock_rate: int, channels: int, pt: int, fmtp: str | None) -> Codec:
    """Cached: calls bring the same few codecs, and a frozen dataclass is slow to build."""
    return Codec(name, clock_rate, channels, pt, fmtp)


def intersect_codecs(offered: Media, supported: Iterable[Codec]) -> list[Codec]:
    """Offered codecs we support, in the offerer's order and with its payload types.

    Matching is by name, clock rate and channels, so a dynamic telephone-event is
    found whatever number the offerer gave it.
    """
    keys = {c.key for c in supported}
    return [c for c in media_codecs(offered) if c.key in keys]


def restrict_codecs(media: Media, keep: Iterable[int | Codec]) -> None:
    """Keep only these payload types (or codecs, by ``pt``) on the m= line, with their
    rtpmap/fmtp lines: e.g. ``restrict_codecs(media, intersect_codecs(media, ours))``."""
    kept = {str(k.pt if isinstance(k, Codec) else k) for k in keep}
    media.formats = [f for f in media.formats if f in kept]

    def wanted(a: Attribute) -> bool:
        if a.name in ("rtpmap", "fmtp") and a.value is not None:
            return a.value.partition(" ")[0] in kept
        return True

    media.attributes[:] = [a for a in media.attributes if wanted(a)]
