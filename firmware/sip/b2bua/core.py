"""The B2BUA: every call between two SIP parties runs through the box as two dialogs.

The caller's dialog with the box is one leg, the box's dialog with the callee the
other. The box is always in the path: Call-IDs, tags, Contacts and Vias of one leg
never reach the other (topology hiding), and media is anchored in a `RelaySession`
whose addresses replace the parties' in every SDP.

Call setup follows the router's plan: steps of targets rung in parallel (forking),
each step for at most its timeout (no-answer forwarding), the next step after busy or
no answer. Per leg the box does 100rel/PRACK (RFC 3262) and session timers (RFC 4028);
a caller's INVITE without SDP (late offer) is answered with the callee's offer and
the caller's ACK carries the answer on to the callee. In-dialog requests are passed
to the other leg with their SDP re-anchored, except session refreshes (answered by
the box on that leg) and REFER (transfers, see `transfers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from firmware.media.bridge import MediaBridge
from firmware.media.ports import PortAllocator
from firmware.media.relay import Leg as Side
from firmware.media.relay import RelaySession
from firmware.media.srtp import SrtpSession

from ..dialog import Dialog, DialogError, new_call_id, new_tag
from ..endpoint import SipEndpoint
from ..errors import SipParseError
from ..ids import random_hex
from ..message import Request, Response
from ..peer import Peer
from ..sdp import (
    OriginManager,
    SdpError,
    SessionDescription,
    parse_sdp,
    rewrite_for_anchor,
    rtcp_address,
    rtp_address,
    sdp_changed,
)
from ..uri import SipUri
from . import session_timer as st
from .call import Anchor, Branch, Call, CallLeg
from .hold import MusicOnHold
from .local import LocalAnswerer
from .media import MediaRefused, SrtpPolicy, answer_to_caller, offer_to_callee, plan_for_offer
from .plan import (
    Caller,
    CallLog,
    ConferenceRoom,
    LocalAnswer,
    Router,
    RouteStep,
    Target,
    applies,
    best_final,
    steps,
)
from .reliable import parse_rack, parse_rseq, wants_reliable
from .rooms import ConferenceRooms, RoomError, answer_sdp
from .transfers import Transfers

log = logging.getLogger(__name__)

T1 = 0.5
T2 = 4.0
FORWARDED_IN_DIALOG = ("INVITE", "UPDATE", "INFO", "MESSAGE", "NOTIFY", "OPTIONS")
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK, REFER, NOTIFY"
DEFAULT_SESSION_EXPIRES = 1800


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
        session_expires: int = DEFAULT_SESSION_EXPIRES,
        min_se: int = st.MIN_SE,
        music_on_hold: bool = True,
        open_relay: Callable[[str, Any], Awaitable[Anchor]] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.router = router
        self.media_address = media_address
        self.ports = ports
        self.call_log = call_log
        self.no_answer_timeout = no_answer_timeout
        self.session_expires = session_expires
        self.min_se = min_se
        self.calls: dict[str, Call] = {}  # by box call id
        self._legs: dict[tuple[str, str], tuple[Call, CallLeg]] = {}  # (Call-ID, our tag)
        self._branches: dict[tuple[str, str], tuple[Call, Branch]] = {}
        self._a_invites: dict[int, Call] = {}  # pending A INVITE transactions
        self._detached: dict[tuple[str, str], CallLeg] = {}  # transferred away, awaiting BYE
        self._awaiting_ack: dict[tuple[str, str], CallLeg] = {}  # ended, BYE held for ACK
        self.stats: dict[str, int] = {"calls": 0, "answered": 0, "failed": 0, "transfers": 0}
        self.transfers = Transfers(self)
        self.local = LocalAnswerer(self)
        self.moh: MusicOnHold | None = MusicOnHold(self) if music_on_hold else None
        self.rooms = ConferenceRooms(media_address, ports)
        # where a plain call's relay session comes from: this process, or relay workers
        self.open_relay: Callable[[str, Any], Awaitable[Anchor]] = (
            open_relay if open_relay is not None else RelaySession.open
        )
        self._relay_in_process = open_relay is None  # can be handed over to a bridge
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, looked up once (`asyncio.get_running_loop` is a getpid
        system call each time, and the call path asks for it a dozen times)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        return loop

    @property
    def active_calls(self) -> int:
        return len(self.calls)

    # -- entry points from the endpoint ---------------------------------------------------

    def on_invite(self, txn: int, request: Request, peer: Peer) -> None:
        """A new INVITE (no To-tag): authenticate, route, and start the call."""
        caller = self.router.authenticate(request, peer)
        if isinstance(caller, Response):
            self.endpoint.respond(txn, caller)
            return
        try:
            a_timer, a_timer_headers = st.negotiate_uas(request, self.session_expires, self.min_se)
        except st.SessionTimerError as exc:
            response = request.make_response(
                422, to_tag=new_tag(), headers=[("Min-SE", str(exc.min_se))]
            )
            self.endpoint.respond(txn, response)
            return
        dialled = _dialled(request)
        plan = self.router.route(caller, dialled)
        if isinstance(plan, int):
            self.endpoint.respond(txn, request.make_response(plan, to_tag=new_tag()))
            return
        self.stats["calls"] += 1
        task = self.loop.create_task(
            self._start(txn, request, peer, caller, dialled, plan, a_timer, a_timer_headers)
        )
        task.add_done_callback(_log_failure)

    def on_in_dialog(self, txn: int, request: Request, peer: Peer) -> bool:
        """A request with a To-tag; False if it belongs to no call of ours (-> 481)."""
        key = (request.call_id, request.to.tag or "")
        detached = self._detached.get(key)
        if detached is not None:
            return self._on_detached(txn, request, detached)
        found = self._legs.get(key)
        if found is None:
            found_branch = self._branches.get(key)
            if found_branch is not None:  # early dialog with a callee: nothing to do there
                self.endpoint.respond(txn, request.make_response(481))
                return True
            return False
        call, leg = found
        if leg.dialog is None:
            return self._on_early_a(txn, request, call)
        try:
            leg.dialog.check_request(request)
        except DialogError as exc:
            self.endpoint.respond(txn, request.make_response(exc.status))
            return True
        method = request.method
        if method == "BYE":
            self.endpoint.respond(txn, request.make_response(200))
            self._hang_up(call, leg.hangup_name, exclude=leg)
        elif method == "REFER":
            self.transfers.on_refer(txn, request, call, leg)
        elif method == "PRACK":
            self.endpoint.respond(txn, request.make_response(481))
        elif self.moh is not None and self.moh.wants(call, leg, request):
            task = self.loop.create_task(self.moh.handle(txn, call, leg, request))
            task.add_done_callback(_log_failure)
        elif self._is_refresh(request, leg):
            self._answer_refresh(txn, request, leg)
        elif method in FORWARDED_IN_DIALOG:
            task = self.loop.create_task(self._forward(call, leg, txn, request))
            task.add_done_callback(_log_failure)
        else:
            self.endpoint.respond(txn, request.make_response(501))
        return True

    def on_ack(self, request: Request, peer: Peer) -> None:
        """The ACK for a 2xx we sent (the call's answer, or a re-INVITE's) — also after
        the call ended, when a BYE waits for it."""
        key = (request.call_id, request.to.tag or "")
        found = self._legs.get(key)
        leg = found[1] if found is not None else self._awaiting_ack.get(key)
        if leg is None or leg.unacked_2xx is None:
            return
        if request.cseq.number != leg.unacked_2xx.cseq.number:
            return  # the ACK of an older 2xx, retransmitted
        leg.unacked_2xx = None
        leg.acked.set()
        if leg.retransmit is not None:
            leg.retransmit.cancel()
            leg.retransmit = None
        if found is not None:
            call = found[0]
            if call.pending_b_ack is not None and leg is call.caller_leg:
                self._complete_late_offer(call, leg, request)

    def on_cancel(self, invite_txn: int, request: Request) -> None:
        call = self._a_invites.get(invite_txn)
        if call is None:
            return
        if call.answered:  # the callee answered, but the caller's 200 waits for a PRACK
            self._finish_a(call, 487)
            self._hang_up(call, "caller", exclude=call.caller_leg)
            return
        for branch in call.branches:
            if branch.handle is not None:
                self.endpoint.cancel(branch.handle)
        self._finish_a(call, 487)
        self._end(call, 487, "caller")

    def on_b_response_retransmitted(self, response: Response) -> None:
        """A 2xx retransmission for an INVITE the box sent on any leg (its first INVITE
        or a re-INVITE): our ACK was lost, send that same ACK again (§13.2.2.4)."""
        found = self._legs.get((response.call_id, response.from_.tag or ""))
        if found is None:
            return
        leg = found[1]
        ack = leg.acks.get(response.cseq.number)
        if ack is not None and leg.dialog is not None:
            self.endpoint.send_stateless(ack, leg.dialog.peer)

    def send_ack(
        self,
        leg: CallLeg,
        invite_cseq: int,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """ACK a 2xx the party sent to the box's INVITE, keeping it for retransmissions."""
        dialog = leg.dialog
        if dialog is None:
            return
        ack = dialog.ack(invite_cseq, body=body, headers=headers)
        leg.acks[invite_cseq] = ack
        while len(leg.acks) > 4:  # only recent INVITEs can still see their 2xx again
            del leg.acks[min(leg.acks)]
        self.endpoint.send_stateless(ack, dialog.peer)

    def send_2xx(self, call: Call | None, leg: CallLeg, txn: int, response: Response) -> None:
        """Answer an INVITE of the party with a 2xx, resent over UDP until its ACK
        (§13.3.1.4); with ``call`` given, a missing ACK ends the call."""
        self.endpoint.respond(txn, response)
        self._track_2xx(call, leg, response)

    def _track_2xx(self, call: Call | None, leg: CallLeg, response: Response) -> None:
        leg.unacked_2xx = response
        leg.acked.clear()
        if leg.peer.transport != "udp":  # reliable transports: no retransmission
            return
        if leg.retransmit is not None:
            leg.retransmit.cancel()
        leg.retransmit = self.loop.call_later(T1, self._resend_2xx, call, leg, response, T1, 0.0)

    # -- call setup -----------------------------------------------------------------------

    async def _start(
        self,
        txn: int,
        request: Request,
        peer: Peer,
        caller: Caller,
        dialled: str,
        plan: list[RouteStep] | list[Target] | LocalAnswer | ConferenceRoom,
        a_timer: st.LegTimer,
        a_timer_headers: list[tuple[str, str]],
    ) -> None:
        try:
            caller_offer = parse_sdp(request.body) if request.body else None
            media = plan_for_offer(caller_offer, SrtpPolicy.OPTIONAL)
        except (SdpError, MediaRefused) as exc:
            log.info("unusable SDP offer", extra={"error": str(exc), "source": str(peer)})
            self.endpoint.respond(txn, request.make_response(488, to_tag=new_tag()))
            return
        relay: Anchor
        room: tuple[int, str] | None = None
        try:
            if isinstance(plan, ConferenceRoom):
                relay, pt, name = await self.rooms.join(plan.name, caller_offer)
                room = (pt, name)
            elif media.bridge or (media.widen and not self._relay_in_process):
                # (a worker's relay cannot be handed over to a bridge: bridge at once)
                relay = await MediaBridge.open(self.media_address, self.ports)
            else:
                relay = await self.open_relay(self.media_address, self.ports)
        except RoomError as exc:
            log.info("cannot join the room", extra={"error": str(exc)})
            self.endpoint.respond(txn, request.make_response(488, to_tag=new_tag()))
            return
        except Exception:
            log.exception("no media ports for a call")
            self.endpoint.respond(txn, request.make_response(503, to_tag=new_tag()))
            return
        a_tag = new_tag()
        a_leg = CallLeg(
            side=Side.A,
            peer=peer,
            origin=OriginManager(self.media_address),
            number=caller.number,
            hangup_name="caller",
            box_is_uas=True,
            timer=a_timer,
            allows_update=_allows(request, "UPDATE"),
        )
        call = Call(
            id=random_hex(8),
            caller=caller,
            dialled=dialled,
            relay=relay,
            legs=[a_leg],
            a_txn=txn,
            a_invite=request,
            a_tag=a_tag,
            b_origin=OriginManager(self.media_address),
            media=media,
            caller_offer=caller_offer,
        )
        call.prack_done.set()
        self.calls[call.id] = call
        self._a_invites[txn] = call
        self._legs[(request.call_id, a_tag)] = (call, a_leg)
        if self.call_log is not None:
            self.call_log.started(call.id, caller, dialled)
        call.late_offer = not request.body
        if room is not None:
            self._join_room(call, room)
            return
        try:
            offer = self._anchor(
                call,
                request.body,
                a_leg,
                call.b_origin,
                transform=lambda sdp: offer_to_callee(call.media, sdp),
                # the policy edits the offer: a copy, the caller's stays as it came
                parsed=caller_offer.copy() if media.shapes_sdp and caller_offer else caller_offer,
                owned=media.shapes_sdp,
            )
        except SdpError as exc:
            log.info("unusable SDP offer", extra={"error": str(exc), "source": str(peer)})
            self._finish_a(call, 488)
            self._end(call, 488, "caller")
            return
        if isinstance(plan, LocalAnswer):
            await self.local.answer(call, plan)
            return
        assert not isinstance(plan, ConferenceRoom)  # joined above
        statuses: list[int] = []
        for step in steps(plan):
            if not applies(step, statuses):
                continue
            if call.ended:
                return
            outcome = await self._ring(call, step, offer, self._provisional_to_a)
            if call.ended:
                if isinstance(outcome, tuple):
                    self._ack_and_bye(outcome[0].invite, outcome[1], outcome[0].target.peer)
                return
            if isinstance(outcome, tuple):
                self._connect(call, outcome[0], outcome[1], a_timer_headers)
                return
            statuses.append(outcome)
            if outcome not in step.next_on:
                break
        status = best_final(statuses)
        self._finish_a(call, status if status >= 300 else 480)
        self._end(call, status, "callee")

    def _new_branch(self, call: Call, target: Target, offer: bytes, caller: Caller) -> Branch:
        b_call_id = new_call_id(self.media_address)
        b_tag = new_tag()
        display = f'"{caller.display}" ' if caller.display else ""
        # From/To name the callee and caller at the box, never at the callee's own address
        # (a phone's call history must call back through the box)
        own = self.endpoint.address(target.peer.transport) or self.endpoint.address("udp")
        host = f"{own[0]}:{own[1]}" if own else self.media_address
        max_forwards = call.a_invite.max_forwards or 70
        headers = [
            ("Max-Forwards", str(max(0, max_forwards - 1))),
            ("From", f"{display}<sip:{caller.number}@{host}>;tag={b_tag}"),
            ("To", f"<sip:{target.callee}@{host}>"),
            ("Call-ID", b_call_id),
            ("CSeq", "1 INVITE"),
            ("Contact", self.contact(target.peer.transport)),
            ("Allow", ALLOW),
            *st.offer_uac(self.session_expires, self.min_se),
        ]
        if offer:
            headers.append(("Content-Type", "application/sdp"))
        branch = Branch(target, Request("INVITE", target.uri, headers, offer))
        self._branches[branch.key] = (call, branch)
        return branch

    async def _ring(
        self,
        call: Call,
        step: RouteStep,
        offer: bytes,
        on_provisional: Callable[[Call, Branch, Response], None],
        caller: Caller | None = None,
    ) -> tuple[Branch, Response] | int:
        """Fork to the step's targets; the first 2xx wins and the rest are CANCELled.

        Returns (winning branch, its 2xx) unACKed, or the best failure status (408 when
        the step timed out)."""
        branches = [self._new_branch(call, t, offer, caller or call.caller) for t in step.targets]
        call.branches = branches
        timeout = step.timeout if step.timeout is not None else self.no_answer_timeout
        if len(branches) == 1:
            return await self._ring_one(call, branches[0], timeout, on_provisional)
        tasks = {
            self.loop.create_task(self._run_branch(call, b, on_provisional)): b for b in branches
        }
        deadline = self.loop.time() + timeout
        statuses: list[int] = []
        winner: tuple[Branch, Response] | None = None
        pending = set(tasks)
        try:
            while pending and winner is None:
                remaining = deadline - self.loop.time()
                if remaining <= 0:
                    break
                done, pending = await asyncio.wait(
                    pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    branch = tasks[task]
                    final = task.result()
                    if 200 <= final.status < 300 and winner is None and not call.ended:
                        winner = (branch, final)
                    elif 200 <= final.status < 300:  # a second answer: not wanted
                        self._ack_and_bye(branch.invite, final, branch.target.peer)
                    else:
                        statuses.append(final.status)
                if call.ended:
                    break
        finally:
            for task in pending:  # losers and unanswered: CANCEL, then clean up their 2xx
                branch = tasks[task]
                if branch.handle is not None:
                    self.endpoint.cancel(branch.handle)
                task.add_done_callback(self._late_answer(branch))
            for branch in branches:
                if winner is None or branch is not winner[0]:
                    self._branches.pop(branch.key, None)
        if winner is not None:
            self._branches.pop(winner[0].key, None)
            return winner
        if pending and not call.ended:
            return 408
        return best_final(statuses)

    async def _ring_one(
        self,
        call: Call,
        branch: Branch,
        timeout: float,
        on_provisional: Callable[[Call, Branch, Response], None],
    ) -> tuple[Branch, Response] | int:
        """`_ring` for one target (most calls): no task per branch, a timer for the
        no-answer timeout that CANCELs the INVITE (its 487 then reads as 408)."""
        timed_out = False

        def expire() -> None:
            nonlocal timed_out
            timed_out = True
            if branch.handle is not None:
                self.endpoint.cancel(branch.handle)

        timer = self.loop.call_later(timeout, expire)
        try:
            final = await self._run_branch(call, branch, on_provisional)
        finally:
            timer.cancel()
        if 200 <= final.status < 300:
            self._branches.pop(branch.key, None)
            return branch, final  # the caller ACKs it (and BYEs it if the call ended)
        self._branches.pop(branch.key, None)
        return 408 if timed_out else final.status

    def _late_answer(self, branch: Branch) -> Callable[[asyncio.Task[Response]], None]:
        def done(task: asyncio.Task[Response]) -> None:
            if task.cancelled() or task.exception() is not None:
                return
            final = task.result()
            if 200 <= final.status < 300:  # the 2xx crossed our CANCEL
                self._ack_and_bye(branch.invite, final, branch.target.peer)

        return done

    async def _run_branch(
        self,
        call: Call,
        branch: Branch,
        on_provisional: Callable[[Call, Branch, Response], None],
    ) -> Response:
        """Send one branch's INVITE (again once after a 422) and return its final."""
        for attempt in range(2):

            def provisional(response: Response, branch: Branch = branch) -> None:
                self._prack(branch, response)
                if not call.ended and response.status != 100:
                    on_provisional(call, branch, response)

            handle = self.endpoint.start_request(
                branch.invite, branch.target.peer, on_provisional=provisional
            )
            branch.handle = handle
            final = await handle.response()
            if final.status == 422 and attempt == 0 and not call.ended:
                min_se = st.min_se_from_422(final)
                if min_se is None:
                    return final
                branch.invite = _retry_invite(branch.invite, min_se)
                continue
            return final
        return final

    def _prack(self, branch: Branch, response: Response) -> None:
        """PRACK a reliable provisional once (RFC 3262 §4), on its early dialog."""
        rseq = parse_rseq(response)
        if rseq is None or not branch.prack.accept(rseq):
            return
        try:
            early = Dialog.as_uac(branch.invite, response, branch.target.peer)
        except (DialogError, SipParseError):
            return
        early.local_seq = branch.invite.cseq.number
        prack = early.request(
            "PRACK", headers=[("RAck", f"{rseq} {branch.invite.cseq.number} INVITE")]
        )
        task = self.loop.create_task(self.endpoint.request(prack, early.peer))
        task.add_done_callback(_log_failure)

    def _provisional_to_a(self, call: Call, branch: Branch, response: Response) -> None:
        if call.answered:
            return
        body = b""
        if response.body:
            try:
                body = self._anchor(
                    call,
                    response.body,
                    None,
                    call.caller_leg.origin,
                    Side.B,
                    transform=self._answer_policy(call),
                )
            except SdpError:
                body = b""
        self._provisional_a(call, response.status, body)

    def _provisional_a(self, call: Call, status: int, body: bytes) -> None:
        """A 18x on leg A: reliably when the caller asks for it (RFC 3262 §3)."""
        if call.a_txn not in self._a_invites:
            return
        if not wants_reliable(call.a_invite, bool(body)):
            self._respond_a(call, status, body)
            return
        if not call.prack_done.is_set():
            return  # one reliable provisional outstanding at a time: skip this one
        headers = call.reliable.stamp()
        call.prack_done.clear()
        call.pending_sdp_provisional = bool(body)
        response = self._respond_a(call, status, body, headers)
        task = self.loop.create_task(self._retransmit_reliable(call, response))
        task.add_done_callback(_log_failure)

    async def _retransmit_reliable(self, call: Call, response: Response) -> None:
        interval, waited = T1, 0.0
        while waited < 64 * T1:
            try:
                await asyncio.wait_for(call.prack_done.wait(), interval)
                return
            except TimeoutError:
                waited += interval
                if call.ended or call.answered or call.a_txn not in self._a_invites:
                    return
                self.endpoint.respond(call.a_txn, response)
                interval *= 2
        if not call.answered and not call.ended:  # §3: no PRACK -> reject the INVITE
            for branch in call.branches:
                if branch.handle is not None:
                    self.endpoint.cancel(branch.handle)
            self._finish_a(call, 504)
            self._end(call, 504, "box")

    def _on_early_a(self, txn: int, request: Request, call: Call) -> bool:
        """A request in the caller's early dialog: PRACK for our reliable provisional."""
        if request.method == "PRACK":
            rack = parse_rack(request)
            if rack is not None and call.reliable.acknowledge(rack, call.a_invite.cseq.number):
                call.prack_done.set()
                self.endpoint.respond(txn, request.make_response(200))
            else:
                self.endpoint.respond(txn, request.make_response(481, "No matching provisional"))
            return True
        if request.method == "BYE":  # a BYE on an early dialog ends the call attempt
            self.endpoint.respond(txn, request.make_response(200))
            self.on_cancel(call.a_txn, request)
            return True
        self.endpoint.respond(
            txn, request.make_response(491 if request.method == "UPDATE" else 501)
        )
        return True

    def _connect(
        self,
        call: Call,
        branch: Branch,
        final: Response,
        a_timer_headers: list[tuple[str, str]],
    ) -> None:
        """The callee answered: ACK it (unless late offer), answer the caller, start timers."""
        try:
            dialog = Dialog.as_uac(branch.invite, final, branch.target.peer)
        except (DialogError, SipParseError):
            self._ack_and_bye(branch.invite, final, branch.target.peer)
            self._finish_a(call, 502)
            self._end(call, 502, "callee")
            return
        b_leg = CallLeg(
            side=Side.B,
            peer=branch.target.peer,
            origin=call.b_origin,
            number=branch.target.callee,
            hangup_name="callee",
            box_is_uas=False,
            dialog=dialog,
            timer=st.negotiate_uac(final, self.session_expires),
            allows_update=_allows(final, "UPDATE"),
            sent_sdp=branch.invite.body,
            ok=final,
        )
        call.legs.append(b_leg)
        key = b_leg.key
        assert key is not None
        self._legs[key] = (call, b_leg)
        invite_cseq = branch.invite.cseq.number
        try:
            body = self._anchor(
                call,
                final.body,
                b_leg,
                call.caller_leg.origin,
                transform=self._answer_policy(call),
            )
        except (SdpError, MediaRefused) as exc:
            log.info("callee's answer unusable", extra={"call": call.id, "error": str(exc)})
            self.send_ack(b_leg, invite_cseq)
            self._finish_a(call, 488)
            self._hang_up(call, "box", exclude=call.caller_leg)
            return
        if call.late_offer and final.body:
            call.pending_b_ack = (b_leg, invite_cseq)  # the caller's ACK brings the answer
        else:
            self.send_ack(b_leg, invite_cseq)
        call.answered = True
        self.stats["answered"] += 1
        if self.call_log is not None:
            self.call_log.answered(call.id)
        if call.pending_sdp_provisional and not call.prack_done.is_set():
            task = self.loop.create_task(self._answer_a_after_prack(call, body, a_timer_headers))
            task.add_done_callback(_log_failure)
        else:  # at once: a CANCEL arriving now must find the caller answered, not 487 it
            self._answer_a(call, body, a_timer_headers)

    async def _answer_a_after_prack(
        self, call: Call, body: bytes, timer_headers: list[tuple[str, str]]
    ) -> None:
        with contextlib.suppress(TimeoutError):  # RFC 3262 §3: a 2xx waits for that PRACK
            await asyncio.wait_for(call.prack_done.wait(), 64 * T1)
        self._answer_a(call, body, timer_headers)

    def _answer_a(self, call: Call, body: bytes, timer_headers: list[tuple[str, str]]) -> None:
        if call.ended:
            return
        ok = self._respond_a(call, 200, body, timer_headers)
        self.confirm_a(call, ok)
        now = time.monotonic()
        for leg in call.legs:
            leg.last_refresh = now
            self._watch(call, leg)

    def confirm_a(self, call: Call, ok: Response) -> CallLeg:
        """The caller's dialog exists once our 2xx went out; resend it until the ACK."""
        a_leg = call.caller_leg
        a_leg.dialog = Dialog.as_uas(call.a_invite, call.a_tag, a_leg.peer)
        a_leg.dialog.confirmed = True
        a_leg.dialog.local_contact = self.contact(a_leg.peer.transport)
        self._a_invites.pop(call.a_txn, None)
        self._track_2xx(call, a_leg, ok)
        return a_leg

    def _complete_late_offer(self, call: Call, a_leg: CallLeg, ack: Request) -> None:
        assert call.pending_b_ack is not None
        b_leg, cseq = call.pending_b_ack
        call.pending_b_ack = None
        body = b""
        if ack.body:
            try:
                body = self._anchor(call, ack.body, a_leg, b_leg.origin)
            except SdpError:
                body = b""
        headers = [("Content-Type", "application/sdp")] if body else []
        self.send_ack(b_leg, cseq, body, headers)

    def _ack_and_bye(self, invite: Request, ok: Response, peer: Peer) -> None:
        with contextlib.suppress(DialogError, SipParseError):
            dialog = Dialog.as_uac(invite, ok, peer)
            self.endpoint.send_stateless(dialog.ack(invite.cseq.number), peer)
            bye = dialog.request("BYE")
            task = self.loop.create_task(self.endpoint.request(bye, peer))
            task.add_done_callback(_log_failure)

    def _resend_2xx(
        self, call: Call | None, leg: CallLeg, ok: Response, interval: float, waited: float
    ) -> None:
        """RFC 3261 §13.3.1.4: the UAS core resends its 2xx over UDP until the ACK comes
        (even once the call is over: a BYE to this party waits for that ACK, §15).
        A timer chain rather than a task: most 2xx are ACKed before the first resend."""
        if leg.unacked_2xx is not ok:
            return  # ACKed, or a newer 2xx replaced this one
        waited += interval
        if waited < 64 * T1:
            self.endpoint.send_stateless(ok, leg.peer)
            interval = min(interval * 2, T2)
            leg.retransmit = self.loop.call_later(
                interval, self._resend_2xx, call, leg, ok, interval, waited
            )
            return
        leg.unacked_2xx = None
        leg.acked.set()  # give up: a waiting BYE may go now
        if call is None or call.ended:
            return
        log.info("no ACK for 200 OK; ending the call", extra={"call": call.id})
        if call.pending_b_ack is not None:  # late offer never answered: ACK bare, then BYE
            b_leg, cseq = call.pending_b_ack
            call.pending_b_ack = None
            self.send_ack(b_leg, cseq)
        self._hang_up(call, "box", exclude=None)

    def contact(self, transport: str) -> str:
        """The box's Contact for a leg over ``transport``: what the other side sends to."""
        address = self.endpoint.address(transport) or self.endpoint.address("udp")  # type: ignore[arg-type]
        host, port = address or (self.media_address, 5060)
        host = f"[{host}]" if ":" in host else host
        suffix = "" if transport == "udp" else f";transport={transport}"
        return f"<sip:b2bua@{host}:{port}{suffix}>"

    # -- SDP --------------------------------------------------------------------------------

    def _anchor(
        self,
        call: Call,
        body: bytes,
        source: CallLeg | None,
        origin: OriginManager,
        side: Side | None = None,
        relay: Anchor | None = None,
        out_port_side: Side | None = None,
        transform: Callable[[SessionDescription], object] | None = None,
        parsed: SessionDescription | None = None,
        owned: bool = False,
    ) -> bytes:
        """Record the sender's media address in the relay (on its ``side``); return the
        SDP for the other party, pointing at the relay port of the other side.

        ``relay``/``out_port_side`` override the call's relay and the port offered (a
        transfer offers a port of another call's relay). ``parsed`` is ``body`` parsed
        already, left as it is unless ``owned`` (then it is rewritten in place)."""
        if not body:
            return b""
        relay = relay or call.relay
        side = side or (source.side if source is not None else Side.A)
        sdp = parsed if parsed is not None else parse_sdp(body)
        if not sdp.media:
            raise SdpError("no media")
        rtp = rtp_address(sdp, 0)
        rtcp = rtcp_address(sdp, 0)
        if rtp is not None:
            relay.set_remote(side, rtp[0], rtp[1], rtcp[1] if rtcp else None)
        if source is not None:
            source.remote_sdp = body
        if transform is not None:  # media policy: codecs, SRTP (see `media`)
            transform(sdp)
        port_side = out_port_side or side.other
        ports = [relay.port(port_side)] + [0] * (len(sdp.media) - 1)
        in_place = parsed is None or owned
        out = rewrite_for_anchor(sdp, self.media_address, ports, in_place=in_place)
        for extra in out.media[1:]:  # one anchored stream per call; others declined
            extra.port = 0
        return origin.render(out)

    def _join_room(self, call: Call, codec: tuple[int, str]) -> None:
        """The box answers a conference-room call itself; the caller stays until BYE."""
        a_leg = call.caller_leg
        offer = call.caller_offer
        if offer is not None:
            rtp = rtp_address(offer, 0)
            if rtp is not None:
                call.relay.set_remote(Side.A, rtp[0], rtp[1])
            a_leg.remote_sdp = call.a_invite.body
        sdp = answer_sdp(self.media_address, call.relay.port(Side.A), *codec)
        a_leg.origin.stamp(sdp)
        ok = self._respond_a(call, 200, sdp.to_bytes())
        call.answered = True
        self.stats["answered"] += 1
        if self.call_log is not None:
            self.call_log.answered(call.id)
        self.confirm_a(call, ok)
        a_leg.last_refresh = time.monotonic()
        self._watch(call, a_leg)

    def _answer_policy(self, call: Call) -> Callable[[SessionDescription], object] | None:
        """For a call whose SDP the box shapes: the callee's answer becomes the box's
        answer to the caller (codec it can serve, its own a=crypto) and the bridge learns
        both legs. A relayed call whose callee answered a codec the caller did not offer
        moves onto a bridge here (`MediaBridge.adopt`: same ports, so the SDP holds)."""
        offer = call.caller_offer
        if not call.media.shapes_sdp or offer is None:
            return None

        def apply(sdp: SessionDescription) -> None:
            caller, callee = answer_to_caller(call.media, offer, sdp)
            bridge = call.relay
            if not isinstance(bridge, MediaBridge):
                if caller.codec == callee.codec:
                    return  # both legs speak the caller's codec: the relay serves
                assert isinstance(bridge, RelaySession)
                bridge = call.relay = MediaBridge.adopt(bridge)
                log.info(
                    "transcoding", extra={"call": call.id, "a": caller.codec, "b": callee.codec}
                )
            srtp = None
            decision = call.media.srtp
            if call.media.secure and decision is not None:
                assert decision.local is not None and decision.remote is not None
                srtp = SrtpSession.from_sdes(decision.local, decision.remote)
            for side, leg, keys in ((Side.A, caller, srtp), (Side.B, callee, None)):
                bridge.configure(
                    side,
                    leg.codec,
                    payload_type=leg.payload_type,
                    ptime=leg.ptime,
                    telephone_event_pt=leg.event_pt,
                    srtp=keys,
                )

        return apply

    # -- responses on leg A -------------------------------------------------------------

    def _respond_a(
        self,
        call: Call,
        status: int,
        body: bytes = b"",
        extra: list[tuple[str, str]] | None = None,
    ) -> Response:
        headers = [("Contact", self.contact(call.caller_leg.peer.transport)), ("Allow", ALLOW)]
        headers.extend(extra or ())
        if body:
            headers.append(("Content-Type", "application/sdp"))
            call.caller_leg.sent_sdp = body
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

    def _is_refresh(self, request: Request, leg: CallLeg) -> bool:
        """A session refresh the box answers itself: UPDATE without SDP, or a re-INVITE
        repeating the party's last SDP (RFC 4028 refreshes, often with the same body)."""
        if request.method == "UPDATE" and not request.body:
            return True
        if request.method != "INVITE" or not request.body or not leg.remote_sdp:
            return False
        if "sdp" not in str(request.content_type or ""):
            return False
        try:
            return not sdp_changed(parse_sdp(leg.remote_sdp), parse_sdp(request.body))
        except SdpError:
            return False

    def _answer_refresh(self, txn: int, request: Request, leg: CallLeg) -> None:
        timer = leg.timer or st.LegTimer(self.session_expires, st.Refresher.KEEPALIVE)
        leg.timer, headers = st.answer_refresh(request, timer)
        leg.last_refresh = time.monotonic()
        headers.append(("Contact", self.contact(leg.peer.transport)))
        body = b""
        if request.method == "INVITE" and leg.sent_sdp:
            body = leg.sent_sdp
            headers.append(("Content-Type", "application/sdp"))
        response = request.make_response(200, headers=headers, body=body)
        if request.method == "INVITE":
            self.send_2xx(None, leg, txn, response)
        else:
            self.endpoint.respond(txn, response)

    async def _forward(self, call: Call, leg: CallLeg, txn: int, request: Request) -> None:
        """Pass an in-dialog request to the other leg; its answer comes back."""
        other = call.other(leg)
        if other is None or other.dialog is None or call.ended:
            self.endpoint.respond(txn, request.make_response(481))
            return
        body = request.body
        headers: list[tuple[str, str]] = []
        if body and request.content_type is not None and "sdp" in str(request.content_type):
            try:
                body = self._anchor(call, body, leg, other.origin)
            except SdpError:
                self.endpoint.respond(txn, request.make_response(488))
                return
            other.sent_sdp = body
        if body:
            ctype = request.headers.get("Content-Type") or "application/sdp"
            headers.append(("Content-Type", ctype))
        out = other.dialog.request(request.method, headers=headers, body=body)
        response = await self.endpoint.request(out, other.dialog.peer)
        answer = response.body
        reply_headers: list[tuple[str, str]] = []
        ok = 200 <= response.status < 300
        if answer and ok and "sdp" in (response.headers.get("Content-Type") or ""):
            try:
                answer = self._anchor(call, answer, other, leg.origin)
                leg.sent_sdp = answer
            except SdpError:
                answer = b""
        if answer:
            reply_headers.append(
                ("Content-Type", response.headers.get("Content-Type") or "application/sdp")
            )
        if request.method in ("INVITE", "UPDATE"):
            reply_headers.append(("Contact", self.contact(leg.peer.transport)))
            if ok:
                now = time.monotonic()
                leg.last_refresh = other.last_refresh = now
                if leg.timer is not None:
                    leg.timer, timer_headers = st.answer_refresh(request, leg.timer)
                    reply_headers.extend(timer_headers)
        if request.method == "INVITE" and ok:
            other.dialog.apply_response(response)
            self.send_ack(other, out.cseq.number)
        reply = request.make_response(
            response.status, response.reason, headers=reply_headers, body=answer
        )
        if request.method == "INVITE" and ok:
            self.send_2xx(None, leg, txn, reply)
        else:
            self.endpoint.respond(txn, reply)

    def _on_detached(self, txn: int, request: Request, leg: CallLeg) -> bool:
        """A party transferred out of its call: it may only say goodbye now."""
        if request.method == "BYE":
            self.endpoint.respond(txn, request.make_response(200))
            self._forget_detached(leg)
        else:
            self.endpoint.respond(txn, request.make_response(481))
        return True

    def detach(self, leg: CallLeg, grace: float = 32.0) -> None:
        """Keep a transferred-away party's dialog until it BYEs (or BYE it after ``grace``)."""
        key = leg.key
        if key is None:
            return
        self._legs.pop(key, None)
        self._detached[key] = leg
        for task in leg.tasks:
            task.cancel()
        leg.tasks = []

        async def expire() -> None:
            await asyncio.sleep(grace)
            if self._detached.get(key) is leg:
                self.bye(leg)
                self._forget_detached(leg)

        task = self.loop.create_task(expire())
        task.add_done_callback(_log_failure)
        leg.tasks.append(task)

    def _forget_detached(self, leg: CallLeg) -> None:
        key = leg.key
        if key is not None and self._detached.get(key) is leg:
            del self._detached[key]
        for task in leg.tasks:
            if task is not asyncio.current_task():
                task.cancel()

    # -- session timers -----------------------------------------------------------------

    def _watch(self, call: Call, leg: CallLeg) -> None:
        """Arm the leg's session timer (a timer handle, not a task: it fires rarely)."""
        timer = leg.timer
        if timer is None or call.ended or leg not in call.legs:
            return
        if leg.timer_handle is not None:
            leg.timer_handle.cancel()
        wait = timer.expire_after if timer.refresher is st.Refresher.PEER else timer.refresh_after
        delay = max(0.0, leg.last_refresh + wait - time.monotonic())
        leg.timer_handle = self.loop.call_later(delay, self._leg_timer_fired, call, leg)

    def _leg_timer_fired(self, call: Call, leg: CallLeg) -> None:
        """Refresh (or probe) the leg, or end the call when its peer stopped refreshing."""
        leg.timer_handle = None
        timer = leg.timer
        if timer is None or call.ended or leg not in call.legs:
            return
        if timer.refresher is st.Refresher.PEER:
            if time.monotonic() >= leg.last_refresh + timer.expire_after:
                log.info("session expired: no refresh", extra={"call": call.id})
                self._hang_up(call, "timeout", exclude=None)
            else:
                self._watch(call, leg)  # refreshed meanwhile
            return
        if time.monotonic() < leg.last_refresh + timer.refresh_after:
            self._watch(call, leg)  # refreshed meanwhile by a forwarded re-INVITE/UPDATE
            return
        task = self.loop.create_task(self._refresh_leg(call, leg, timer))
        task.add_done_callback(_log_failure)
        leg.tasks.append(task)

    async def _refresh_leg(self, call: Call, leg: CallLeg, timer: st.LegTimer) -> None:
        status = await self._refresh(leg, timer)
        if call.ended or leg not in call.legs:
            return
        if status in (408, 481):
            log.info(
                "leg gone on refresh; releasing the call",
                extra={"call": call.id, "status": status},
            )
            self._hang_up(call, "timeout", exclude=leg if status == 481 else None)
            return
        leg.last_refresh = time.monotonic()
        self._watch(call, leg)

    async def _refresh(self, leg: CallLeg, timer: st.LegTimer) -> int:
        dialog = leg.dialog
        if dialog is None:
            return 481
        if timer.refresher is st.Refresher.KEEPALIVE:
            response = await self.endpoint.request(dialog.request("OPTIONS"), dialog.peer)
            return response.status
        headers = st.refresh_headers(timer)
        if leg.allows_update or not leg.sent_sdp:
            request = dialog.request("UPDATE", headers=headers)
            response = await self.endpoint.request(request, dialog.peer)
        else:
            headers.append(("Content-Type", "application/sdp"))
            request = dialog.request("INVITE", headers=headers, body=leg.sent_sdp)
            response = await self.endpoint.request(request, dialog.peer)
            if 200 <= response.status < 300:
                dialog.apply_response(response)
                self.send_ack(leg, request.cseq.number)
        if 200 <= response.status < 300:
            answered = st.parse_session_expires(response.headers.get("Session-Expires"))
            if answered is not None and answered[1] == "uas":
                leg.timer = st.LegTimer(max(answered[0], st.MIN_SE), st.Refresher.PEER)
        return response.status

    # -- teardown ---------------------------------------------------------------------

    def bye(self, leg: CallLeg) -> None:
        """BYE the party — after the ACK of a 2xx the box still resends to it (§15)."""
        dialog = leg.dialog
        if dialog is None:
            return
        if leg.unacked_2xx is None:  # the usual case: at once, and nobody needs the 200
            self.endpoint.start_request(dialog.request("BYE"), dialog.peer)
            return
        key = leg.key
        assert key is not None
        self._awaiting_ack[key] = leg
        task = self.loop.create_task(self._bye(leg))
        task.add_done_callback(_log_failure)

    async def _bye(self, leg: CallLeg) -> None:
        dialog = leg.dialog
        assert dialog is not None
        if leg.unacked_2xx is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(leg.acked.wait(), 64 * T1 + 1)
            key = leg.key
            if key is not None and self._awaiting_ack.get(key) is leg:
                del self._awaiting_ack[key]
        await self.endpoint.request(dialog.request("BYE"), dialog.peer)

    def _hang_up(self, call: Call, by: str, *, exclude: CallLeg | None) -> None:
        """End an answered call; BYE every leg but the one that hung up."""
        if call.ended:
            return
        for leg in call.legs:
            if leg is not exclude:
                self.bye(leg)
        self._end(call, 200 if call.answered else 487, by)

    def release_leg(self, leg: CallLeg) -> None:
        """Forget a leg's dialog routing and timers (it left the call)."""
        key = leg.key
        if key is not None and self._legs.get(key, (None, None))[1] is leg:
            del self._legs[key]
        for task in leg.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        leg.tasks = []
        if leg.timer_handle is not None:
            leg.timer_handle.cancel()
            leg.timer_handle = None

    def _end(self, call: Call, status: int | None, by: str) -> None:
        if call.ended:
            return
        call.ended = True
        call.prack_done.set()
        stats = call.relay.stats()
        media: dict[str, object] = {
            "rtp_a_to_b_packets": stats.rtp_a_to_b.packets,
            "rtp_b_to_a_packets": stats.rtp_b_to_a.packets,
            "rtp_dropped": stats.rtp_a_to_b.dropped + stats.rtp_b_to_a.dropped,
        }
        quality = getattr(stats, "quality", None)  # a bridged call measures each leg
        if quality:
            media["quality"] = quality
        if self.moh is not None:
            self.moh.stop(call)
        call.relay.close()
        self.calls.pop(call.id, None)
        self._a_invites.pop(call.a_txn, None)
        self._legs.pop((call.a_invite.call_id, call.a_tag), None)
        for leg in call.legs:
            self.release_leg(leg)
        for branch in call.branches:
            self._branches.pop(branch.key, None)
            branch.handle = None  # its provisional callback holds the call: free the cycle
        call.branches = []
        if not call.answered:
            self.stats["failed"] += 1
        if self.call_log is not None:
            self.call_log.ended(call.id, status, by, media)


def _retry_invite(invite: Request, min_se: int) -> Request:
    """The INVITE again after a 422: a higher Session-Expires, a new CSeq (§7.3)."""
    headers = [
        (name, value)
        for name, value in invite.headers.items()
        if name.lower() not in ("via", "cseq", "session-expires", "min-se")
    ]
    headers.append(("CSeq", f"{invite.cseq.number + 1} INVITE"))
    headers.append(("Session-Expires", str(min_se)))
    headers.append(("Min-SE", str(min_se)))
    return Request("INVITE", invite.uri, headers, invite.body)


def _allows(message: Request | Response, method: str) -> bool:
    allow = ",".join(message.headers.get_all("Allow"))
    return method in {m.strip().upper() for m in allow.split(",")}


def _dialled(request: Request) -> str:
    uri = request.uri
    user = uri.user if isinstance(uri, SipUri) else None
    return user or ""


def _log_failure(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("B2BUA task failed", exc_info=task.exception())
