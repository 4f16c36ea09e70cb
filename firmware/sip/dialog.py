"""SIP dialogs (RFC 3261 §12): the state two user agents share once a call exists.

A B2BUA holds one dialog per leg. This module only computes: it builds in-dialog
requests (BYE, re-INVITE, UPDATE, ACK for 2xx, REFER...) with the right Call-ID,
tags, CSeq, Request-URI and Route set, and checks incoming ones (CSeq order, target
refresh). Sending is the endpoint's job; the endpoint adds the Via.

The box uses loose routing only (RFC 3261 §16.12: a route set whose first entry lacks
``;lr`` is a strict router, which no deployed element has needed since 2002); such a
route set is kept as given, with the Request-URI set to the remote target.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from .fields import NameAddr
from .ids import random_bits, random_hex
from .message import Request, Response
from .peer import Peer
from .uri import Uri

MAX_CSEQ = 2**31 - 1  # RFC 3261 §8.1.1.5: initial CSeq below 2**31


class DialogError(ValueError):
    """An in-dialog request that must be refused; ``status`` is the response to send."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def new_tag() -> str:
    return random_hex(6)  # os.urandom, pooled (firmware.sip.ids)


def new_call_id(host: str) -> str:
    return f"{random_hex(12)}@{host}"


@dataclass(frozen=True, slots=True)
class DialogId:
    call_id: str
    local_tag: str
    remote_tag: str


@dataclass
class Dialog:
    """One side's view of a dialog; ``peer`` is where its requests are sent (NAT-aware)."""

    call_id: str
    local_tag: str
    remote_tag: str
    local: NameAddr  # our From in requests we send
    remote: NameAddr  # our To in requests we send (without tag; tags are added)
    remote_target: Uri  # the other side's Contact
    route_set: tuple[NameAddr, ...]
    local_seq: int
    remote_seq: int | None
    peer: Peer
    secure: bool = False
    confirmed: bool = False  # False while only a provisional response created it (early)
    local_contact: str | None = None  # our Contact for target-refresh requests
    extra: dict[str, object] = field(default_factory=dict)

    @functools.cached_property
    def _from_to(self) -> tuple[str, str]:
        """From and To of the requests we send: the parties and tags of a dialog never
        change (§12), so every in-dialog request carries the same two, rendered once."""
        return (
            str(self.local.with_tag(self.local_tag)),
            str(self.remote.with_tag(self.remote_tag)),
        )

    @property
    def id(self) -> DialogId:
        return DialogId(self.call_id, self.local_tag, self.remote_tag)

    # -- creation ---------------------------------------------------------------------------

    @classmethod
    def as_uac(cls, request: Request, response: Response, peer: Peer) -> Dialog:
        """The dialog a 1xx-with-tag or 2xx creates for the UA that sent ``request`` (§12.1.2)."""
        remote_tag = response.to.tag
        local_tag = request.from_.tag
        if not remote_tag or not local_tag:
            raise DialogError(400, "a dialog needs both tags")
        contacts = response.contact
        if contacts == "*" or not contacts:
            raise DialogError(400, "dialog-creating response without Contact")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local=_untagged(request.from_),
            remote=_untagged(request.to),
            remote_target=contacts[0].uri,
            route_set=tuple(reversed(response.record_route)),
            local_seq=request.cseq.number,
            remote_seq=None,
            peer=peer,
            secure=str(request.uri).startswith("sips:"),
            confirmed=200 <= response.status < 300,
            local_contact=request.headers.get("Contact"),
        )

    @classmethod
    def as_uas(cls, request: Request, local_tag: str, peer: Peer) -> Dialog:
        """The dialog our response with To-tag ``local_tag`` creates (§12.1.1)."""
        remote_tag = request.from_.tag
        if not remote_tag:
            raise DialogError(400, "request without From tag")
        contacts = request.contact
        if contacts == "*" or not contacts:
            raise DialogError(400, "dialog-creating request without Contact")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local=_untagged(request.to),
            remote=_untagged(request.from_),
            remote_target=contacts[0].uri,
            route_set=tuple(request.record_route),
            local_seq=random_bits(20) + 1,
            remote_seq=request.cseq.number,
            peer=peer,
            secure=str(request.uri).startswith("sips:"),
        )

    # -- requests we send -------------------------------------------------------------------

    def request(
        self,
        method: str,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        cseq: int | None = None,
    ) -> Request:
        """A new in-dialog request (§12.2.1.1); CSeq is incremented unless given (ACK, CANCEL)."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        from_, to = self._from_to
        entries: list[tuple[str, str]] = [
            *(("Route", str(r)) for r in self.route_set),
            ("Max-Forwards", "70"),
            ("From", from_),
            ("To", to),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
        if self.local_contact and method in ("INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"):
            entries.append(("Contact", self.local_contact))
        entries.extend(headers or ())
        return Request(method, self.remote_target, entries, body)

    def ack(
        self, invite_cseq: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None
    ) -> Request:
        """ACK for a 2xx to the INVITE with CSeq ``invite_cseq`` (§13.2.2.4)."""
        return self.request("ACK", cseq=invite_cseq, body=body, headers=headers)

    # -- requests we receive ----------------------------------------------------------------

    def check_request(self, request: Request) -> None:
        """Validate an in-dialog request and apply target refresh (§12.2.2).

        Raises DialogError(500) for an out-of-order CSeq, as the RFC asks.
        """
        number = request.cseq.number
        method = request.method
        if method not in ("ACK", "CANCEL"):
            if self.remote_seq is not None and number <= self.remote_seq:
                raise DialogError(500, "CSeq out of order")
            self.remote_seq = number
        if method in ("INVITE", "UPDATE"):  # target refresh requests
            contacts = request.contact
            if contacts != "*" and contacts:
                self.remote_target = contacts[0].uri

    def apply_response(self, response: Response) -> None:
        """A 2xx to our target refresh updates the remote target; a 2xx confirms (§12.2.1.2)."""
        if 200 <= response.status < 300:
            self.confirmed = True
            if response.cseq.method in ("INVITE", "UPDATE"):
                contacts = response.contact
                if contacts != "*" and contacts:
                    self.remote_target = contacts[0].uri


def _untagged(addr: NameAddr) -> NameAddr:
    if addr.tag is None:
        return addr
    return NameAddr(addr.uri, addr.display_name, addr.params.without("tag"))


__all__ = ["Dialog", "DialogError", "DialogId", "new_call_id", "new_tag"]
