"""Per-hop rules shared by the transaction layer and the transports (sans-I/O).

Branch generation (RFC 3261 §8.1.1.7), stamping the top Via of a received request
(§18.2.1, RFC 3581 ``received``/``rport``), where a response goes (§18.2.2 with RFC
3581), and the two requests the stack builds from an INVITE: the ACK for a non-2xx
final response (§17.1.1.3) and CANCEL (§9.1). Kept apart from the state machines
because the asyncio transports and the TU need the same answers.
"""

from __future__ import annotations

import ipaddress

from firmware.sip.fields import Via, parse_vias
from firmware.sip.headers import Headers
from firmware.sip.ids import random_hex
from firmware.sip.message import Request, Response
from firmware.sip.peer import Peer

MAGIC_COOKIE = "z9hG4bK"
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}


def new_branch() -> str:
    """A globally unique RFC 3261 branch: the magic cookie and 96 random bits."""
    return MAGIC_COOKIE + random_hex(12)


def is_rfc3261_branch(branch: str | None) -> bool:
    """True when the branch can identify a transaction on its own (§17.2.3).

    A bare cookie with nothing after it (RFC 4475 ``badbranch``) is not unique, so
    such requests fall back to RFC 2543 matching.
    """
    return branch is not None and len(branch) > 7 and branch.startswith(MAGIC_COOKIE)


def _same_address(a: str, b: str) -> bool:
    if a == b:
        return True
    if ":" not in a or ":" not in b:
        return False
    try:  # IPv6 spellings differ ("::1" vs "0:0::1")
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def stamp_via(request: Request, source: Peer) -> None:
    """Add ``received=`` (source address differs from sent-by) and fill ``rport=``.

    Done for every received request, whatever the transport, so that responses can
    be routed back through NATs (§18.2.1, RFC 3581 §4). Rewrites only the top Via
    and keeps the parsed Via list cached on the message.
    """
    vias = request.via
    top = new = vias[0]
    if not _same_address(top.host, source.host):
        new = new.with_param("received", source.host)
    if top.rport_requested:
        new = new.with_param("rport", str(source.port))
    if new is top:
        return
    headers = request.headers
    headers.pop_first("Via")
    headers.prepend("Via", str(new))
    headers._prime("via", parse_vias, (new, *vias[1:]))


def response_peer(via: Via, source: Peer) -> Peer:
    """Where the responses to a request go (§18.2.2; RFC 3581 §4).

    Reliable transports: back over the connection the request came on; if it has
    closed, the transport connects to the source address at the sent-by port. UDP:
    the source address (which is what ``received`` records), at the source port when
    ``rport`` was asked for, else at the sent-by port. ``maddr`` (multicast
    responses) is not supported: the unicast source is used.
    """
    if source.transport == "udp":
        port = source.port if via.rport_requested else (via.port or 5060)
        if port == source.port:
            return source
        return Peer("udp", source.host, port)
    port = via.port or DEFAULT_PORTS[source.transport]
    return Peer(source.transport, source.host, port, source.connection)


def _copy(target: Headers, source: Headers, name: str) -> None:
    for value in source.get_all(name):
        target.add(name, value)


def make_ack(invite: Request, response: Response) -> Request:
    """ACK for a 300-699 response, sent by the INVITE client transaction (§17.1.1.3).

    Same Request-URI, Call-ID, From, CSeq number and single top Via (so the same
    branch) as the INVITE; To from the response (it carries the tag); Route copied.
    """
    src = invite.headers
    headers = Headers()
    headers.add("Via", src.get("Via") or "")
    headers.add("Max-Forwards", "70")
    _copy(headers, src, "Route")
    headers.add("From", src.get("From") or "")
    headers.add("To", response.headers.get("To") or "")
    headers.add("Call-ID", src.get("Call-ID") or "")
    headers.add("CSeq", f"{invite.cseq.number} ACK")
    return Request("ACK", invite.uri, headers)


def make_cancel(invite: Request) -> Request:
    """CANCEL for a pending INVITE (§9.1): its own transaction, the INVITE's branch."""
    src = invite.headers
    headers = Headers()
    headers.add("Via", src.get("Via") or "")
    headers.add("Max-Forwards", "70")
    _copy(headers, src, "Route")
    headers.add("From", src.get("From") or "")
    headers.add("To", src.get("To") or "")
    headers.add("Call-ID", src.get("Call-ID") or "")
    headers.add("CSeq", f"{invite.cseq.number} CANCEL")
    return Request("CANCEL", invite.uri, headers)
