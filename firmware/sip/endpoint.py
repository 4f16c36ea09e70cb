"""The SIP endpoint: transports + transaction layer + one timer, for the registrar/B2BUA.

The sans-I/O `TransactionLayer` decides; this module only carries its events out:
bytes to `SipTransport.send`, news to the transaction user (TU), and a single
``loop.call_later`` armed for the layer's next deadline (one handle for all
transaction timers, rescheduled only when an earlier deadline appears).

TU contract (see `TransactionUser`): answer every request passed to
``on_request`` with `SipEndpoint.respond` (now or later); answer the INVITE named
in ``on_cancel`` with 487; send the ACK for a 2xx and retransmit your own 2xx
until its ACK arrives (the dialog layer's job, RFC 3261 §13.3.1.4, RFC 6026),
with `respond` while the INVITE transaction is Accepted and `send_stateless` after.
Callbacks run on the event loop and must not block.

Outgoing requests get a top Via of ours (transport, bound address, a fresh branch,
``;rport``) and resolve to their final response; a timeout or transport failure
resolves to a local 408 or 503 (RFC 3261 §8.1.3.1), flagged in
`ClientTransaction.failure`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Protocol

from firmware.sip.fields import Via, parse_sent_by, parse_vias
from firmware.sip.hop import make_cancel, new_branch
from firmware.sip.message import Request, Response
from firmware.sip.peer import Peer, Transport
from firmware.sip.syntax import Params
from firmware.sip.timers import TimerConfig
from firmware.sip.transaction import TransactionLayer
from firmware.sip.transport import SipTransport, TransportOptions
from firmware.sip.txn_events import (
    AckReceived,
    CancelRequested,
    Event,
    RequestReceived,
    ResponseReceived,
    Send,
    StrayResponse,
    Terminated,
    Timeout,
    TransportError,
    TxnId,
)

log = logging.getLogger(__name__)

#: How late transaction timers may fire, at most and as a fraction of T1 (5 ms with the
#: RFC's 500 ms), so that the thousands of deadlines a second of a busy box share
#: wake-ups of the loop. A retransmission timer re-arms from its late firing, so the
#: slack adds up over one transaction's doublings: with T1/100, Timer A's six
#: retransmissions still all fall before Timer B.
TIMER_SLACK = 0.005
TIMER_SLACK_T1 = 0.01
_MAX_QUEUED_PROVISIONALS = 16  # an iterator nobody reads must not grow without bound


class TransactionUser(Protocol):
    """What the endpoint calls. Subclass `BaseTransactionUser` for the defaults."""

    def on_request(self, txn: TxnId, request: Request, peer: Peer) -> None:
        """A new request (never ACK or CANCEL); answer it with ``endpoint.respond(txn, ...)``."""

    def on_ack(self, request: Request, peer: Peer) -> None:
        """An ACK for a 2xx (or one matching nothing)."""

    def on_cancel(self, invite_txn: TxnId, cancel: Request, peer: Peer) -> None:
        """The caller cancelled a pending INVITE (already answered 200): answer it 487."""

    def on_response(self, txn: TxnId | None, response: Response, peer: Peer) -> None:
        """A response no `ClientTransaction` waits for: a stray one (``txn`` None) or a
        further 2xx to an INVITE already answered (retransmission or fork: ACK it)."""

    def on_failure(self, txn: TxnId, reason: str) -> None:
        """A server transaction failed: "timeout" (timer H: no ACK for the final
        response; or the TU never answered) or "transport"."""


class BaseTransactionUser:
    """A TU that keeps the stack correct: 501 for requests, 487 on CANCEL, no-ops else."""

    def __init__(self, endpoint: SipEndpoint) -> None:
        self.endpoint = endpoint

    def on_request(self, txn: TxnId, request: Request, peer: Peer) -> None:
        self.endpoint.reply(txn, 501)

    def on_ack(self, request: Request, peer: Peer) -> None:
        pass

    def on_cancel(self, invite_txn: TxnId, cancel: Request, peer: Peer) -> None:
        self.endpoint.reply(invite_txn, 487)

    def on_response(self, txn: TxnId | None, response: Response, peer: Peer) -> None:
        pass

    def on_failure(self, txn: TxnId, reason: str) -> None:
        pass


@dataclass(frozen=True)
class EndpointConfig:
    """Where to listen and the stack's limits. A port of None disables that transport;
    0 binds an ephemeral port (see `SipEndpoint.address`)."""

    host: str = "127.0.0.1"
    udp_port: int | None = 5060
    tcp_port: int | None = 5060
    tls_port: int | None = None
    tls_context: ssl.SSLContext | None = None  # required with tls_port (certs.server_context)
    advertised_host: str | None = None  # Via host when ``host`` is a wildcard address
    timers: TimerConfig = field(default_factory=TimerConfig)
    transport: TransportOptions = field(default_factory=TransportOptions)
    max_server_transactions: int = 100_000
    retry_after: int = 5


class ClientTransaction:
    """An outgoing request in flight: await `response`, or ``async for`` every
    response (provisionals, then the final one)."""

    __slots__ = (
        "_endpoint",
        "_final",
        "_on_provisional",
        "_queue",
        "_wakeup",
        "cancel_requested",
        "failure",
        "peer",
        "provisional_received",
        "request",
        "txn",
    )

    def __init__(
        self,
        endpoint: SipEndpoint,
        txn: TxnId,
        request: Request,
        peer: Peer,
        on_provisional: Callable[[Response], None] | None,
    ) -> None:
        self._endpoint = endpoint
        self.txn = txn
        self.request = request
        self.peer = peer
        loop = endpoint._loop or asyncio.get_running_loop()
        self._final: asyncio.Future[Response] = loop.create_future()
        self._on_provisional = on_provisional
        self._queue: deque[Response] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self.provisional_received = False
        self.cancel_requested = False
        self.failure: str | None = None  # "timeout" / "transport" / "closed": a local final

    @property
    def done(self) -> bool:
        return self._final.done()

    async def response(self) -> Response:
        """The final response (a local 408/503 when `failure` is set)."""
        return await asyncio.shield(self._final)

    def cancel(self) -> None:
        """CANCEL this INVITE (sent once a provisional response has arrived, §9.1)."""
        self._endpoint.cancel(self)

    def __aiter__(self) -> AsyncIterator[Response]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Response]:
        while True:
            while self._queue:
                response = self._queue.popleft()
                yield response
                if response.status >= 200:
                    return
            if self._final.done() and not self._queue:
                return
            self._wakeup = asyncio.get_running_loop().create_future()
            await self._wakeup

    def _deliver(self, response: Response, failure: str | None = None) -> None:
        final = response.status >= 200
        if not final:
            self.provisional_received = True
            if self._on_provisional is not None:
                self._on_provisional(response)
            if len(self._queue) >= _MAX_QUEUED_PROVISIONALS:
                self._queue.popleft()
        self._queue.append(response)
        if final and not self._final.done():
            self.failure = failure
            self._final.set_result(response)
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)


class SipEndpoint:
    """One SIP endpoint: listeners, transactions and the TU callbacks.

    Also a supervised service (``name``, `run`). ``clock`` (monotonic seconds) is the
    transaction layer's time; it defaults to the event loop's.
    """

    name = "sip"

    def __init__(
        self,
        config: EndpointConfig | None = None,
        tu: TransactionUser | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.config = config or EndpointConfig()
        self.tu = tu
        self._clock_override = clock
        self._clock: Callable[[], float] = clock or (lambda: 0.0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._layer: TransactionLayer | None = None
        self._transport: SipTransport | None = None
        self._clients: dict[TxnId, ClientTransaction] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        # per transport, while the listeners are up: our Via prefix, and its sent-by parsed
        self._vias: dict[str, tuple[str, tuple[str, str, int | None]]] = {}

    # ------------------------------------------------------------- lifecycle
    @property
    def layer(self) -> TransactionLayer:
        if self._layer is None:
            raise RuntimeError("SIP endpoint not started")
        return self._layer

    @property
    def transport(self) -> SipTransport:
        if self._transport is None:
            raise RuntimeError("SIP endpoint not started")
        return self._transport

    async def start(self) -> None:
        """Bind the configured listeners (fails, and binds nothing, if one cannot)."""
        config = self.config
        if config.tls_port is not None and config.tls_context is None:
            raise ValueError("a TLS port needs tls_context")
        loop = self._loop = asyncio.get_running_loop()
        self._clock = self._clock_override or loop.time
        self._vias.clear()
        self._layer = TransactionLayer(
            self._clock,
            config.timers,
            max_server_transactions=config.max_server_transactions,
            retry_after=config.retry_after,
        )
        self._transport = SipTransport(self._on_message, self._on_send_error, config.transport)
        try:
            if config.udp_port is not None:
                await self._transport.listen_udp(config.host, config.udp_port)
            if config.tcp_port is not None:
                await self._transport.listen_tcp(config.host, config.tcp_port)
            if config.tls_port is not None and config.tls_context is not None:
                await self._transport.listen_tls(config.host, config.tls_port, config.tls_context)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop listening; pending outgoing requests end with a local 503."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for handle in list(self._clients.values()):
            handle._deliver(handle.request.make_response(503), "closed")
        self._clients.clear()
        if self._transport is not None:
            await self._transport.close()
        self._transport = None
        self._layer = None
        self._vias.clear()

    async def run(self, ready: Callable[[], None]) -> None:
        """Service form: bind, report ready, serve until cancelled."""
        await self.start()
        try:
            ready()
            await asyncio.Event().wait()
        finally:
            await self.close()

    def address(self, transport: Transport) -> tuple[str, int] | None:
        """The bound (host, port) of a listener."""
        return None if self._transport is None else self._transport.address(transport)

    def stats(self) -> dict[str, int]:
        """Counters and gauges for /metrics."""
        out: dict[str, int] = {}
        if self._layer is not None:
            layer = self._layer
            out.update({f"txn_{f.name}": getattr(layer.stats, f.name) for f in fields(layer.stats)})
            out["txn_server_live"] = layer.server_count
            out["txn_client_live"] = layer.client_count
        if self._transport is not None:
            transport = self._transport
            stats = transport.stats
            out.update({f"transport_{f.name}": getattr(stats, f.name) for f in fields(stats)})
            out["transport_connections"] = transport.connection_count
        return out

    # ------------------------------------------------------------------ TU API
    def respond(self, txn: TxnId, response: Response) -> bool:
        """Send the TU's response on server transaction ``txn``; False if refused
        (transaction gone, or already finally answered)."""
        if self._layer is None:
            return False
        events = self._layer.respond(txn, response)
        self._process(events)
        return bool(events)

    def reply(
        self,
        txn: TxnId,
        status: int,
        reason: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> bool:
        """Build and send a response to the pending request of ``txn`` (To tag: the
        one of our last provisional response, else a new one). False if the
        transaction is gone or already finally answered."""
        layer = self._layer
        request = None if layer is None else layer.server_request(txn)
        if layer is None or request is None:
            return False
        tag = layer.provisional_tag(txn) or secrets.token_hex(6)
        response = request.make_response(status, reason, to_tag=tag, headers=headers, body=body)
        return self.respond(txn, response)

    def start_request(
        self,
        request: Request,
        peer: Peer,
        *,
        add_via: bool = True,
        on_provisional: Callable[[Response], None] | None = None,
    ) -> ClientTransaction:
        """Send ``request`` to ``peer`` in a new client transaction.

        ``add_via`` prepends our Via with a fresh branch (turn it off only for a
        request that already carries one, like a CANCEL built from its INVITE).
        """
        layer = self.layer
        if add_via:
            self.add_via(request, peer.transport)
        if "Max-Forwards" not in request.headers:
            request.headers.add("Max-Forwards", "70")
        txn, events = layer.send_request(request, peer)
        handle = ClientTransaction(self, txn, request, peer, on_provisional)
        self._clients[txn] = handle
        self._process(events)
        return handle

    async def request(
        self,
        request: Request,
        peer: Peer,
        *,
        on_provisional: Callable[[Response], None] | None = None,
    ) -> Response:
        """Send ``request`` and return its final response (408/503 made up locally on
        timeout or transport failure); ``on_provisional`` sees each 1xx."""
        return await self.start_request(request, peer, on_provisional=on_provisional).response()

    def cancel(self, handle: ClientTransaction) -> None:
        """CANCEL a pending INVITE; deferred until a provisional response came (§9.1)."""
        if handle.request.method != "INVITE" or handle.done or handle.cancel_requested:
            return
        handle.cancel_requested = True
        if handle.provisional_received:
            self._send_cancel(handle)

    def _send_cancel(self, handle: ClientTransaction) -> None:
        invite = self.layer.pending_invite(handle.txn)
        if invite is not None:
            self.start_request(make_cancel(invite), handle.peer, add_via=False)

    def send_stateless(self, message: Request | Response, peer: Peer) -> None:
        """Send outside any transaction: the ACK for a 2xx, 2xx retransmissions.
        A request without Via gets ours."""
        if isinstance(message, Request) and "Via" not in message.headers:
            self.add_via(message, peer.transport)
        self.transport.send(message.to_bytes(), peer)

    def add_via(self, request: Request, transport: Transport) -> str:
        """Prepend our Via (with ``;rport``) for ``transport``; returns the new branch.

        On a request that had none (all the box builds), the parsed Via is stored with
        it, so the transaction layer and the B2BUA do not parse back what we just wrote.
        """
        branch = new_branch()
        prefix, sent_by = self._via(transport)
        headers = request.headers
        first = "Via" not in headers
        headers.prepend("Via", f"{prefix};branch={branch};rport")
        if first:
            params = Params([("branch", branch), ("rport", None)])
            headers._prime("via", parse_vias, (Via(*sent_by, params),))
        return branch

    def via_prefix(self, transport: Transport) -> str:
        """``SIP/2.0/UDP host:port``: what our Via says for ``transport``."""
        return self._via(transport)[0]

    def _via(self, transport: Transport) -> tuple[str, tuple[str, str, int | None]]:
        via = self._vias.get(transport)
        if via is None:
            prefix = self._make_via_prefix(transport)
            via = self._vias[transport] = (prefix, parse_sent_by(prefix))
        return via

    def _make_via_prefix(self, transport: Transport) -> str:
        tr = self.transport
        address = tr.address(transport) or tr.address("udp") or tr.address("tcp")
        if address is None:
            raise RuntimeError("no SIP listener to name in Via")
        host = self.config.advertised_host or address[0]
        if ":" in host:
            host = f"[{host}]"
        return f"SIP/2.0/{transport.upper()} {host}:{address[1]}"

    # ------------------------------------------------------------- internals
    def _on_message(self, message: Request | Response, peer: Peer) -> None:
        if self._layer is not None:
            self._process(self._layer.receive(message, peer))

    def _on_send_error(self, context: int | None, peer: Peer) -> None:
        if context is not None and self._layer is not None:
            self._process(self._layer.transport_error(context))

    def _process(self, events: list[Event]) -> None:
        for event in events:
            try:
                self._dispatch(event)
            except Exception:  # a TU bug: keep the stack running
                log.exception("SIP TU callback failed on %s", type(event).__name__)
                if isinstance(event, RequestReceived) and self._layer is not None:
                    state = self._layer.state(event.txn)
                    if state in ("Trying", "Proceeding"):
                        self.reply(event.txn, 500)
        self._schedule()

    def _dispatch(self, event: Event) -> None:
        tu = self.tu
        match event:
            case Send(data, peer, txn):
                if self._transport is not None:
                    self._transport.send(data, peer, txn)
            case RequestReceived(txn, request, peer):
                if tu is None:
                    self.reply(txn, 503)
                else:
                    tu.on_request(txn, request, peer)
            case ResponseReceived(txn, response, peer):
                handle = self._clients.get(txn)
                if handle is not None and not handle.done:
                    first = response.status < 200 and not handle.provisional_received
                    handle._deliver(response)
                    if handle.done:  # forget it now, not 32 s later (Timer M): what it holds
                        del self._clients[txn]  # is freed; further 2xx go to the TU as before
                    if first and handle.cancel_requested:
                        self._send_cancel(handle)  # the CANCEL deferred by §9.1
                elif tu is not None:
                    tu.on_response(txn, response, peer)
            case AckReceived(request, peer):
                if tu is not None:
                    tu.on_ack(request, peer)
            case CancelRequested(txn, request, peer):
                if tu is None:
                    self.reply(txn, 487)
                else:
                    tu.on_cancel(txn, request, peer)
            case StrayResponse(response, peer):
                if tu is not None:
                    tu.on_response(None, response, peer)
            case Timeout(txn) | TransportError(txn):
                reason = "timeout" if isinstance(event, Timeout) else "transport"
                handle = self._clients.pop(txn, None)
                if handle is not None:
                    if not handle.done:
                        status = 408 if reason == "timeout" else 503
                        handle._deliver(handle.request.make_response(status), reason)
                elif tu is not None:
                    tu.on_failure(txn, reason)
            case Terminated(txn):
                self._clients.pop(txn, None)

    def _schedule(self) -> None:
        layer = self._layer
        loop = self._loop
        if layer is None or loop is None:
            return
        deadline = layer.next_deadline()
        if deadline is None:
            return
        if self._timer is not None:
            if self._timer_at <= deadline:
                return  # the wake-up already set serves this deadline too
            self._timer.cancel()
        self._timer_at = deadline
        # TIMER_SLACK late: the deadlines of that window are served by the same wake-up
        delay = max(0.0, deadline - self._clock()) + min(
            TIMER_SLACK, self.config.timers.t1 * TIMER_SLACK_T1
        )
        self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        layer = self._layer
        if layer is not None:
            # the loop may wake a hair early; the deadline we waited for has come
            self._process(layer.handle_timers(max(self._clock(), self._timer_at)))
