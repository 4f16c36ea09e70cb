"""Shared helpers for the transaction layer tests: a fake clock and message builders.

The layer is sans-I/O, so a test plays both the network and the TU: it feeds parsed
messages in, reads `Send` events out, and moves the fake clock from deadline to
deadline to fire the RFC timers without waiting for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from firmware.sip import Request, Response, parse_message
from firmware.sip.peer import Peer
from firmware.sip.timers import TimerConfig
from firmware.sip.transaction import TransactionLayer
from firmware.sip.txn_events import Event, Send

UDP_PEER = Peer("udp", "192.0.2.10", 5060)
TCP_PEER = Peer("tcp", "192.0.2.10", 40000, connection=7)


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def layer(clock: FakeClock) -> TransactionLayer:
    return TransactionLayer(clock, TimerConfig())


def request_bytes(
    method: str = "INVITE",
    *,
    branch: str | None = "z9hG4bKabc123",
    via_host: str = "192.0.2.10",
    via_port: int | None = 5060,
    transport: str = "UDP",
    cseq: int = 1,
    cseq_method: str | None = None,
    to_tag: str | None = None,
    from_tag: str = "ftag",
    call_id: str = "call-1@192.0.2.10",
    uri: str = "sip:bob@192.0.2.1",
    rport: bool = False,
    extra: str = "",
) -> bytes:
    params = f";branch={branch}" if branch is not None else ""
    if rport:
        params += ";rport"
    port = f":{via_port}" if via_port is not None else ""
    to = "<sip:bob@192.0.2.1>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {via_host}{port}{params}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:alice@192.0.2.10>;tag={from_tag}\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def request(method: str = "INVITE", **kw: object) -> Request:
    message = parse_message(request_bytes(method, **kw))  # type: ignore[arg-type]
    assert isinstance(message, Request)
    return message


def response_to(req: Request, status: int, *, to_tag: str | None = "ttag") -> Response:
    """A response as the far end would send it, re-parsed from bytes like the wire."""
    message = parse_message(req.make_response(status, to_tag=to_tag).to_bytes())
    assert isinstance(message, Response)
    return message


def sends(events: list[Event]) -> list[Send]:
    return [e for e in events if isinstance(e, Send)]


def sent_messages(events: list[Event]) -> list[Request | Response]:
    return [parse_message(e.data) for e in sends(events)]


def of_type(events: list[Event], kind: type) -> list[Event]:
    return [e for e in events if isinstance(e, kind)]


def advance(
    layer: TransactionLayer, clock: FakeClock, until: float, limit: int = 10_000
) -> list[tuple[float, Event]]:
    """Fire every timer up to ``until`` (absolute), recording when each event happened."""
    fired: list[tuple[float, Event]] = []
    for _ in range(limit):
        deadline = layer.next_deadline()
        if deadline is None or deadline > until:
            break
        clock.now = deadline
        fired.extend((deadline, e) for e in layer.handle_timers(deadline))
    clock.now = until
    return fired
