"""The SIP transaction layer (RFC 3261 §17, RFC 6026), sans-I/O.

Parsed messages, TU commands and the time go in; `firmware.sip.txn_events` come
out: bytes to send and news for the TU. No sockets, no asyncio: the adapter
(`firmware.sip.endpoint`) calls `handle_timers` when `next_deadline` is reached,
and the clock is injected, so tests run the RFC's 32-second timers in microseconds.

What the layer decides on its own, so the TU never has to:

* matching (§17.1.3, §17.2.3): responses by top Via branch + CSeq method; requests
  by branch + sent-by + method (ACK finds its INVITE, CANCEL has its own
  transaction), or by the RFC 2543 rules when the branch lacks the magic cookie;
* retransmissions both ways, absorbing retransmitted requests and resending the
  last response; the ACK for a non-2xx final response (§17.1.1.3);
* CANCEL: 481 when no INVITE matches, else 200 and a `CancelRequested` event
  (the TU answers the INVITE 487);
* 100 Trying for an INVITE the TU has not answered within ``trying_delay``;
* overload: past ``max_server_transactions`` live server transactions, a new
  request is answered 503 with Retry-After, statelessly (retransmissions of known
  transactions are still served). Cheaper than queueing, and tells well-behaved
  peers to back off rather than retransmit. New INVITEs (no To tag) are refused the
  same way while `shed_invites` is set (by `firmware.sip.overload`: the loop is
  behind) or while ``max_pending_invites`` INVITEs wait for their final response;
  everything else -- ACK, BYE, CANCEL, in-dialog requests, retransmissions -- is
  served, so calls already admitted complete.

2xx responses to INVITE and their ACKs belong to the dialog layer (RFC 6026): the
TU retransmits its 2xx (through `respond` while the transaction is Accepted, or
statelessly after) and builds the ACK for a 2xx it receives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from firmware.sip.errors import SipParseError
from firmware.sip.hop import is_rfc3261_branch, response_peer
from firmware.sip.ids import new_tag
from firmware.sip.message import Request, Response
from firmware.sip.peer import Peer
from firmware.sip.timers import TimerConfig, TimerQueue
from firmware.sip.txn_events import (
    AckReceived,
    CancelRequested,
    Event,
    Send,
    StrayResponse,
    Timeout,
    TransportError,
    TxnId,
)
from firmware.sip.txn_states import (
    CALLING,
    PROCEEDING,
    Context,
    InviteClient,
    InviteServer,
    NonInviteClient,
    NonInviteServer,
    ServerTransaction,
    Transaction,
    TransactionStats,
)

__all__ = ["TransactionLayer", "TransactionStats"]


def _legacy_key(request: Request, kind: str) -> tuple[str, str | None, str, int, str, str]:
    """RFC 2543 matching (§17.2.3): Request-URI, From tag, Call-ID, CSeq number,
    top Via and method (INVITE for ACK and for a CANCEL looking for its INVITE).
    The To tag is checked separately, since for an ACK it is the response's."""
    return (
        str(request.uri),
        request.from_.tag,
        request.call_id,
        request.cseq.number,
        request.headers.get("Via") or "",
        kind,
    )


