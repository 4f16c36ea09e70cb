"""The B2BUA: every call between two SIP parties runs through the box as two dialogs.

Leg A is the caller's dialog with the box, leg B the box's dialog with the callee. The
box is always in the path: Call-IDs, tags, Contacts and Vias of one leg never reach the
other (topology hiding), and media is anchored in a `RelaySession` whose addresses
replace the parties' in every SDP.

One asyncio task per call drives leg B's INVITE; everything else (BYE, CANCEL, ACK,
in-dialog requests) arrives through the endpoint's callbacks and is looked up by the
box's own tag. Routing and authentication are injected (``Router``), so the dial plan,
the registrar and trunks live where they belong.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Protocol

from firmware.media.ports import PortAllocator
from firmware.media.relay import Leg, RelaySession

from .dialog import Dialog, DialogError, new_call_id, new_tag
from .endpoint import ClientTransaction, SipEndpoint
from .errors import SipParseError
from .message import Request, Response
from .peer import Peer
from .sdp import OriginManager, SdpError, parse_sdp, rewrite_for_anchor, rtcp_address, rtp_address
from .uri import SipUri

log = logging.getLogger(__name__)

T1 = 0.5
T2 = 4.0
FORWARDED_IN_DIALOG = ("INVITE", "UPDATE", "INFO", "BYE", "MESSAGE", "NOTIFY", "OPTIONS")


@dataclass(frozen=True)
class Target:
    """Where leg B goes: Request-URI, the peer to send to, and who is called."""

    uri: SipUri | str
    peer: Peer
    callee: str


@dataclass(frozen=True)
class Caller:
    """Who is calling, once authenticated (or trusted, e.g. a trunk)."""

    number: str
    display: str | None = None


class Router(Protocol):
    def authenticate(self, request: Request, peer: Peer) -> Caller | Response:
        """The caller, or the response that refuses or challenges the request."""
        ...

    def route(self, caller: Caller, dialled: str) -> list[Target] | int:
        """Where to ring ``dialled``: targets in order, or a SIP status to refuse with."""
        ...


class CallLog(Protocol):
    """CDR sink (firmware.core.cdr.CdrStore fits through a thin adapter)."""

    def started(self, call_id: str, caller: Caller, dialled: str) -> None: ...

    def answered(self, call_id: str) -> None: ...

    def ended(
        self, call_id: str, status: int | None, hangup_by: str, media: dict[str, int]
    ) -> None: ...


@dataclass
class Call:
    id: str
    caller: Caller
    dialled: str
    a_txn: int
    a_invite: Request
    a_peer: Peer
    a_tag: str
    relay: RelaySession
    a_origin: OriginManager
    b_origin: OriginManager
    a: Dialog | None = None
    b: Dialog | None = None
    b_invite: Request | None = None
    b_handle: ClientTransaction | None = None
    b_task: asyncio.Task[None] | None = None
    answered: bool = False
    ended: bool = False
    a_acked: asyncio.Event = field(default_factory=asyncio.Event)
    b_ok: Response | None = None  # leg B's 2xx, to re-ACK its retransmissions
    b_ack: Request | None = None
    started: float = field(default_factory=time.time)


class B2BUA:
    def __init__(
        self,
        endpoint: SipEndpoint,
        router: Router,
        media_address: str,
        ports: PortAllocator,
        call_log: CallLog | None = None,
        *,
        no_answer_timeout: float = 120.0,
    ) -> None:
        self.endpoint = endpoint
        self.router = router
        self.media_address = media_address
        self.ports = ports
        self.call_log = call_log
        self.no_answer_timeout = no_answer_timeout
        self.calls: dict[str, Call] = {}  # by box call id
        self._by_a_tag: dict[tuple[str, str], Call] = {}  # (A Call-ID, our To-tag on A)
        self._by_b_tag: dict[tuple[str, str], Call] = {}  # (B Call-ID, our From-tag on B)
        self._a_invites: dict[int, Call] = {}  # pending A INVITE transactions
        self.stats: dict[str, int] = {"calls": 0, "answered": 0, "failed": 0}

    @property
    def active_calls(self) -> int:
        return len(self.calls)

    # -- entry points from the endpoint ---------------------------------------------------

    def on_invite(self, txn: int, request: Request, peer: Peer) -> None:
        """A new INVITE (no To-tag): authenticate, route, and start leg B."""
        caller = self.router.authenticate(request, peer)
        if isinstance(caller, Response):
            self.endpoint.respond(txn, caller)
            return
        dialled = _dialled(request)
        targets = self.router.route(caller, dialled)
        if isinstance(targets, int):
            self.endpoint.respond(txn, request.make_response(targets, to_tag=new_tag()))
            return
        self.stats["calls"] += 1
        task = asyncio.create_task(self._start(txn, request, peer, caller, dialled, targets))
        task.add_done_callback(_log_failure)

    def on_in_dialog(self, txn: int, request: Request, peer: Peer) -> bool:
        """A request with a To-tag; False if it belongs to no call of ours (-> 481)."""
        found = self._find(request)
        if found is None:
            return False
        call, from_a = found
        own = call.a if from_a else call.b
        if own is None:
            return False
        try:
            own.check_request(request)
        except DialogError as exc:
            self.endpoint.respond(txn, request.make_response(exc.status))
            return True
        if request.method == "BYE":
            self.endpoint.respond(txn, request.make_response(200))
            self._hang_up(
                call, "caller" if from_a else "callee", bye_other=not from_a, bye_a=not from_a
            )
            return True
        if request.method in FORWARDED_IN_DIALOG:
            task = asyncio.create_task(self._forward(call, from_a, txn, request))
            task.add_done_callback(_log_failure)
        else:
            self.endpoint.respond(txn, request.make_response(501))
        return True

    def on_ack(self, request: Request, peer: Peer) -> None:
        """The ACK for a 2xx we sent on leg A (or a re-INVITE's 2xx on either leg)."""
        found = self._find(request)
        if found is None:
            return
        call, from_a = found
        if from_a:
            call.a_acked.set()

    def on_cancel(self, invite_txn: int, request: Request) -> None:
        call = self._a_invites.get(invite_txn)
        if call is None or call.answered:
            return
        if call.b_handle is not None:
            self.endpoint.cancel(call.b_handle)
        self._finish_a(call, 487)
        self._end(call, 487, "caller")

    def on_b_response_retransmitted(self, response: Response) -> None:
        """A 2xx retransmission from leg B: our ACK was lost, send it again."""
        key = (response.call_id, response.from_.tag or "")
        call = self._by_b_tag.get(key)
        if call is not None and call.b_ack is not None and call.b is not None:
            self.endpoint.send_stateless(call.b_ack, call.b.peer)

    # -- call setup -----------------------------------------------------------------------

    async def _start(
        self,
        txn: int,
        request: Request,
        peer: Peer,
        caller: Caller,
        dialled: str,
        targets: list[Target],
    ) -> None:
        try:
            relay = await RelaySession.open(self.media_address, self.ports)
        except Exception:
            log.exception("no media ports for a call")
            self.endpoint.respond(txn, request.make_response(503, to_tag=new_tag()))
            return
        call = Call(
            id=secrets.token_hex(8),
            caller=caller,
            dialled=dialled,
            a_txn=txn,
            a_invite=request,
            a_peer=peer,
            a_tag=new_tag(),
            relay=relay,
            a_origin=OriginManager(self.media_address),
            b_origin=OriginManager(self.media_address),
        )
        self.calls[call.id] = call
        self._a_invites[txn] = call
        if self.call_log is not None:
            self.call_log.started(call.id, caller, dialled)
        try:
            offer = self._anchor(call, request.body, Leg.A, call.b_origin)
        except SdpError as exc:
            log.info("unusable SDP offer", extra={"error": str(exc), "source": str(peer)})
            self._finish_a(call, 488)
            self._end(call, 488, "caller")
            return
        status = 480
        for target in targets:
            if call.ended:
                return
            status = await self._try_target(call, target, offer)
            if status < 300 or call.ended:
                return
        self._finish_a(call, status if status >= 400 else 480)
        self._end(call, status, "callee")

    async def _try_target(self, call: Call, target: Target, offer: bytes) -> int:
        a = call.a_invite
        b_call_id = new_call_id(self.media_address)
        b_tag = new_tag()
        display = f'"{call.caller.display}" ' if call.caller.display else ""
        # From/To name the callee and caller at the box, never at the callee's own address
        # (a phone's call history must call back through the box)
        own = self.endpoint.address(target.peer.transport) or self.endpoint.address("udp")
        host = f"{own[0]}:{own[1]}" if own else self.media_address
        headers = [
            ("Max-Forwards", str(max(0, (a.max_forwards or 70) - 1))),
            ("From", f"{display}<sip:{call.caller.number}@{host}>;tag={b_tag}"),
            ("To", f"<sip:{target.callee}@{host}>"),
            ("Call-ID", b_call_id),
            ("CSeq", "1 INVITE"),
            ("Contact", self.contact(target.peer.transport)),
            ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO"),
        ]
        if offer:
            headers.append(("Content-Type", "application/sdp"))
        invite = Request("INVITE", target.uri, headers, offer)
        call.b_invite = invite
        self._by_b_tag[(b_call_id, b_tag)] = call

        def provisional(response: Response) -> None:
            if call.ended or call.answered or response.status == 100:
                return
            body = self._anchored_answer(call, response, Leg.B) if response.body else b""
            self._respond_a(call, response.status, body)

        handle = self.endpoint.start_request(invite, target.peer, on_provisional=provisional)
        call.b_handle = handle
        try:
            final = await asyncio.wait_for(handle.response(), self.no_answer_timeout)
        except TimeoutError:
            self.endpoint.cancel(handle)
            return 408
        if call.ended:  # cancelled meanwhile: a late 2xx must be ACKed and hung up
            if 200 <= final.status < 300:
                self._ack_and_bye(invite, final, target.peer)
            return 487
        if final.status >= 300:
            return final.status
        # answered
        try:
            call.b = Dialog.as_uac(invite, final, target.peer)
        except (DialogError, SipParseError):
            return 502
        call.b_ok = final
        call.b_ack = call.b.ack(invite.cseq.number)
        self.endpoint.send_stateless(call.b_ack, target.peer)
        try:
            body = self._anchored_answer(call, final, Leg.B)
        except SdpError:
            body = b""
        call.answered = True
        self.stats["answered"] += 1
        if self.call_log is not None:
            self.call_log.answered(call.id)
        ok = self._respond_a(call, 200, body)
        call.a = Dialog.as_uas(call.a_invite, call.a_tag, call.a_peer)
        call.a.confirmed = True
        call.a.local_contact = self.contact(call.a_peer.transport)
        self._by_a_tag[(call.a.call_id, call.a_tag)] = call
        self._a_invites.pop(call.a_txn, None)
        if call.a_peer.transport == "udp":
            retransmit = asyncio.create_task(self._retransmit_2xx(call, ok))
            retransmit.add_done_callback(_log_failure)
        return 200

    def _ack_and_bye(self, invite: Request, ok: Response, peer: Peer) -> None:
        with contextlib.suppress(DialogError, SipParseError):
            dialog = Dialog.as_uac(invite, ok, peer)
            self.endpoint.send_stateless(dialog.ack(invite.cseq.number), peer)
            bye = dialog.request("BYE")
            task = asyncio.create_task(self.endpoint.request(bye, peer))
            task.add_done_callback(_log_failure)

    async def _retransmit_2xx(self, call: Call, ok: Response) -> None:
        """RFC 3261 §13.3.1.4: the UAS core resends its 2xx over UDP until the ACK comes."""
        interval = T1
        waited = 0.0
        while waited < 64 * T1:
            try:
                await asyncio.wait_for(call.a_acked.wait(), interval)
                return
            except TimeoutError:
                waited += interval
                if call.ended:
                    return
                self.endpoint.send_stateless(ok, call.a_peer)
                interval = min(interval * 2, T2)
        log.info("no ACK for 200 OK; ending the call", extra={"call": call.id})
        self._hang_up(call, "box", bye_other=True, bye_a=True)

    def contact(self, transport: str) -> str:
        """The box's Contact for a leg over ``transport``: what the other side sends to."""
        address = self.endpoint.address(transport) or self.endpoint.address("udp")  # type: ignore[arg-type]
        host, port = address or (self.media_address, 5060)
        host = f"[{host}]" if ":" in host else host
        suffix = "" if transport == "udp" else f";transport={transport}"
        return f"<sip:b2bua@{host}:{port}{suffix}>"

    # -- SDP --------------------------------------------------------------------------------

    def _anchor(self, call: Call, body: bytes, source: Leg, origin: OriginManager) -> bytes:
        """Record ``source``'s media address in the relay; return the SDP for the other leg."""
        if not body:
            return b""
        sdp = parse_sdp(body)
        if not sdp.media:
            raise SdpError("no media")
        rtp = rtp_address(sdp, 0)
        rtcp = rtcp_address(sdp, 0)
        if rtp is not None:
            call.relay.set_remote(source, rtp[0], rtp[1], rtcp[1] if rtcp else None)
        other = source.other
        ports = [call.relay.port(other)] + [0] * (len(sdp.media) - 1)
        out = rewrite_for_anchor(sdp, self.media_address, ports, origin)
        for extra in out.media[1:]:  # one anchored stream per call; others declined
            extra.port = 0
        return out.to_bytes()

    def _anchored_answer(self, call: Call, response: Response, source: Leg) -> bytes:
        origin = call.a_origin if source is Leg.B else call.b_origin
        return self._anchor(call, response.body, source, origin)

    # -- responses on leg A -------------------------------------------------------------

    def _respond_a(self, call: Call, status: int, body: bytes = b"") -> Response:
        headers = [("Contact", self.contact(call.a_peer.transport))]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        response = call.a_invite.make_response(
            status, to_tag=call.a_tag, headers=headers, body=body
        )
        self.endpoint.respond(call.a_txn, response)
        return response

    def _finish_a(self, call: Call, status: int) -> None:
        if call.a_txn in self._a_invites:
            self._a_invites.pop(call.a_txn, None)
            response = call.a_invite.make_response(status, to_tag=call.a_tag)
            self.endpoint.respond(call.a_txn, response)

    # -- in-dialog ----------------------------------------------------------------------

    def _find(self, request: Request | Response) -> tuple[Call, bool] | None:
        """(call, came from leg A) for an in-dialog message."""
        call_id = request.call_id
        tag = request.to.tag or ""
        call = self._by_a_tag.get((call_id, tag))
        if call is not None:
            return call, True
        call = self._by_b_tag.get((call_id, tag))
        if call is not None:
            return call, False
        return None

    async def _forward(self, call: Call, from_a: bool, txn: int, request: Request) -> None:
        """Pass an in-dialog request to the other leg; its answer comes back."""
        other = call.b if from_a else call.a
        if other is None or call.ended:
            self.endpoint.respond(txn, request.make_response(481))
            return
        source, target = (Leg.A, Leg.B) if from_a else (Leg.B, Leg.A)
        origin = call.b_origin if from_a else call.a_origin
        body = request.body
        headers: list[tuple[str, str]] = []
        if body and request.content_type is not None and "sdp" in str(request.content_type):
            try:
                body = self._anchor(call, body, source, origin)
            except SdpError:
                self.endpoint.respond(txn, request.make_response(488))
                return
        if body:
            ctype = request.headers.get("Content-Type") or "application/sdp"
            headers.append(("Content-Type", ctype))
        out = other.request(request.method, headers=headers, body=body)
        response = await self.endpoint.request(out, other.peer)
        answer = response.body
        reply_headers: list[tuple[str, str]] = []
        if (
            answer
            and 200 <= response.status < 300
            and "sdp" in (response.headers.get("Content-Type") or "")
        ):
            try:
                answer = self._anchor(
                    call, answer, target, call.a_origin if from_a else call.b_origin
                )
            except SdpError:
                answer = b""
        if answer:
            reply_headers.append(
                ("Content-Type", response.headers.get("Content-Type") or "application/sdp")
            )
        if request.method == "INVITE":
            reply_headers.append(
                ("Contact", self.contact(call.a_peer.transport if from_a else other.peer.transport))
            )
            if 200 <= response.status < 300:
                other.apply_response(response)
                self.endpoint.send_stateless(other.ack(out.cseq.number), other.peer)
        reply = request.make_response(
            response.status, response.reason, headers=reply_headers, body=answer
        )
        self.endpoint.respond(txn, reply)

    # -- teardown ---------------------------------------------------------------------

    def _hang_up(self, call: Call, by: str, *, bye_other: bool, bye_a: bool) -> None:
        """End an answered call; BYE the leg(s) that did not hang up."""
        if call.ended:
            return
        legs = []
        if by == "caller" or (by == "box" and bye_other):
            legs.append(call.b)
        if by == "callee" or (by == "box" and bye_a):
            legs.append(call.a)
        for dialog in legs:
            if dialog is not None:
                bye = dialog.request("BYE")
                task = asyncio.create_task(self.endpoint.request(bye, dialog.peer))
                task.add_done_callback(_log_failure)
        self._end(call, 200 if call.answered else 487, by)

    def _end(self, call: Call, status: int | None, by: str) -> None:
        if call.ended:
            return
        call.ended = True
        call.a_acked.set()
        stats = call.relay.stats()
        media = {
            "rtp_a_to_b_packets": stats.rtp_a_to_b.packets,
            "rtp_b_to_a_packets": stats.rtp_b_to_a.packets,
            "rtp_dropped": stats.rtp_a_to_b.dropped + stats.rtp_b_to_a.dropped,
        }
        call.relay.close()
        self.calls.pop(call.id, None)
        self._a_invites.pop(call.a_txn, None)
        if call.a is not None:
            self._by_a_tag.pop((call.a.call_id, call.a_tag), None)
        if call.b_invite is not None:
            self._by_b_tag.pop((call.b_invite.call_id, call.b_invite.from_.tag or ""), None)
        if not call.answered:
            self.stats["failed"] += 1
        if self.call_log is not None:
            self.call_log.ended(call.id, status, by, media)


def _dialled(request: Request) -> str:
    uri = request.uri
    user = uri.user if isinstance(uri, SipUri) else None
    return user or ""


def _log_failure(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("B2BUA task failed", exc_info=task.exception())
