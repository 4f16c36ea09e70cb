"""The configuration document, declared as data: sections, fields, types and bounds.

Version 1 of the schema. Every model forbids unknown keys, so a misspelt key is an
error instead of a silently ignored setting. Cross-references (a phone's extension,
an agent's queues) are checked in ``validate``, not here.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
)

SCHEMA_VERSION = 1

COUNTRIES = ("DK", "SE", "NO", "DE", "GB", "US")
LANGUAGES = ("da", "en")


def _matching(pattern: str, what: str, max_length: int = 253) -> AfterValidator:
    """A text check whose error says what was expected, not which regex failed."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if len(value) > max_length or not compiled.fullmatch(value):
            raise ValueError(f"expected {what}, got {value!r}")
        return value

    return AfterValidator(check)


Slug = Annotated[
    str, _matching(r"[a-z0-9][a-z0-9_-]{0,31}", "a short name of a-z, 0-9, '-' and '_' (max 32)")
]
Extension = Annotated[str, _matching(r"[0-9]{2,8}", "an extension number of 2 to 8 digits")]
Number = Annotated[
    str, _matching(r"\+?[0-9]{2,15}", "a phone number of 2 to 15 digits, optional +")
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]
HostName = Annotated[
    str,
    _matching(
        r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
        "a host name (letters, digits, '-' and '.')",
    ),
]
Clock = Annotated[str, _matching(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00", "a time HH:MM")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


def _mac(value: str) -> str:
    digits = re.sub(r"[:.-]", "", value).lower()
    if not re.fullmatch(r"[0-9a-f]{12}", digits):
        raise ValueError(f"not a MAC address: {value!r}")
    return digits


def _cidr_or_dhcp(value: str) -> str:
    import ipaddress

    if value == "dhcp":
        return value
    try:
        ipaddress.ip_interface(value)
    except ValueError:
        raise ValueError(f"expected 'dhcp' or an address with prefix, got {value!r}") from None
    if "/" not in value:
        raise ValueError(f"address needs a prefix length, e.g. {value}/24")
    return value


def _ip(value: str) -> str:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"not an IP address: {value!r}") from None
    return value


TimeZone = Annotated[str, AfterValidator(_timezone)]
Mac = Annotated[str, AfterValidator(_mac)]
IpAddress = Annotated[str, AfterValidator(_ip)]


def _password(value: SecretStr) -> SecretStr:
    n = len(value.get_secret_value())
    if not 8 <= n <= 128:
        raise ValueError(f"a password needs 8 to 128 characters, this one has {n}")
    return value


def _version(value: int) -> int:
    if value > SCHEMA_VERSION:
        raise ValueError(
            f"schema version {value} is newer than this firmware reads ({SCHEMA_VERSION})"
        )
    if value < 1:
        raise ValueError("schema versions start at 1")
    return value


Password = Annotated[SecretStr, AfterValidator(_password)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class System(Model):
    hostname: HostName = "skillepunkt"
    country: Literal["DK", "SE", "NO", "DE", "GB", "US"] = "DK"
    timezone: TimeZone = "Europe/Copenhagen"
    language: Literal["da", "en"] = "da"


class Lan(Model):
    address: Annotated[str, AfterValidator(_cidr_or_dhcp)] = "dhcp"
    gateway: IpAddress | None = None
    dns: list[IpAddress] = Field(default_factory=list, max_length=4)


class Network(Model):
    lan: Lan = Field(default_factory=Lan)
    voice_vlan: Annotated[int, Field(ge=1, le=4094)] | None = None
    ntp: list[HostName] = Field(default_factory=list, max_length=4)


def _algorithms(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("an algorithm is listed twice")
    return value


_DIGEST_DEFAULT: tuple[Literal["SHA-256", "MD5"], ...] = ("SHA-256", "MD5")


class Sip(Model):
    """SIP stack policy. Digest challenges go out in this order (RFC 8760: strongest
    first); clients that only take the first challenge and know only MD5 (SIPp, some
    older phones) need MD5 first or alone."""

    digest_algorithms: Annotated[
        list[Literal["SHA-256", "MD5"]], Field(min_length=1), AfterValidator(_algorithms)
    ] = Field(default_factory=lambda: list(_DIGEST_DEFAULT))
    # A hold is answered by the box, which plays music to the held party; off: the hold
    # is passed to the other party as a re-INVITE (it then hears silence).
    music_on_hold: bool = True
    # RFC 4028 session interval the box asks for and refreshes (Min-SE is 90 s).
    session_expires: Annotated[int, Field(ge=90, le=86400)] = 1800
    # Dial-in conference rooms: whoever calls one of these numbers joins that room.
    conference_rooms: list[Extension] = Field(default_factory=list, max_length=50)
    # Processes that forward relayed calls' RTP (firmware.media.relay_workers), so that
    # packets do not wait behind signalling. None: one per CPU core but one on boxes with
    # 4+ cores, else 0; 0: the SIP process relays every call itself. Read at start.
    media_workers: Annotated[int, Field(ge=0, le=64)] | None = None


class Forward(Model):
    """A user's call forwarding defaults (feature codes change them at runtime; see
    firmware.core.features for which wins). Targets are other users' extensions."""

    unconditional: Extension | None = None  # every call goes there instead
    busy: Extension | None = None  # when busy (or DND)
    no_answer: Extension | None = None  # after ringing no_answer_s seconds
    no_answer_s: Annotated[int, Field(ge=5, le=120)] = 20


class User(Model):
    extension: Extension
    name: Name
    sip_password: Password | None = None  # generated at import when absent; never logged
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    voicemail: bool = True
    forward: Forward | None = None
    dnd: bool = False  # do not disturb: callers hear busy (or go to the busy forward)


class Trunk(Model):
    name: Slug
    host: HostName
    port: Annotated[int, Field(ge=1, le=65535)] = 5060
    transport: Literal["udp", "tcp", "tls"] = "udp"
    username: Name | None = None
    password: Password | None = None
    registration: bool = True  # register with the carrier
    srtp: Literal["off", "optional", "mandatory"] = "optional"
    numbers: list[Number] = Field(default_factory=list, max_length=1000)


class Port(Model):
    name: Annotated[str, StringConstraints(pattern=r"^(fxs|fxo|bri|pri|dect)[1-9][0-9]?$")]
    enabled: bool = True
    extension: Extension | None = None  # fxs/dect: the number that rings it
    destination: Extension | None = None  # fxo/bri/pri: where incoming calls go
    caller_id: Literal["dtmf", "fsk-etsi", "fsk-bell", "off"] | None = None  # None: country default


class Phone(Model):
    mac: Mac
    vendor: Literal["yealink", "snom", "polycom", "grandstream", "cisco", "fanvil"]
    model: Annotated[str, StringConstraints(max_length=32)] | None = None
    extension: Extension


class Overflow(Model):
    after_s: Annotated[int, Field(ge=5, le=3600)]
    destination: Extension


class Queue(Model):
    name: Slug
    extension: Extension
    strategy: Literal["longest-idle", "ring-all", "round-robin"] = "longest-idle"
    max_wait_s: Annotated[int, Field(ge=10, le=7200)] = 600
    overflow: Overflow | None = None
    schedule: Slug | None = None


class Membership(Model):
    queue: Slug
    skill: Annotated[int, Field(ge=1, le=9)] = 5


class Agent(Model):
    extension: Extension
    queues: list[Membership] = Field(default_factory=list, max_length=100)
    wrapup_s: Annotated[int, Field(ge=0, le=600)] = 10


class Hours(Model):
    days: list[Weekday] = Field(min_length=1)
    start: Clock
    end: Clock


class Holiday(Model):
    date: date
    name: Name | None = None


class Schedule(Model):
    name: Slug
    timezone: TimeZone | None = None
    hours: list[Hours] = Field(default_factory=list, max_length=50)
    holidays: list[Holiday] = Field(default_factory=list, max_length=400)


class Document(Model):
    version: Annotated[int, AfterValidator(_version)] = SCHEMA_VERSION
    system: System = Field(default_factory=System)
    network: Network = Field(default_factory=Network)
    sip: Sip = Field(default_factory=Sip)
    users: list[User] = Field(default_factory=list, max_length=2000)
    trunks: list[Trunk] = Field(default_factory=list, max_length=50)
    ports: list[Port] = Field(default_factory=list, max_length=200)
    phones: list[Phone] = Field(default_factory=list, max_length=2000)
    queues: list[Queue] = Field(default_factory=list, max_length=200)
    agents: list[Agent] = Field(default_factory=list, max_length=2000)
    schedules: list[Schedule] = Field(default_factory=list, max_length=100)


SECTIONS = tuple(name for name in Document.model_fields if name != "version")
