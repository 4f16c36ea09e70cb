"""A small SIP user agent on a `SipEndpoint`: the built-in ATA's side of calls.

It talks to one server (the box's own B2BUA) and needs no REGISTER: the server routes
calls for the UA's numbers to its address statically, and trusts calls from it by
source address. What it does (RFC 3261):

* outgoing: INVITE with an SDP offer to ``sip:NUMBER@server``; 18x and 2xx reported to
  the listener; ACK for the 2xx (again for each retransmitted 2xx); CANCEL when the
  call is hung up before an answer (a 2xx that crosses the CANCEL is ACKed and BYEd);
* incoming: INVITE -> the listener accepts (180 Ringing) or refuses (486 and the like);
  `UserAgent.answer` sends 200 with the SDP answer, retransmitted until the ACK comes
  (§13.3.1.4: T1 doubling up to T2, BYE after 64*T1); CANCEL -> 487;
* in a dialog: BYE either way; a re-INVITE or UPDATE (a session refresh) gets 200 with
  the same SDP (491 while our own re-INVITE is pending); OPTIONS and INFO get 200;
  anything else 501;
* hold and resume (`UserAgent.hold` / `resume`): a re-INVITE offering the call's own SDP
  with ``a=sendonly`` / ``a=sendrecv`` and the next ``o=`` version (same RTP address),
  ACKed; a 491 (glare) is retried once after RFC 3261 §14.1's wait;
* transfer (`UserAgent.refer`, RFC 3515): REFER in the call's dialog, blind to a number
  or attended with ``Replaces`` naming another of our calls (RFC 3891); the outcome
  comes as NOTIFYs with a ``message/sipfrag`` status line, each answered 200, and the
  final one (or a refused REFER) goes to the listener's ``on_transfer``.

Media is not its business: SDP bodies come from and go to the listener as bytes (hold
only rewrites the direction of the SDP the listener gave).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol
from urllib.parse import quote

from firmware.sip.dialog import Dialog, DialogError, new_call_id, new_tag
from firmware.sip.endpoint import ClientTransaction, EndpointConfig, SipEndpoint
from firmware.sip.errors import SipParseError
from firmware.sip.message import Request, Response
from firmware.sip.peer import Peer
from firmware.sip.sdp import Direction, SdpError, parse_sdp, set_direction
from firmware.sip.uri import SipUri

log = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY"


class CallState(enum.Enum):
    CALLING = "calling"  # outgoing INVITE sent
    EARLY = "early"  # outgoing: 18x received
    OFFERED = "offered"  # incoming: 180 sent, waiting for our answer
    CONFIRMED = "confirmed"
    ENDED = "ended"


class UaCall:
    """One call of the UA. ``context`` is the listener's own handle (its port leg)."""

    _ids = itertools.count(1)

    def __init__(self, outgoing: bool, number: str, caller: str | None) -> None:
        self.id = next(self._ids)
        self.outgoing = outgoing
        self.number = number  # the called number
        self.caller = caller  # the calling number (None: anonymous)
        self.display: str | None = None
        self.state = CallState.CALLING if outgoing else CallState.OFFERED
        self.local_sdp = b""
        self.remote_sdp = b""
        self.dialog: Dialog | None = None
        self.status: int | None = None  # the final status of the INVITE
        self.context: object | None = None
        # outgoing
        self.invite: Request | None = None
        self.handle: ClientTransaction | None = None
        self.ack: Request | None = None
        self.hung_up = False
        # in the dialog: ACKs we sent by INVITE CSeq (a retransmitted 2xx gets its ACK
        # again), our re-INVITEs one at a time, the hold we offered, a transfer pending
        self.acks: dict[int, Request] = {}
        self.reinvite_lock = asyncio.Lock()
        self.reinviting = False
        self.held = False
        self.transferring = False
        # incoming
        self.txn: int | None = None
        self.request: Request | None = None
        self.peer: Peer | None = None
        self.local_tag = new_tag()
        self.acked = asyncio.Event()
        self.last_ack: int | None = None  # CSeq of the last ACK received

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    def __repr__(self) -> str:
        way = "out" if self.outgoing else "in"
        return f"<UaCall {self.id} {way} {self.caller}->{self.number} {self.state.value}>"


