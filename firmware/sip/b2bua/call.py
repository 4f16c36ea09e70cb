"""A call through the B2BUA: two parties, each on its own dialog with the box (a leg),
sharing one RTP relay session.

A leg is symmetric on purpose: the caller's leg (the box answered its INVITE) and the
callee's leg (the box sent the INVITE) differ only in ``box_is_uas``, so a transfer
can move any leg into another call or put a new one in its place.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from firmware.media.relay import Leg as Side
from firmware.media.relay import RelayStats

if TYPE_CHECKING:
    from firmware.media.latch import Addr

from ..dialog import Dialog
from ..endpoint import ClientTransaction
from ..message import Request, Response
from ..peer import Peer
from ..sdp import OriginManager, SessionDescription
from .media import MediaPlan
from .plan import Caller, Target
from .reliable import ReliableReceiver, ReliableSender
from .session_timer import LegTimer


class Anchor(Protocol):
    """Where a call's media goes through the box: a pass-through `RelaySession` or a
    `MediaBridge` (SRTP, transcoding); the B2BUA needs only this much of either."""

    def port(self, leg: Side) -> int: ...

    def set_remote(
        self, leg: Side, host: str | None, port: int, rtcp_port: int | None = None
    ) -> None: ...

    def remote(self, leg: Side) -> Addr | None: ...

    def stats(self) -> RelayStats: ...

    def close(self) -> None: ...


@dataclass(eq=False)
class CallLeg:
    """One party's dialog with the box, and where its media enters the relay."""

    side: Side  # which relay port this party sends to
    peer: Peer
    origin: OriginManager  # the box's o= toward this party
    number: str  # who the party is (caller number or dialled extension)
    hangup_name: str  # how CDRs name a hangup from this party: "caller" / "callee"
    box_is_uas: bool
    dialog: Dialog | None = None
    timer: LegTimer | None = None
    last_refresh: float = field(default_factory=time.monotonic)
    allows_update: bool = False
    remote_sdp: bytes = b""  # last SDP this party sent
    sent_sdp: bytes = b""  # last SDP the box sent it
    # the box's last 2xx to an INVITE from this party, until its ACK comes (RFC 3261
    # §13.3.1.4: resent over UDP meanwhile; no BYE may overtake it, §15)
    unacked_2xx: Response | None = None
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    ok: Response | None = None  # the party's 2xx to the box's first INVITE
    # ACKs the box sent for this party's 2xx answers, by INVITE CSeq: a retransmitted
    # 2xx gets the same ACK again (§13.2.2.4)
    acks: dict[int, Request] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    retransmit: asyncio.TimerHandle | None = None  # the next resend of unacked_2xx
    timer_handle: asyncio.TimerHandle | None = None  # the session timer's next check

    @property
    def key(self) -> tuple[str, str] | None:
        """(Call-ID, the box's tag): how in-dialog messages from this party find it."""
        d = self.dialog
        return None if d is None else (d.call_id, d.local_tag)


@dataclass(eq=False)
class Branch:
    """One forked INVITE of the box toward a target (leg B before anyone answered)."""

    target: Target
    invite: Request
    handle: ClientTransaction | None = None
    prack: ReliableReceiver = field(default_factory=ReliableReceiver)

    @functools.cached_property
    def key(self) -> tuple[str, str]:
        """(Call-ID, the box's From tag): fixed once the INVITE is built."""
        return (self.invite.call_id, self.invite.from_.tag or "")


@dataclass(eq=False)
class Call:
    id: str
    caller: Caller
    dialled: str
    relay: Anchor
    legs: list[CallLeg]  # [caller, callee] once answered; [caller] while ringing
    # setup state of the caller's INVITE (leg A)
    a_txn: int
    a_invite: Request
    a_tag: str
    b_origin: OriginManager
    reliable: ReliableSender = field(default_factory=ReliableSender)
    prack_done: asyncio.Event = field(default_factory=asyncio.Event)
    pending_sdp_provisional: bool = False
    branches: list[Branch] = field(default_factory=list)
    late_offer: bool = False  # the caller's INVITE had no SDP: its ACK carries the answer
    pending_b_ack: tuple[CallLeg, int] | None = None  # (callee leg, INVITE CSeq) for late offer
    media: MediaPlan = field(default_factory=MediaPlan)
    caller_offer: SessionDescription | None = None
    answered: bool = False
    ended: bool = False
    started: float = field(default_factory=time.time)

    @property
    def caller_leg(self) -> CallLeg:
        return self.legs[0]

    def other(self, leg: CallLeg) -> CallLeg | None:
        for candidate in self.legs:
            if candidate is not leg:
                return candidate
        return None
