"""What the sans-I/O transaction layer hands back: bytes to send and news for the TU.

Every input of `firmware.sip.transaction.TransactionLayer` returns a list of these,
in the order they must be acted on (a `Send` before the event that follows from
it). Transactions are named by a ``TxnId`` (an int, unique for the layer's life),
so the TU never holds on to transaction objects and a late call about a finished
transaction is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware.sip.message import Request, Response
from firmware.sip.peer import Peer

TxnId = int


@dataclass(slots=True)
class Send:
    """Put ``data`` on the wire to ``peer``; on failure report `transport_error(txn)`."""

    data: bytes
    peer: Peer
    txn: TxnId | None = None


@dataclass(slots=True)
class RequestReceived:
    """A new request (not ACK, not CANCEL) for the TU; answer it with ``respond(txn)``."""

    txn: TxnId
    request: Request
    peer: Peer


@dataclass(slots=True)
class AckReceived:
    """An ACK that belongs to the TU: the ACK for a 2xx (a new branch), or a stray ACK."""

    request: Request
    peer: Peer


@dataclass(slots=True)
class CancelRequested:
    """A CANCEL matched a pending INVITE; the layer already answered it 200.

    The TU should end the INVITE with 487 (Request Terminated).
    """

    invite_txn: TxnId
    request: Request
    peer: Peer


@dataclass(slots=True)
class ResponseReceived:
    """A response for a client transaction: provisional, final, or (RFC 6026) a
    further 2xx for an INVITE already answered (retransmission or another fork)."""

    txn: TxnId
    response: Response
    peer: Peer


@dataclass(slots=True)
class StrayResponse:
    """A response that matches no client transaction (e.g. a late 2xx retransmission)."""

    response: Response
    peer: Peer


@dataclass(slots=True)
class Timeout:
    """Timer B/F (no final response), H (no ACK), or the proceeding limit fired."""

    txn: TxnId


@dataclass(slots=True)
class TransportError:
    """The transport could not deliver a message of this transaction."""

    txn: TxnId


@dataclass(slots=True)
class Terminated:
    """The transaction is gone; its id will not be seen again."""

    txn: TxnId


Event = (
    Send
    | RequestReceived
    | AckReceived
    | CancelRequested
    | ResponseReceived
    | StrayResponse
    | Timeout
    | TransportError
    | Terminated
)