class TransactionLayer:
    """All client and server transactions of one SIP endpoint.

    ``clock`` gives the current time (seconds, monotonic) for the inputs that start
    timers; `handle_timers` takes the time explicitly. Every method returns the
    events to act on, in order.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        config: TimerConfig | None = None,
        *,
        max_server_transactions: int = 100_000,
        retry_after: int = 5,
        max_pending_invites: int = 5_000,
    ) -> None:
        self.config = config or TimerConfig()
        self.max_server_transactions = max_server_transactions
        self.max_pending_invites = max_pending_invites
        self.retry_after = retry_after
        #: Refuse new INVITEs (503) while set; the overload guard sets it.
        self.shed_invites = False
        self.stats = TransactionStats()
        self._clock = clock
        self._timers: TimerQueue[Transaction] = TimerQueue()
        self._ctx = Context(self.config, self._timers, self._remove, self.stats)
        self._clients: dict[tuple[str, str], Transaction] = {}
        self._servers: dict[tuple[str, str, int | None, str], Transaction] = {}
        self._legacy: dict[tuple[str, str | None, str, int, str, str], Transaction] = {}
        self._by_id: dict[TxnId, Transaction] = {}
        self._server_count = 0
        self._next_id = 0

    # ------------------------------------------------------------------ queries
    @property
    def server_count(self) -> int:
        """Live server transactions (what ``max_server_transactions`` caps)."""
        return self._server_count

    @property
    def pending_invites(self) -> int:
        """INVITE server transactions still waiting for their final response."""
        return self._ctx.pending_invites

    @property
    def client_count(self) -> int:
        return len(self._by_id) - self._server_count

    def state(self, txn: TxnId) -> str | None:
        """The RFC state name ("Proceeding", "Accepted", ...) or None once terminated."""
        t = self._by_id.get(txn)
        return None if t is None else t.state

    def pending_invite(self, txn: TxnId) -> Request | None:
        """The INVITE of a client transaction still waiting for a final response
        (what a CANCEL is built from), else None."""
        t = self._by_id.get(txn)
        if isinstance(t, InviteClient) and (t.state is CALLING or t.state is PROCEEDING):
            return t.request
        return None

    def server_request(self, txn: TxnId) -> Request | None:
        """The request of a server transaction not yet finally answered, else None."""
        t = self._by_id.get(txn)
        return t.request if isinstance(t, ServerTransaction) else None

    def provisional_tag(self, txn: TxnId) -> str | None:
        """The To tag of the last provisional response sent on a pending server
        transaction: the final response should carry the same one."""
        t = self._by_id.get(txn)
        if isinstance(t, ServerTransaction) and t.last_response is not None:
            return t.last_response.to.tag
        return None

    # ------------------------------------------------------------------- timers
    def next_deadline(self) -> float | None:
        """When `handle_timers` must next be called, or None when no timer runs."""
        return self._timers.next_deadline()

    def handle_timers(self, now: float) -> list[Event]:
        """Fire every timer due at ``now``."""
        out: list[Event] = []
        self._timers.pop_due(now, lambda txn, slot: txn.on_timer(slot, now, out))
        if out:
            self.stats.timeouts += sum(1 for e in out if type(e) is Timeout)
        return out

    # ------------------------------------------------------------- from the wire
    def receive(self, message: Request | Response, peer: Peer) -> list[Event]:
        """A message from the transport (received/rport already stamped on requests)."""
        out: list[Event] = []
        try:
            if isinstance(message, Request):
                self._receive_request(message, peer, out)
            else:
                self._receive_response(message, peer, out)
        except SipParseError:  # a header the matching needs is unusable: drop
            self.stats.malformed += 1
        return out

    def _receive_response(self, response: Response, peer: Peer, out: list[Event]) -> None:
        key = (response.top_via.branch or "", response.cseq.method)
        txn = self._clients.get(key)
        if txn is None:
            self.stats.stray_responses += 1
            out.append(StrayResponse(response, peer))
        else:
            txn.on_response(response, peer, self._clock(), out)

    def _receive_request(self, request: Request, peer: Peer, out: list[Event]) -> None:
        method = request.method
        via = request.top_via
        branch = via.branch
        txn: Transaction | None
        legacy_key: Any = None
        if branch is not None and is_rfc3261_branch(branch):
            key: Any = (branch, via.host.lower(), via.port, "INVITE" if method == "ACK" else method)
            txn = self._servers.get(key)
        else:
            key = None
            legacy_key = _legacy_key(request, "INVITE" if method == "ACK" else method)
            txn = self._match_legacy(legacy_key, request)
        if txn is not None:
            if method == "ACK":
                txn.on_ack(request, peer, self._clock(), out)
            else:
                self.stats.retransmissions_absorbed += 1
                txn.on_retransmission(request, self._clock(), out)
            return
        if method == "ACK":
            self.stats.acks_to_tu += 1
            out.append(AckReceived(request, peer))
            return
        dest = response_peer(via, peer)
        if self._server_count >= self.max_server_transactions or (
            method == "INVITE"
            and (self.shed_invites or self._ctx.pending_invites >= self.max_pending_invites)
            and request.to.tag is None
        ):
            self._reject_overload(request, dest, out)
            return
        now = self._clock()
        self._next_id += 1
        self._server_count += 1
        self.stats.server_created += 1
        server: InviteServer | NonInviteServer
        if method == "INVITE":
            server = InviteServer(self._ctx, self._next_id, request, peer, dest)
        else:
            server = NonInviteServer(self._ctx, self._next_id, request, peer, dest)
        if key is not None:
            server.key, server.table = key, self._servers
            self._servers[key] = server
        else:
            server.key, server.table = legacy_key, self._legacy
            server.legacy = True
            server.request_tag = request.to.tag
            self._legacy[legacy_key] = server
        self._by_id[server.id] = server
        if isinstance(server, InviteServer):
            server.start(request, now, out)
        elif method == "CANCEL":
            server.start(request, now, out, announce=False)
            self._answer_cancel(server, request, peer, key, now, out)
        else:
            server.start(request, now, out, announce=True)

    def _match_legacy(self, key: Any, request: Request) -> Transaction | None:
        txn = self._legacy.get(key)
        if not isinstance(txn, ServerTransaction):
            return None
        tag = request.to.tag
        if request.method == "ACK":  # must carry the tag of the response we sent
            ok = txn.response_tag is None or tag == txn.response_tag
        else:
            ok = tag == txn.request_tag
        return txn if ok else None

    def _answer_cancel(
        self,
        cancel_txn: NonInviteServer,
        cancel: Request,
        peer: Peer,
        key: Any,
        now: float,
        out: list[Event],
    ) -> None:
        """§9.2: 200 if an INVITE matches (and tell the TU if it is still pending), else 481."""
        invite: Transaction | None
        if key is not None:
            invite = self._servers.get((key[0], key[1], key[2], "INVITE"))
        else:
            invite = self._match_legacy(_legacy_key(cancel, "INVITE"), cancel)
        if not isinstance(invite, InviteServer):
            self.stats.cancels_unmatched += 1
            cancel_txn.respond(cancel.make_response(481, to_tag=new_tag()), now, out)
            return
        pending = invite.state is PROCEEDING
        provisional = invite.last_response
        tag = provisional.to.tag if provisional is not None else None
        cancel_txn.respond(cancel.make_response(200, to_tag=tag or new_tag()), now, out)
        if pending:
            out.append(CancelRequested(invite.id, cancel, peer))

    def _reject_overload(self, request: Request, dest: Peer, out: list[Event]) -> None:
        self.stats.overload_rejected += 1
        response = request.make_response(
            503,
            to_tag=new_tag(),
            headers=[("Retry-After", str(self.retry_after))],
        )
        out.append(Send(response.to_bytes(), dest))

    # ------------------------------------------------------------- from the TU
    def send_request(self, request: Request, peer: Peer) -> tuple[TxnId, list[Event]]:
        """Start a client transaction for ``request`` to ``peer``.

        The request must carry its top Via with a unique RFC 3261 branch (the
        endpoint adds it). ACK is not a transaction: send it statelessly.
        """
        method = request.method
        if method == "ACK":
            raise ValueError("ACK is sent without a transaction")
        branch = request.top_via.branch
        if branch is None or not is_rfc3261_branch(branch):
            raise ValueError("the top Via needs an RFC 3261 branch")
        key = (branch, method)
        if key in self._clients:
            raise ValueError(f"branch {branch} is already in use for {method}")
        self._next_id += 1
        self.stats.client_created += 1
        client: InviteClient | NonInviteClient
        if method == "INVITE":
            client = InviteClient(self._ctx, self._next_id, request, peer)
        else:
            client = NonInviteClient(self._ctx, self._next_id, request, peer)
        client.key, client.table = key, self._clients
        self._clients[key] = client
        self._by_id[client.id] = client
        out: list[Event] = []
        client.start(self._clock(), out)
        return client.id, out

    def respond(self, txn: TxnId, response: Response) -> list[Event]:
        """The TU's response on server transaction ``txn``.

        Returns no events when the response is refused: the transaction is gone
        (timed out, or the 64*T1 of Accepted are over: send a 2xx statelessly then),
        or it already has its final response.
        """
        t = self._by_id.get(txn)
        out: list[Event] = []
        if t is None or not t.server or not t.respond(response, self._clock(), out):
            self.stats.responses_refused += 1
        return out

    def transport_error(self, txn: TxnId) -> list[Event]:
        """The transport failed to deliver a message of ``txn``: it ends (§17.1.4, §17.2.4)."""
        t = self._by_id.get(txn)
        out: list[Event] = []
        if t is not None:
            self.stats.transport_errors += 1
            t.fail(out, TransportError(txn))
        return out

    # ---------------------------------------------------------------- internals
    def _remove(self, txn: Transaction) -> None:
        self._timers.cancel_all(txn)
        table = txn.table
        if table is not None and table.get(txn.key) is txn:
            del table[txn.key]
        if self._by_id.pop(txn.id, None) is not None and txn.server:
            self._server_count -= 1
