"""The four transaction state machines of RFC 3261 §17, as amended by RFC 6026.

Each machine is driven by `firmware.sip.transaction.TransactionLayer` (which does
the matching) and appends its output to the ``out`` list it is given. Timers use
two slots per transaction: slot 0 retransmits (A, E, G, and the 100 Trying delay),
slot 1 ends a state (B, F, H, D, K, I, J, L, M and the proceeding limit); which
timer a slot is follows from the state, as in the RFC's figures. On reliable
transports nothing is retransmitted and D, I, J, K are zero, so the transaction
ends as soon as it completes.

To keep memory proportional to what a state needs, a server transaction drops the
request once it has sent its final response; only the bytes it may resend stay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from firmware.sip.hop import make_ack
from firmware.sip.message import Request, Response
from firmware.sip.peer import Peer
from firmware.sip.timers import TimerConfig, TimerQueue
from firmware.sip.txn_events import (
    AckReceived,
    Event,
    RequestReceived,
    ResponseReceived,
    Send,
    Terminated,
    Timeout,
    TransportError,
    TxnId,
)

CALLING = "Calling"
TRYING = "Trying"
PROCEEDING = "Proceeding"
ACCEPTED = "Accepted"
COMPLETED = "Completed"
CONFIRMED = "Confirmed"
TERMINATED = "Terminated"

RETRANSMIT, LIFETIME = 0, 1


@dataclass(slots=True)
class TransactionStats:
    """Counters for /metrics; they only grow."""

    server_created: int = 0
    client_created: int = 0
    retransmissions_absorbed: int = 0  # requests that matched a server transaction again
    retransmissions_sent: int = 0  # timers A, E, G: the network (or the peer) lost something
    stray_responses: int = 0
    acks_to_tu: int = 0  # ACKs matching no transaction: the ACKs for 2xx (and strays)
    cancels_unmatched: int = 0  # answered 481
    overload_rejected: int = 0  # answered 503: too many transactions, or shedding INVITEs
    timeouts: int = 0
    transport_errors: int = 0
    responses_refused: int = 0  # TU answered a finished transaction, or twice
    malformed: int = 0  # a message whose Via/CSeq could not be used


class Context:
    """What every transaction of one layer shares."""

    __slots__ = ("config", "pending_invites", "remove", "stats", "timers")

    def __init__(
        self,
        config: TimerConfig,
        timers: TimerQueue[Transaction],
        remove: Callable[[Transaction], None],
        stats: TransactionStats,
    ) -> None:
        self.config = config
        self.timers = timers
        self.remove = remove
        self.stats = stats
        self.pending_invites = 0  # INVITE server transactions in Proceeding


class Transaction:
    """State common to the four machines; the inputs default to "ignore"."""

    __slots__ = ("ctx", "id", "interval", "key", "peer", "reliable", "state", "table", "timer_seq")
    server = False

    def __init__(self, ctx: Context, txn_id: TxnId, peer: Peer, state: str) -> None:
        self.ctx = ctx
        self.id = txn_id
        self.peer = peer  # client: where the request goes; server: where responses go
        self.reliable = peer.transport != "udp"
        self.state = state
        self.timer_seq = [0, 0]
        self.interval = 0.0  # current retransmission interval
        self.key: Any = None  # matching key in ``table`` (set by the layer)
        self.table: dict[Any, Transaction] | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.state} {self.peer}>"

    def _arm(self, slot: int, when: float) -> None:
        self.ctx.timers.arm(self, slot, when)

    def _stop(self, slot: int) -> None:
        if self.timer_seq[slot]:
            self.ctx.timers.cancel(self, slot)

    def terminate(self, out: list[Event]) -> None:
        self.state = TERMINATED
        self.ctx.remove(self)
        out.append(Terminated(self.id))

    def fail(self, out: list[Event], event: Timeout | TransportError) -> None:
        out.append(event)
        self.terminate(out)

    # --- inputs (the layer calls only what fits the transaction's kind) ---
    def on_timer(self, slot: int, now: float, out: list[Event]) -> None:
        """A timer of this transaction fired."""

    def on_response(self, response: Response, peer: Peer, now: float, out: list[Event]) -> None:
        """Client: a response matched this transaction."""

    def on_retransmission(self, request: Request, now: float, out: list[Event]) -> None:
        """Server: the request arrived again."""

    def on_ack(self, ack: Request, peer: Peer, now: float, out: list[Event]) -> None:
        """INVITE server: an ACK matched this transaction."""

    def respond(self, response: Response, now: float, out: list[Event]) -> bool:
        """Server: the TU answers; False when the state does not allow that response."""
        return False


# ----------------------------------------------------------------------- clients


class InviteClient(Transaction):
    """§17.1.1 with RFC 6026: Calling -> Proceeding -> Accepted | Completed."""

    __slots__ = ("ack", "data", "request")

    def __init__(self, ctx: Context, txn_id: TxnId, request: Request, peer: Peer) -> None:
        super().__init__(ctx, txn_id, peer, CALLING)
        self.request: Request | None = request  # for the ACK; dropped once final
        self.data = request.to_bytes()
        self.ack: bytes | None = None

    def start(self, now: float, out: list[Event]) -> None:
        out.append(Send(self.data, self.peer, self.id))
        config = self.ctx.config
        if not self.reliable:
            self.interval = config.t1
            self._arm(RETRANSMIT, now + config.t1)  # A
        self._arm(LIFETIME, now + config.timeout)  # B

    def on_response(self, response: Response, peer: Peer, now: float, out: list[Event]) -> None:
        status, state = response.status, self.state
        if state is CALLING or state is PROCEEDING:
            config = self.ctx.config
            self._stop(RETRANSMIT)
            if status < 200:
                if state is CALLING:  # B no longer applies; the TU cancels or we give up
                    self.state = PROCEEDING
                    self._arm(LIFETIME, now + config.proceeding_limit)
                out.append(ResponseReceived(self.id, response, peer))
            elif status < 300:
                self.state = ACCEPTED
                self.request, self.data = None, b""
                self._arm(LIFETIME, now + config.timeout)  # M
                out.append(ResponseReceived(self.id, response, peer))
            elif self.request is not None:
                self.state = COMPLETED
                self.ack = make_ack(self.request, response).to_bytes()
                self.request, self.data = None, b""
                out.append(Send(self.ack, self.peer, self.id))
                out.append(ResponseReceived(self.id, response, peer))
                if self.reliable:  # D = 0
                    self.terminate(out)
                else:
                    self._arm(LIFETIME, now + config.timer_d)  # D
        elif state is ACCEPTED:
            if 200 <= status < 300:  # retransmission or another fork: the TU ACKs it
                out.append(ResponseReceived(self.id, response, peer))
        elif state is COMPLETED and status >= 300 and self.ack is not None:
            out.append(Send(self.ack, self.peer, self.id))  # our ACK was lost

    def on_timer(self, slot: int, now: float, out: list[Event]) -> None:
        if slot == RETRANSMIT:
            if self.state is CALLING:  # A: doubles without bound; B ends it
                self.ctx.stats.retransmissions_sent += 1
                out.append(Send(self.data, self.peer, self.id))
                self.interval *= 2
                self._arm(RETRANSMIT, now + self.interval)
        elif self.state is CALLING or self.state is PROCEEDING:
            self.fail(out, Timeout(self.id))  # B, or the proceeding limit
        else:
            self.terminate(out)  # D, M


class NonInviteClient(Transaction):
    """§17.1.2: Trying -> Proceeding -> Completed; E doubles up to T2."""

    __slots__ = ("data",)

    def __init__(self, ctx: Context, txn_id: TxnId, request: Request, peer: Peer) -> None:
        super().__init__(ctx, txn_id, peer, TRYING)
        self.data = request.to_bytes()

    def start(self, now: float, out: list[Event]) -> None:
        out.append(Send(self.data, self.peer, self.id))
        config = self.ctx.config
        if not self.reliable:
            self.interval = config.t1
            self._arm(RETRANSMIT, now + config.t1)  # E
        self._arm(LIFETIME, now + config.timeout)  # F

    def on_response(self, response: Response, peer: Peer, now: float, out: list[Event]) -> None:
        state = self.state
        if state is COMPLETED:
            return  # retransmitted final response: absorbed
        if response.status < 200:
            self.state = PROCEEDING
            out.append(ResponseReceived(self.id, response, peer))
            return
        self._stop(RETRANSMIT)
        self.state = COMPLETED
        self.data = b""
        out.append(ResponseReceived(self.id, response, peer))
        if self.reliable:  # K = 0
            self.terminate(out)
        else:
            self._arm(LIFETIME, now + self.ctx.config.t4)  # K

    def on_timer(self, slot: int, now: float, out: list[Event]) -> None:
        state = self.state
        if slot == RETRANSMIT:
            if state is TRYING or state is PROCEEDING:
                self.ctx.stats.retransmissions_sent += 1
                out.append(Send(self.data, self.peer, self.id))
                t2 = self.ctx.config.t2
                self.interval = t2 if state is PROCEEDING else min(2 * self.interval, t2)
                self._arm(RETRANSMIT, now + self.interval)
        elif state is COMPLETED:
            self.terminate(out)  # K
        else:
            self.fail(out, Timeout(self.id))  # F


# ----------------------------------------------------------------------- servers


class ServerTransaction(Transaction):
    """What both server machines keep: the request (until final) and the last response."""

    __slots__ = (
        "last",
        "last_response",
        "legacy",
        "request",
        "request_tag",
        "response_tag",
        "source",
    )
    server = True

    def __init__(
        self, ctx: Context, txn_id: TxnId, request: Request, source: Peer, dest: Peer, state: str
    ) -> None:
        super().__init__(ctx, txn_id, dest, state)
        self.request: Request | None = request
        self.source = source
        self.last: bytes | None = None  # bytes of the last response, for retransmissions
        self.last_response: Response | None = None  # while no final response was sent
        # RFC 2543 matching only (set by the layer): To tags of request and response
        self.legacy = False
        self.request_tag: str | None = None
        self.response_tag: str | None = None

    def _sent_final(self, response: Response) -> None:
        if self.legacy:
            self.response_tag = response.to.tag  # RFC 2543 ACK matching needs it
        self.request = None
        self.last_response = None


class InviteServer(ServerTransaction):
    """§17.2.1 with RFC 6026: Proceeding -> Accepted | Completed -> Confirmed."""

    __slots__ = ()

    def __init__(
        self, ctx: Context, txn_id: TxnId, request: Request, source: Peer, dest: Peer
    ) -> None:
        super().__init__(ctx, txn_id, request, source, dest, PROCEEDING)
        ctx.pending_invites += 1

    def terminate(self, out: list[Event]) -> None:
        if self.state is PROCEEDING:  # never finally answered (proceeding limit, transport)
            self.ctx.pending_invites -= 1
        super().terminate(out)

    def start(self, request: Request, now: float, out: list[Event]) -> None:
        config = self.ctx.config
        out.append(RequestReceived(self.id, request, self.source))
        if config.trying_delay <= 0:
            self._send_trying(out)
        else:
            self._arm(RETRANSMIT, now + config.trying_delay)
        self._arm(LIFETIME, now + config.proceeding_limit)

    def _send_trying(self, out: list[Event]) -> None:
        if self.request is not None:
            self.last = self.request.make_response(100).to_bytes()
            out.append(Send(self.last, self.peer, self.id))

    def on_retransmission(self, request: Request, now: float, out: list[Event]) -> None:
        state = self.state
        if state is PROCEEDING:
            if self.last is None:  # the client is impatient: quench it now
                self._stop(RETRANSMIT)
                self._send_trying(out)
            else:
                out.append(Send(self.last, self.peer, self.id))
        elif state is COMPLETED and self.last is not None:
            out.append(Send(self.last, self.peer, self.id))
        # Accepted (RFC 6026) and Confirmed: absorbed

    def on_ack(self, ack: Request, peer: Peer, now: float, out: list[Event]) -> None:
        state = self.state
        if state is COMPLETED:
            self._stop(RETRANSMIT)
            self.state = CONFIRMED
            if self.reliable:  # I = 0
                self.terminate(out)
            else:
                self._arm(LIFETIME, now + self.ctx.config.t4)  # I
        elif state is ACCEPTED:
            out.append(AckReceived(ack, peer))  # RFC 6026: the ACK for the 2xx is the TU's

    def respond(self, response: Response, now: float, out: list[Event]) -> bool:
        status, state = response.status, self.state
        if state is ACCEPTED:
            if 200 <= status < 300:  # the TU retransmitting its 2xx (§13.3.1.4)
                out.append(Send(response.to_bytes(), self.peer, self.id))
                return True
            return False
        if state is not PROCEEDING:
            return False
        config = self.ctx.config
        self._stop(RETRANSMIT)  # the 100 Trying delay
        data = response.to_bytes()
        out.append(Send(data, self.peer, self.id))
        if status < 200:
            self.last = data
            self.last_response = response
            return True
        self.ctx.pending_invites -= 1  # leaves Proceeding
        if status < 300:
            self.state = ACCEPTED
            self.last = None
            self._sent_final(response)
            self._arm(LIFETIME, now + config.timeout)  # L
        else:
            self.state = COMPLETED
            self.last = data
            self._sent_final(response)
            if not self.reliable:
                self.interval = config.t1
                self._arm(RETRANSMIT, now + config.t1)  # G
            self._arm(LIFETIME, now + config.timeout)  # H
        return True

    def on_timer(self, slot: int, now: float, out: list[Event]) -> None:
        state = self.state
        if slot == RETRANSMIT:
            if state is PROCEEDING:
                self._send_trying(out)
            elif state is COMPLETED and self.last is not None:  # G
                self.ctx.stats.retransmissions_sent += 1
                out.append(Send(self.last, self.peer, self.id))
                self.interval = min(2 * self.interval, self.ctx.config.t2)
                self._arm(RETRANSMIT, now + self.interval)
        elif state is PROCEEDING or state is COMPLETED:
            self.fail(out, Timeout(self.id))  # proceeding limit; H: the ACK never came
        else:
            self.terminate(out)  # L, I


class NonInviteServer(ServerTransaction):
    """§17.2.2: Trying -> Proceeding -> Completed; J keeps the final response for
    retransmitted requests. A TU that never answers is forgotten after 64*T1, when
    the client has given up (timer F)."""

    __slots__ = ()

    def __init__(
        self, ctx: Context, txn_id: TxnId, request: Request, source: Peer, dest: Peer
    ) -> None:
        super().__init__(ctx, txn_id, request, source, dest, TRYING)

    def start(self, request: Request, now: float, out: list[Event], *, announce: bool) -> None:
        if announce:
            out.append(RequestReceived(self.id, request, self.source))
        self._arm(LIFETIME, now + self.ctx.config.timeout)

    def on_retransmission(self, request: Request, now: float, out: list[Event]) -> None:
        if self.last is not None:  # Proceeding or Completed; in Trying: absorbed
            out.append(Send(self.last, self.peer, self.id))

    def respond(self, response: Response, now: float, out: list[Event]) -> bool:
        if self.state is COMPLETED:
            return False
        data = response.to_bytes()
        out.append(Send(data, self.peer, self.id))
        self.last = data
        if response.status < 200:
            self.state = PROCEEDING
            return True
        self.state = COMPLETED
        self._sent_final(response)
        if self.reliable:  # J = 0
            self.terminate(out)
        else:
            self._arm(LIFETIME, now + self.ctx.config.timeout)  # J
        return True

    def on_timer(self, slot: int, now: float, out: list[Event]) -> None:
        if self.state is COMPLETED:
            self.terminate(out)  # J
        else:
            self.fail(out, Timeout(self.id))
