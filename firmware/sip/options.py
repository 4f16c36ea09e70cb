"""Answering OPTIONS (RFC 3261 §11.2): what the box can do, for keep-alive pings and probes.

Phones, trunks and SBCs send OPTIONS to see whether the box is alive and what it accepts.
The answer is a 200 with Allow, Accept, Accept-Encoding, Accept-Language and Supported,
and no body (no SDP: a ping must stay cheap, and media capabilities are offered per call).
Whoever owns the dialog and media layers passes what they actually support.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from firmware.sip.message import Request, Response

__all__ = ["ACCEPT", "ALLOW", "options_response"]

#: Methods the box's SIP endpoint handles (B2BUA and registrar).
ALLOW = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER")
#: Bodies it understands.
ACCEPT = ("application/sdp",)


def options_response(
    request: Request,
    *,
    allow: Iterable[str] = ALLOW,
    accept: Iterable[str] = ACCEPT,
    supported: Iterable[str] = (),
    status: int = 200,
    to_tag: str | None = None,
) -> Response:
    """The answer to ``request`` (an OPTIONS), listing capabilities.

    ``status`` lets a busy box answer 486/503 with the same capability headers, as
    §11.2 suggests (the response code is what an INVITE would get now). A To without tag
    gets ``to_tag`` (random if not given). Raises `SipParseError` only for a request
    that cannot be answered at all (no To/From/Call-ID/CSeq); parsed requests always can.
    """
    headers = [
        ("Allow", ", ".join(allow)),
        ("Accept", ", ".join(accept)),
        ("Accept-Encoding", "identity"),
        ("Accept-Language", "en"),
    ]
    tags = ", ".join(supported)
    if tags:
        headers.append(("Supported", tags))
    return request.make_response(
        status, to_tag=to_tag or secrets.token_hex(6), headers=headers, body=b""
    )