class UaListener(Protocol):
    """What the UA tells its user (the analog gateway). Callbacks run on the loop."""

    def on_incoming(self, call: UaCall) -> int | None:
        """A new call for ``call.number``: None accepts it (180 is sent), a status refuses."""

    def on_progress(self, call: UaCall, status: int, sdp: bytes) -> None:
        """An outgoing call got a 18x (``sdp``: early media, or empty)."""

    def on_answered(self, call: UaCall, sdp: bytes) -> None:
        """An outgoing call was answered (2xx, ACK sent)."""

    def on_failed(self, call: UaCall, status: int) -> None:
        """An outgoing call got a final error (not after our own hang-up)."""

    def on_ended(self, call: UaCall) -> None:
        """The far end ended the call: BYE, or CANCEL of an incoming call not yet answered."""

    def on_transfer(self, call: UaCall, status: int) -> None:
        """The final outcome of our REFER on ``call``: the NOTIFY's sipfrag status (2xx: the
        transfer happened), or the REFER's own error status."""


class UserAgent:
    """The UA: ``start()``, then `invite` / `answer` / `hangup`; ``close()`` at the end.

    ``server`` is the peer all calls go to; ``port`` 0 lets the OS choose (see `address`).
    """

    def __init__(
        self,
        listener: UaListener,
        server: Peer,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        user: str = "gateway",
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.listener = listener
        self.server = server
        self.user = user
        self.endpoint = SipEndpoint(
            EndpointConfig(host=host, udp_port=port, tcp_port=None), tu=self, clock=clock
        )
        self.calls: dict[tuple[str, str], UaCall] = {}  # (Call-ID, our tag) -> call
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = {"calls_out": 0, "calls_in": 0, "refused": 0}

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        await self.endpoint.start()

    async def close(self) -> None:
        for call in list(self.calls.values()):
            with contextlib.suppress(Exception):
                self.hangup(call)
        for task in list(self._tasks):
            task.cancel()
        await self.endpoint.close()
        self.calls.clear()

    @property
    def address(self) -> tuple[str, int]:
        address = self.endpoint.address("udp")
        if address is None:
            raise RuntimeError("user agent not started")
        return address

    @property
    def contact(self) -> str:
        host, port = self.address
        return f"<sip:{self.user}@{host}:{port}>"

    @property
    def active(self) -> int:
        return len(self.calls)

    # --- outgoing -----------------------------------------------------------------------

    def invite(
        self, number: str, caller: str | None, sdp: bytes, *, context: object | None = None
    ) -> UaCall:
        """Call ``number`` at the server presenting ``caller``; events go to the listener."""
        if not number or any(c in number for c in "@:;<> \r\n"):
            raise ValueError(f"cannot call {number!r}")
        call = UaCall(True, number, caller)
        call.context = context
        call.local_sdp = sdp
        host, port = self.address
        server = f"{self.server.host}:{self.server.port}"
        user = number.replace("#", "%23")  # feature codes end in # (RFC 3261 25.1 escaping)
        from_user = caller if caller and caller.isalnum() else "anonymous"
        call_id = new_call_id(host)
        invite = Request(
            "INVITE",
            f"sip:{user}@{server}",
            [
                ("From", f"<sip:{from_user}@{host}:{port}>;tag={call.local_tag}"),
                ("To", f"<sip:{user}@{server}>"),
                ("Call-ID", call_id),
                ("CSeq", "1 INVITE"),
                ("Contact", self.contact),
                ("Allow", ALLOW),
                ("Content-Type", "application/sdp"),
            ],
            sdp,
        )
        call.invite = invite
        self.calls[(call_id, call.local_tag)] = call
        self.stats["calls_out"] += 1
        handle = self.endpoint.start_request(
            invite, self.server, on_provisional=lambda r: self._provisional(call, r)
        )
        call.handle = handle
        self._spawn(self._await_final(call, handle))
        return call

    def _provisional(self, call: UaCall, response: Response) -> None:
        if call.ended or call.hung_up or response.status == 100:
            return
        call.state = CallState.EARLY
        self.listener.on_progress(call, response.status, response.body)

    async def _await_final(self, call: UaCall, handle: ClientTransaction) -> None:
        final = await handle.response()
        call.status = final.status
        if 200 <= final.status < 300:
            self._confirm_uac(call, final)
            return
        self._forget(call)
        if not call.hung_up:
            self.listener.on_failed(call, final.status)

    def _confirm_uac(self, call: UaCall, ok: Response) -> None:
        assert call.invite is not None
        try:
            dialog = Dialog.as_uac(call.invite, ok, self.server)
        except (DialogError, SipParseError) as exc:
            log.warning("unusable 2xx to our INVITE", extra={"error": str(exc)})
            self._forget(call)
            if not call.hung_up:
                self.listener.on_failed(call, 502)
            return
        call.dialog = dialog
        call.ack = dialog.ack(call.invite.cseq.number)
        call.acks[call.invite.cseq.number] = call.ack
        self.endpoint.send_stateless(call.ack, dialog.peer)
        if call.hung_up:  # the answer crossed our CANCEL: take it and end it
            self._bye(call)
            return
        call.state = CallState.CONFIRMED
        call.remote_sdp = ok.body
        self.listener.on_answered(call, ok.body)

    # --- incoming ---------------------------------------------------------------------------

    def answer(self, call: UaCall, sdp: bytes) -> None:
        """Answer an incoming call with 200 OK and ``sdp``."""
        if call.outgoing or call.state is not CallState.OFFERED:
            raise ValueError(f"{call!r} cannot be answered")
        assert call.request is not None and call.txn is not None and call.peer is not None
        call.local_sdp = sdp
        ok = call.request.make_response(
            200,
            to_tag=call.local_tag,
            headers=[
                *(("Record-Route", str(r)) for r in call.request.record_route),
                ("Contact", self.contact),
                ("Allow", ALLOW),
                ("Content-Type", "application/sdp"),
            ],
            body=sdp,
        )
        try:
            call.dialog = Dialog.as_uas(call.request, call.local_tag, call.peer)
        except DialogError as exc:
            self.endpoint.respond(call.txn, call.request.make_response(exc.status))
            self._forget(call)
            raise ValueError(str(exc)) from None
        call.dialog.local_contact = self.contact
        call.state = CallState.CONFIRMED
        call.status = 200
        self.endpoint.respond(call.txn, ok)
        self._spawn(self._retransmit_ok(call, ok, call.peer))

    async def _retransmit_ok(self, call: UaCall, ok: Response, peer: Peer) -> None:
        timers = self.endpoint.config.timers
        interval, waited = timers.t1, 0.0
        while waited < 64 * timers.t1:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.acked.wait(), interval)
                return
            if call.ended:
                return
            waited += interval
            interval = min(2 * interval, timers.t2)
            self.endpoint.send_stateless(ok, peer)
        log.warning("no ACK for our 200: ending the call", extra={"call": call.id})
        if not call.ended:
            self._bye(call)
            self.listener.on_ended(call)

    def _incoming(self, txn: int, request: Request, peer: Peer) -> None:
        uri = request.uri
        number = uri.user if isinstance(uri, SipUri) and uri.user else ""
        caller_uri = request.from_.uri
        caller = caller_uri.user if isinstance(caller_uri, SipUri) else None
        call = UaCall(False, number, caller if caller != "anonymous" else None)
        call.display = request.from_.display_name
        call.txn, call.request, call.peer = txn, request, peer
        call.remote_sdp = request.body
        self.stats["calls_in"] += 1
        refusal = self.listener.on_incoming(call) if number else 404
        if refusal is not None:
            self.stats["refused"] += 1
            call.state = CallState.ENDED
            call.status = refusal
            self.endpoint.respond(txn, request.make_response(refusal, to_tag=call.local_tag))
            return
        self.calls[(request.call_id, call.local_tag)] = call
        ringing = request.make_response(
            180, to_tag=call.local_tag, headers=[("Contact", self.contact)]
        )
        self.endpoint.respond(txn, ringing)

    # --- in a call: hold, resume, transfer ------------------------------------------------------

    def hold(self, call: UaCall) -> None:
        """Put ``call`` on hold: re-INVITE with our SDP made ``sendonly``."""
        self._redirect(call, "sendonly")

    def resume(self, call: UaCall) -> None:
        """Take ``call`` off hold: re-INVITE with our SDP made ``sendrecv``."""
        self._redirect(call, "sendrecv")

    def _redirect(self, call: UaCall, value: Direction) -> None:
        if call.state is not CallState.CONFIRMED or call.dialog is None:
            raise ValueError(f"{call!r} is not in a confirmed dialog")
        call.local_sdp = with_direction(call.local_sdp, value)
        call.held = value != "sendrecv"
        self._spawn(self._reinvite(call))

    async def _reinvite(self, call: UaCall) -> None:
        async with call.reinvite_lock:
            for attempt in range(2):
                dialog = call.dialog
                if call.ended or call.hung_up or dialog is None:
                    return
                request = dialog.request(
                    "INVITE",
                    headers=[("Allow", ALLOW), ("Content-Type", "application/sdp")],
                    body=call.local_sdp,
                )
                call.reinviting = True
                try:
                    response = await self.endpoint.request(request, dialog.peer)
                finally:
                    call.reinviting = False
                if 200 <= response.status < 300:
                    dialog.apply_response(response)
                    ack = dialog.ack(request.cseq.number)
                    call.acks[request.cseq.number] = ack
                    self.endpoint.send_stateless(ack, dialog.peer)
                    if response.body:
                        call.remote_sdp = response.body
                    return
                if response.status == 491 and attempt == 0:  # glare: §14.1's wait
                    await asyncio.sleep(2.1 if call.outgoing else 1.0)
                    continue
                log.info("re-INVITE answered %d", response.status, extra={"call": call.id})
                if response.status in (408, 481) and not call.ended:  # the dialog is gone
                    self._forget(call)
                    self.listener.on_ended(call)
                return

    def refer(self, call: UaCall, number: str, replaces: UaCall | None = None) -> None:
        """Transfer the far party of ``call`` to ``number`` (blind), or, with ``replaces``
        (our answered call with that number), attended: the far parties of both calls are
        joined. The outcome goes to the listener's ``on_transfer``."""
        if call.state is not CallState.CONFIRMED or call.dialog is None:
            raise ValueError(f"{call!r} is not in a confirmed dialog")
        if not number or any(c in number for c in "@:;<>?& \r\n"):
            raise ValueError(f"cannot transfer to {number!r}")
        target = f"sip:{number.replace('#', '%23')}@{self.server.host}:{self.server.port}"
        if replaces is not None:
            other = replaces.dialog
            if replaces.state is not CallState.CONFIRMED or other is None or replaces is call:
                raise ValueError(f"{replaces!r} cannot be replaced")
            value = f"{other.call_id};to-tag={other.remote_tag};from-tag={other.local_tag}"
            target += "?Replaces=" + quote(value, safe="")
        dialog = call.dialog
        request = dialog.request(
            "REFER",
            headers=[("Refer-To", f"<{target}>"), ("Referred-By", str(dialog.local))],
        )
        call.transferring = True
        self._spawn(self._refer(call, request, dialog.peer))

    async def _refer(self, call: UaCall, request: Request, peer: Peer) -> None:
        response = await self.endpoint.request(request, peer)
        if response.status >= 300 and call.transferring:
            call.transferring = False
            self.listener.on_transfer(call, response.status)

    def _notified(self, call: UaCall, request: Request) -> None:
        event = (request.headers.get("Event") or "").split(";")[0].strip().lower()
        if event != "refer" or not call.transferring:
            return
        status = sipfrag_status(request.body)
        state = (request.headers.get("Subscription-State") or "").lower()
        if status is None and state.startswith("terminated"):
            status = 500  # the subscription ended without saying how: a failure
        if status is not None and status >= 200:
            call.transferring = False
            self.listener.on_transfer(call, status)

    # --- both ---------------------------------------------------------------------------------

    def hangup(self, call: UaCall, status: int = 480) -> None:
        """End ``call`` from our side: CANCEL, BYE, or ``status`` to an unanswered incoming call."""
        if call.ended or call.hung_up:
            return
        call.hung_up = True
        if call.state is CallState.CONFIRMED:
            self._bye(call)
        elif call.outgoing:
            if call.handle is not None:
                call.handle.cancel()  # the final response (487) ends it in _await_final
        else:
            if call.txn is not None:
                self.endpoint.reply(call.txn, status)
            call.status = status
            self._forget(call)

    def _bye(self, call: UaCall) -> None:
        self._forget(call)
        dialog = call.dialog
        if dialog is None:
            return
        bye = dialog.request("BYE")

        async def send() -> None:
            response = await self.endpoint.request(bye, dialog.peer)
            if response.status >= 300:
                log.info("BYE answered %d", response.status, extra={"call": call.id})

        self._spawn(send())

    def _forget(self, call: UaCall) -> None:
        call.state = CallState.ENDED
        for key, value in list(self.calls.items()):
            if value is call:
                del self.calls[key]

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("user agent task failed", exc_info=task.exception())

    # --- transaction user ---------------------------------------------------------------------

    def on_request(self, txn: int, request: Request, peer: Peer) -> None:
        if request.to.tag is None:
            if request.method == "INVITE":
                self._incoming(txn, request, peer)
            elif request.method == "OPTIONS":
                self.endpoint.reply(txn, 200, headers=[("Allow", ALLOW)])
            else:
                self.endpoint.reply(txn, 405, headers=[("Allow", ALLOW)])
            return
        call = self.calls.get((request.call_id, request.to.tag))
        if call is None or call.dialog is None:
            self.endpoint.respond(txn, request.make_response(481))
            return
        try:
            call.dialog.check_request(request)
        except DialogError as exc:
            self.endpoint.respond(txn, request.make_response(exc.status))
            return
        method = request.method
        if method == "BYE":
            self.endpoint.respond(txn, request.make_response(200))
            self._forget(call)
            self.listener.on_ended(call)
        elif method == "INVITE" and call.reinviting:
            self.endpoint.respond(txn, request.make_response(491))
        elif method == "NOTIFY":
            self.endpoint.respond(txn, request.make_response(200))
            self._notified(call, request)
        elif method in ("INVITE", "UPDATE"):  # a refresh: same session, same SDP
            if request.body:
                call.remote_sdp = request.body  # (a hold from the far end changes nothing here)
            body = call.local_sdp if request.body or method == "INVITE" else b""
            headers = [("Contact", self.contact), ("Allow", ALLOW)]
            if body:
                headers.append(("Content-Type", "application/sdp"))
            self.endpoint.respond(txn, request.make_response(200, headers=headers, body=body))
        elif method in ("OPTIONS", "INFO"):
            self.endpoint.respond(txn, request.make_response(200))
        else:
            self.endpoint.respond(txn, request.make_response(501))

    def on_ack(self, request: Request, peer: Peer) -> None:
        call = self.calls.get((request.call_id, request.to.tag or ""))
        if call is not None:
            call.acked.set()
            call.last_ack = request.cseq.number

    def on_cancel(self, invite_txn: int, cancel: Request, peer: Peer) -> None:
        self.endpoint.reply(invite_txn, 487)
        for call in list(self.calls.values()):
            if call.txn == invite_txn and call.state is CallState.OFFERED:
                call.status = 487
                self._forget(call)
                self.listener.on_ended(call)

    def on_response(self, txn: int | None, response: Response, peer: Peer) -> None:
        """A retransmitted 2xx to our INVITE: our ACK was lost, send it again."""
        if response.cseq.method != "INVITE" or not 200 <= response.status < 300:
            return
        for call in self.calls.values():
            dialog = call.dialog
            if dialog is not None and dialog.call_id == response.call_id:
                ack = call.acks.get(response.cseq.number)
                if ack is not None:
                    self.endpoint.send_stateless(ack, dialog.peer)
                return

    def on_failure(self, txn: int, reason: str) -> None:
        log.debug("server transaction failed", extra={"txn": txn, "reason": reason})


def with_direction(sdp: bytes, value: Direction) -> bytes:
    """``sdp`` with every stream's direction set to ``value`` and the next ``o=`` version
    (a new offer in the same session, RFC 3264 §8)."""
    try:
        session = parse_sdp(sdp)
    except SdpError as exc:
        raise ValueError(f"cannot re-offer our SDP: {exc}") from None
    for media in session.media:
        set_direction(media, value)
    session.origin.session_version += 1
    return session.to_bytes()


def sipfrag_status(body: bytes) -> int | None:
    """The status code of a ``message/sipfrag`` status line (``SIP/2.0 200 OK``)."""
    first = body.split(b"\n", 1)[0].strip().split()
    if len(first) >= 2 and first[0].upper().startswith(b"SIP/") and first[1].isdigit():
        return int(first[1])
    return None


__all__ = ["CallState", "UaCall", "UaListener", "UserAgent", "sipfrag_status", "with_direction"]
