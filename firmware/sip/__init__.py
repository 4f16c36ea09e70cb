"""SIP stack: message parsing, transactions, dialogs, digest auth, registrar, B2BUA.

The message layer is sans-I/O. Parse with `parse_message` (bytes in, `Request` or
`Response` out; on bad input only `SipParseError` comes out), answer a refused request
with `error_response`, cut TCP/TLS streams with `StreamFramer`, serialize with
``message.to_bytes()``.
"""

from firmware.sip.errors import (
    MAX_BODY_SIZE,
    MAX_DATAGRAM_SIZE,
    MAX_HEADER_COUNT,
    MAX_HEADER_SECTION,
    MAX_LINE_LENGTH,
    MAX_PARAM_COUNT,
    MAX_STREAM_MESSAGE_SIZE,
    MAX_URI_LENGTH,
    MAX_VIA_COUNT,
    SipParseError,
)
from firmware.sip.fields import CSeq, MediaType, NameAddr, Via, parse_name_addr, parse_via
from firmware.sip.framing import KEEPALIVE, KeepAlive, StreamFramer, message_length
from firmware.sip.headers import Headers, canonical_name
from firmware.sip.location import Binding, LocationError, LocationService
from firmware.sip.message import (
    REASON_PHRASES,
    Message,
    Request,
    Response,
    error_response,
    parse_message,
)
from firmware.sip.options import options_response
from firmware.sip.registrar import AuthGuard, Registrar, RegistrarSettings, UserDirectory
from firmware.sip.syntax import Params, quote, unquote
from firmware.sip.uri import (
    AbsoluteUri,
    SipUri,
    Uri,
    UriParams,
    normalize_escapes,
    parse_uri,
    unescape,
)

__all__ = [
    "KEEPALIVE",
    "MAX_BODY_SIZE",
    "MAX_DATAGRAM_SIZE",
    "MAX_HEADER_COUNT",
    "MAX_HEADER_SECTION",
    "MAX_LINE_LENGTH",
    "MAX_PARAM_COUNT",
    "MAX_STREAM_MESSAGE_SIZE",
    "MAX_URI_LENGTH",
    "MAX_VIA_COUNT",
    "REASON_PHRASES",
    "AbsoluteUri",
    "AuthGuard",
    "Binding",
    "CSeq",
    "Headers",
    "KeepAlive",
    "LocationError",
    "LocationService",
    "MediaType",
    "Message",
    "NameAddr",
    "Params",
    "Registrar",
    "RegistrarSettings",
    "Request",
    "Response",
    "SipParseError",
    "SipUri",
    "StreamFramer",
    "Uri",
    "UriParams",
    "UserDirectory",
    "Via",
    "canonical_name",
    "error_response",
    "message_length",
    "normalize_escapes",
    "options_response",
    "parse_message",
    "parse_name_addr",
    "parse_uri",
    "parse_via",
    "quote",
    "unescape",
    "unquote",
]

# --- transactions (RFC 3261 §17, RFC 6026), transports and the endpoint ---
from firmware.sip.endpoint import (
    BaseTransactionUser,
    ClientTransaction,
    EndpointConfig,
    SipEndpoint,
    TransactionUser,
)
from firmware.sip.hop import (
    make_ack,
    make_cancel,
    new_branch,
    response_peer,
    stamp_via,
)
from firmware.sip.peer import Peer
from firmware.sip.timers import TimerConfig
from firmware.sip.transaction import TransactionLayer, TransactionStats
from firmware.sip.transport import SipTransport, TransportOptions, TransportStats
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

__all__ += [
    "AckReceived",
    "BaseTransactionUser",
    "CancelRequested",
    "ClientTransaction",
    "EndpointConfig",
    "Event",
    "Peer",
    "RequestReceived",
    "ResponseReceived",
    "Send",
    "SipEndpoint",
    "SipTransport",
    "StrayResponse",
    "Terminated",
    "Timeout",
    "TimerConfig",
    "TransactionLayer",
    "TransactionStats",
    "TransactionUser",
    "TransportError",
    "TransportOptions",
    "TransportStats",
    "TxnId",
    "make_ack",
    "make_cancel",
    "new_branch",
    "response_peer",
    "stamp_via",
]
