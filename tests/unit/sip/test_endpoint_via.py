"""The Via the endpoint adds to the requests it sends: parsed once, when written."""

from __future__ import annotations

import pytest

from firmware.sip import Request, Response
from firmware.sip.endpoint import EndpointConfig, SipEndpoint
from firmware.sip.fields import parse_vias
from firmware.sip.peer import Peer


class _Tu:
    def on_request(self, txn: int, req: Request, peer: Peer) -> None: ...
    def on_ack(self, req: Request, peer: Peer) -> None: ...
    def on_cancel(self, txn: int, req: Request, peer: Peer) -> None: ...
    def on_response(self, txn: int | None, resp: Response, peer: Peer) -> None: ...
    def on_failure(self, txn: int, reason: str) -> None: ...


def _request(*vias: str) -> Request:
    headers = [("Via", v) for v in vias] + [
        ("From", "<sip:101@box>;tag=a"),
        ("To", "<sip:201@box>"),
        ("Call-ID", "via-test@box"),
        ("CSeq", "1 INVITE"),
    ]
    return Request("INVITE", "sip:201@127.0.0.1", headers)


@pytest.mark.parametrize("advertised", [None, "Box.Example.DK"])
async def test_the_stored_via_is_what_parsing_the_header_gives(advertised: str | None) -> None:
    endpoint = SipEndpoint(
        EndpointConfig(udp_port=0, tcp_port=None, advertised_host=advertised), _Tu()
    )
    await endpoint.start()
    try:
        fresh = _request()
        branch = endpoint.add_via(fresh, "udp")
        stored = fresh.top_via  # primed by add_via, not parsed
        (parsed,) = parse_vias(fresh.headers.get_all("Via"))
        assert stored == parsed and stored.branch == branch and stored.rport_requested
        assert (stored.transport, stored.port) == ("UDP", endpoint.address("udp")[1])  # type: ignore[index]

        forwarded = _request("SIP/2.0/TCP 10.0.0.9:5070;branch=z9hG4bKbelow")
        endpoint.add_via(forwarded, "udp")  # not primed: both Vias parsed as usual
        assert forwarded.via == parse_vias(forwarded.headers.get_all("Via"))
        assert [v.host for v in forwarded.via][1] == "10.0.0.9"
    finally:
        await endpoint.close()
