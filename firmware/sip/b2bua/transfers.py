"""REFER handling in the B2BUA: blind and attended transfer (see `transfer` for the
message side). Kept apart from call setup because it rewires calls: a transfer puts
a new leg in place of the referrer (blind) or moves a leg from one call into another
(attended), and tells the referrer how it went with NOTIFYs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from ..dialog import Dialog, DialogError
from ..errors import SipParseError
from ..message import Request, Response
from ..sdp import OriginManager, SdpError, parse_sdp
from . import session_timer as st
from .call import Branch, Call, CallLeg
from .plan import Caller, ConferenceRoom, LocalAnswer, applies, best_final, steps
from .transfer import ReferTo, TransferError, notify_headers, parse_refer_to, sipfrag

if TYPE_CHECKING:
    from .core import B2BUA

log = logging.getLogger(__name__)


class Transfers:
    def __init__(self, b2bua: B2BUA) -> None:
        self.b2bua = b2bua

    def on_refer(self, txn: int, request: Request, call: Call, leg: CallLeg) -> None:
        endpoint = self.b2bua.endpoint
        try:
            refer_to = parse_refer_to(request.headers.get("Refer-To"))
        except TransferError as exc:
            endpoint.respond(txn, request.make_response(exc.status, str(exc)))
            return
        if not call.answered or len(call.legs) != 2 or call.ended:
            endpoint.respond(txn, request.make_response(491, "Call not connected"))
            return
        endpoint.respond(txn, request.make_response(202))
        self.notify(leg, 100, "Trying", final=False)
        job = self._attended if refer_to.replaces is not None else self._blind
        task = asyncio.create_task(job(call, leg, refer_to))
        task.add_done_callback(_log_failure)

    def notify(self, leg: CallLeg, status: int, reason: str, *, final: bool) -> None:
        if leg.dialog is None:
            return
        request = leg.dialog.request(
            "NOTIFY", headers=notify_headers(final), body=sipfrag(status, reason)
        )
        task = asyncio.create_task(self.b2bua.endpoint.request(request, leg.dialog.peer))
        task.add_done_callback(_log_failure)

    async def _blind(self, call: Call, leg: CallLeg, refer_to: ReferTo) -> None:
        """Call the Refer-To target for the party that stays; it replaces the referrer."""
        b2bua = self.b2bua
        stay = call.other(leg)
        if stay is None:
            return
        plan = b2bua.router.route(Caller(stay.number), refer_to.target)
        if isinstance(plan, int | LocalAnswer | ConferenceRoom):
            status = plan if isinstance(plan, int) else 403
            self.notify(leg, status, "Transfer refused", final=True)
            return
        origin = OriginManager(b2bua.media_address)
        try:  # the target gets what the staying party last described, at the referrer's port
            offer = b2bua._anchor(call, stay.remote_sdp, stay, origin)
        except SdpError:
            offer = b""
        statuses: list[int] = []

        def progress(call: Call, branch: Branch, response: Response) -> None:
            if response.status == 180:
                self.notify(leg, 180, "Ringing", final=False)

        for step in steps(plan):
            if not applies(step, statuses):
                continue
            outcome = await b2bua._ring(call, step, offer, progress, Caller(stay.number))
            if isinstance(outcome, tuple):
                branch, final = outcome
                if call.ended or leg not in call.legs:
                    b2bua._ack_and_bye(branch.invite, final, branch.target.peer)
                    return
                self._complete_blind(call, leg, stay, branch, final, origin)
                return
            statuses.append(outcome)
            if call.ended or outcome not in step.next_on:
                break
        if not call.ended:
            self.notify(leg, best_final(statuses), "Transfer failed", final=True)

    def _complete_blind(
        self,
        call: Call,
        leg: CallLeg,
        stay: CallLeg,
        branch: Branch,
        final: Response,
        origin: OriginManager,
    ) -> None:
        b2bua = self.b2bua
        try:
            dialog = Dialog.as_uac(branch.invite, final, branch.target.peer)
        except (DialogError, SipParseError):
            b2bua._ack_and_bye(branch.invite, final, branch.target.peer)
            self.notify(leg, 502, "Bad Gateway", final=True)
            return
        new = CallLeg(
            side=leg.side,
            peer=branch.target.peer,
            origin=origin,
            number=branch.target.callee,
            hangup_name=leg.hangup_name,
            box_is_uas=False,
            dialog=dialog,
            timer=st.negotiate_uac(final, b2bua.session_expires),
            sent_sdp=branch.invite.body,
            ok=final,
        )
        b2bua.send_ack(new, branch.invite.cseq.number)
        answer = b""
        with contextlib.suppress(SdpError):
            answer = b2bua._anchor(call, final.body, new, stay.origin)
        call.legs[call.legs.index(leg)] = new
        key = new.key
        assert key is not None
        b2bua._legs[key] = (call, new)
        self.notify(leg, 200, "OK", final=True)
        b2bua.detach(leg)
        b2bua._watch(call, new)
        b2bua.stats["transfers"] += 1
        if answer and _codec(answer) != _codec(stay.sent_sdp):
            task = asyncio.create_task(self._reoffer(stay, answer))  # the codec changed
            task.add_done_callback(_log_failure)

    async def _reoffer(self, leg: CallLeg, offer: bytes) -> None:
        dialog = leg.dialog
        if dialog is None:
            return
        request = dialog.request(
            "INVITE", headers=[("Content-Type", "application/sdp")], body=offer
        )
        response = await self.b2bua.endpoint.request(request, dialog.peer)
        if 200 <= response.status < 300:
            dialog.apply_response(response)
            self.b2bua.send_ack(leg, request.cseq.number)
            leg.sent_sdp = offer
            if response.body:
                leg.remote_sdp = response.body

    async def _attended(self, call1: Call, x1: CallLeg, refer_to: ReferTo) -> None:
        """Join the referrer's two partners: the one of this call (y) takes the
        referrer's place in the consultation call (call2), whose partner is z."""
        b2bua = self.b2bua
        r = refer_to.replaces
        assert r is not None
        found = b2bua._legs.get((r.call_id, r.to_tag)) or b2bua._legs.get((r.call_id, r.from_tag))
        if found is None:
            self.notify(x1, 481, "Call Leg/Transaction Does Not Exist", final=True)
            return
        call2, x2 = found
        if call2 is call1 or not call2.answered or call2.ended or x2.number != x1.number:
            self.notify(x1, 403, "Forbidden", final=True)
            return
        y, z = call1.other(x1), call2.other(x2)
        if y is None or z is None or y.dialog is None or z.dialog is None:
            self.notify(x1, 481, "Call Leg/Transaction Does Not Exist", final=True)
            return
        try:  # y is offered z's media, at call2's relay port that x2 used
            offer = b2bua._anchor(
                call2, z.remote_sdp, z, y.origin, relay=call2.relay, out_port_side=x2.side
            )
        except SdpError:
            self.notify(x1, 488, "Not Acceptable Here", final=True)
            return
        request = y.dialog.request(
            "INVITE",
            headers=[
                ("Content-Type", "application/sdp"),
                ("Contact", b2bua.contact(y.peer.transport)),
            ],
            body=offer,
        )
        response = await b2bua.endpoint.request(request, y.dialog.peer)
        if not 200 <= response.status < 300:
            self.notify(x1, response.status, response.reason or "Failed", final=True)
            return
        y.dialog.apply_response(response)
        b2bua.send_ack(y, request.cseq.number)
        if call1.ended or call2.ended:
            return
        y.sent_sdp = offer
        if response.body:
            with contextlib.suppress(SdpError):
                b2bua._anchor(call2, response.body, y, z.origin, side=x2.side)
        # move y into call2 in x2's place; x2 is BYEd (replaced), x1 hangs up itself
        b2bua.release_leg(y)
        call1.legs.remove(y)
        y.side, y.hangup_name = x2.side, x2.hangup_name
        call2.legs[call2.legs.index(x2)] = y
        key = y.key
        assert key is not None
        b2bua._legs[key] = (call2, y)
        y.last_refresh = z.last_refresh
        b2bua._watch(call2, y)
        b2bua.release_leg(x2)
        b2bua.bye(x2)
        self.notify(x1, 200, "OK", final=True)
        call1.legs.remove(x1)
        b2bua.detach(x1)
        b2bua._end(call1, 200, "transfer")
        b2bua.stats["transfers"] += 1


def _codec(sdp: bytes) -> int | None:
    """The first payload type of the first stream: the codec a party sends."""
    if not sdp:
        return None
    try:
        media = parse_sdp(sdp).media
    except SdpError:
        return None
    pts = media[0].payload_types if media else []
    return pts[0] if pts else None


def _log_failure(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("transfer task failed", exc_info=task.exception())
