"""OPTIONS answers list what the box accepts (RFC 3261 §11.2)."""

from __future__ import annotations

from firmware.sip import Request, parse_message
from firmware.sip.options import ALLOW, options_response

PING = (
    b"OPTIONS sip:pbx.local SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.168.1.50:5060;branch=z9hG4bKping1\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:101@pbx.local>;tag=a1\r\n"
    b"To: <sip:pbx.local>\r\n"
    b"Call-ID: ping-1@192.168.1.50\r\n"
    b"CSeq: 7 OPTIONS\r\n"
    b"Accept: application/sdp\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_options_answer() -> None:
    request = parse_message(PING)
    assert isinstance(request, Request)
    response = options_response(request, supported=("path", "replaces"))
    assert response.status == 200
    assert response.allow == ALLOW
    assert response.headers.get("Accept") == "application/sdp"
    assert response.supported == ("path", "replaces")
    assert response.to.tag and response.cseq.number == 7 and response.body == b""
    again = parse_message(response.to_bytes())  # what goes on the wire parses back
    assert again.headers.get("Accept-Encoding") == "identity"


def test_options_busy_and_no_supported() -> None:
    request = parse_message(PING)
    assert isinstance(request, Request)
    response = options_response(request, status=486, to_tag="t1", allow=("OPTIONS",))
    assert response.status == 486 and response.to.tag == "t1"
    assert "Supported" not in response.headers and response.allow == ("OPTIONS",)
