"""Call transfer (omstilling) by REFER (RFC 3515) with Replaces (RFC 3891).

A party sends REFER on its dialog with the box. A plain ``Refer-To: <sip:203@box>`` is
a blind transfer: the box calls 203 itself and, once 203 answers, connects it to the
party that stays. ``Refer-To: <sip:203@box?Replaces=...>`` names one of the box's own
dialogs with the referrer (the consultation call): an attended transfer, where the
box joins the two parties the referrer was talking to. The referrer hears the outcome
as NOTIFYs of ``message/sipfrag`` (§2.4.5) on an implicit ``refer`` subscription.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from ..errors import SipParseError
from ..fields import parse_name_addr
from ..uri import SipUri


class TransferError(ValueError):
    """A REFER the box cannot act on; ``status`` is the answer (400, 403, 481...)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Replaces:
    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False


@dataclass(frozen=True)
class ReferTo:
    target: str  # the dialled number (user part)
    replaces: Replaces | None


def parse_replaces(value: str) -> Replaces:
    """``callid;to-tag=x;from-tag=y[;early-only]`` (RFC 3891 §6.1)."""
    call_id, *params = [p.strip() for p in value.split(";")]
    fields: dict[str, str] = {}
    early = False
    for param in params:
        name, _, val = param.partition("=")
        if name.lower() == "early-only":
            early = True
        elif val:
            fields[name.lower()] = val
    if not call_id or "to-tag" not in fields or "from-tag" not in fields:
        raise TransferError(400, "Replaces needs a Call-ID, to-tag and from-tag")
    return Replaces(call_id, fields["to-tag"], fields["from-tag"], early)


def parse_refer_to(value: str | None) -> ReferTo:
    if not value:
        raise TransferError(400, "REFER without Refer-To")
    try:
        addr = parse_name_addr(value)
    except SipParseError as exc:
        raise TransferError(400, f"bad Refer-To: {exc}") from None
    uri = addr.uri
    if not isinstance(uri, SipUri) or not uri.user:
        raise TransferError(400, "Refer-To must be a sip: URI with a number")
    replaces = None
    for name, val in uri.headers:
        if name.lower() == "replaces":
            replaces = parse_replaces(unquote(val))
    return ReferTo(unquote(uri.user), replaces)


def sipfrag(status: int, reason: str) -> bytes:
    """The body of a NOTIFY reporting the transfer's progress (RFC 3515 §2.4.5)."""
    return f"SIP/2.0 {status} {reason}\r\n".encode()


def notify_headers(final: bool) -> list[tuple[str, str]]:
    state = "terminated;reason=noresource" if final else "active;expires=60"
    return [
        ("Event", "refer"),
        ("Subscription-State", state),
        ("Content-Type", "message/sipfrag;version=2.0"),
    ]
