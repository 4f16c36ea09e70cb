"""Real sockets against the endpoint, with Python's own TCP/TLS/UDP clients as peers:
TLS (SIPp has none in Debian), keep-alives, connection reuse toward a phone, rport,
malformed input on each transport, idle cleanup and connection limits."""

from __future__ import annotations

import asyncio
import secrets
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from firmware.sip import Request, Response, StreamFramer, parse_message
from firmware.sip.endpoint import EndpointConfig, SipEndpoint
from firmware.sip.peer import Peer
from firmware.sip.transport import TransportOptions
from firmware.system.certs import ensure_certificate, server_context

from .conftest import TORTURE_DIR, TestUas, running_uas, udp_probe

Uas = tuple[SipEndpoint, TestUas]


def options(
    transport: str, host: str, port: int, *, rport: bool = True, branch: str | None = None
) -> bytes:
    branch = branch or f"z9hG4bK{secrets.token_hex(6)}"
    return (
        f"OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {host}:{port};branch={branch}{';rport' if rport else ''}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{host}>;tag={secrets.token_hex(4)}\r\n"
        "To: <sip:ping@127.0.0.1>\r\n"
        f"Call-ID: {secrets.token_hex(8)}@probe\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class StreamClient:
    """A bare SIP-over-stream peer: writes bytes, reads framed messages (bounded waits)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = StreamFramer()
        self.items: list[bytes | object] = []

    @property
    def local(self) -> tuple[str, int]:
        host, port = self.writer.get_extra_info("sockname")[:2]
        return host, port

    async def read_item(self, timeout: float = 3.0) -> bytes | object:
        while not self.items:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise EOFError
            self.items.extend(self.framer.feed(data))
        return self.items.pop(0)

    async def read_message(self, timeout: float = 3.0) -> Request | Response:
        item = await self.read_item(timeout)
        assert isinstance(item, bytes), item
        return parse_message(item, stream=True)

    def close(self) -> None:
        self.writer.close()


async def connect(port: int, context: ssl.SSLContext | None = None) -> StreamClient:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=context), 5
    )
    return StreamClient(reader, writer)


@pytest.fixture
async def tls_uas(tmp_path: Path) -> AsyncIterator[tuple[SipEndpoint, TestUas, Path]]:
    cert, key = ensure_certificate(tmp_path, "localhost")
    config = EndpointConfig(
        udp_port=0, tcp_port=None, tls_port=0, tls_context=server_context(cert, key)
    )
    async with running_uas(config) as (endpoint, tu):
        yield endpoint, tu, cert


async def test_tls_options_over_one_connection(tls_uas: tuple[SipEndpoint, TestUas, Path]) -> None:
    endpoint, tu, cert = tls_uas
    _, port = endpoint.address("tls") or ("", 0)
    context = ssl.create_default_context(cafile=str(cert))  # verifies the box's certificate
    client = await connect(port, context)
    try:
        assert client.writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
        host, cport = client.local
        for _ in range(2):
            client.writer.write(options("TLS", host, cport))
            answer = await client.read_message()
            assert isinstance(answer, Response) and answer.status == 200
            assert answer.top_via.rport == cport  # rport filled on TLS too
        assert tu.counters.requests == {"OPTIONS": 2}
        assert endpoint.transport.stats.connections_accepted == 1
    finally:
        client.close()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_tls_refuses_old_protocol_versions(
    tls_uas: tuple[SipEndpoint, TestUas, Path],
) -> None:
    endpoint, _, _ = tls_uas
    _, port = endpoint.address("tls") or ("", 0)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        await connect(port, context)


async def test_tcp_keepalive_and_reuse_of_the_phones_connection(uas: Uas) -> None:
    """A phone that connected to us is reached over its own connection (Peer.connection)."""
    endpoint, _tu = uas
    _, port = endpoint.address("tcp") or ("", 0)
    client = await connect(port)
    try:
        host, cport = client.local
        client.writer.write(options("TCP", host, 5060))  # sent-by port is not its socket
        first = await client.read_message()
        assert isinstance(first, Response) and first.status == 200
        client.writer.write(b"\r\n\r\n")  # RFC 5626 ping
        pong = await asyncio.wait_for(client.reader.readexactly(2), 3)
        assert pong == b"\r\n"
        # now the endpoint calls the phone: no new connection, its socket is reused
        (conn_id,) = endpoint.transport._conns
        peer = Peer("tcp", host, cport, conn_id)
        request = Request(
            "OPTIONS",
            f"sip:phone@{host}:{cport};transport=tcp",
            [("From", "<sip:box@127.0.0.1>;tag=b1"), ("To", "<sip:phone@127.0.0.1>"),
             ("Call-ID", "reuse-1@box"), ("CSeq", "1 OPTIONS")],
        )  # fmt: skip
        pending = endpoint.start_request(request, peer)
        incoming = await client.read_message()
        assert isinstance(incoming, Request) and incoming.method == "OPTIONS"
        assert incoming.top_via.transport == "TCP" and incoming.top_via.rport_requested
        client.writer.write(incoming.make_response(200, to_tag="p1").to_bytes())
        answer = await asyncio.wait_for(pending.response(), 3)
        assert answer.status == 200 and pending.failure is None
        assert endpoint.transport.connection_count == 1
        assert endpoint.transport.stats.connections_opened == 0
    finally:
        client.close()


async def test_malformed_on_a_stream_closes_it(uas: Uas) -> None:
    endpoint, _ = uas
    _, port = endpoint.address("tcp") or ("", 0)
    client = await connect(port)
    try:
        bad = options("TCP", "127.0.0.1", 5060).replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE")
        client.writer.write(bad)
        answer = await client.read_message()
        assert isinstance(answer, Response) and answer.status == 400
        with pytest.raises(EOFError):
            await client.read_item()
    finally:
        client.close()
    # framing broken (RFC 4475 ncl: negative Content-Length): closed without an answer
    client = await connect(port)
    try:
        client.writer.write((TORTURE_DIR / "ncl.dat").read_bytes())
        with pytest.raises(EOFError):
            await client.read_item()
    finally:
        client.close()
    assert endpoint.transport.stats.connections_closed_error == 2


async def test_rport_and_received_from_an_ephemeral_port(uas: Uas) -> None:
    """Via says 192.0.2.1:5999 with ;rport; the answer must come back to our socket."""
    endpoint, _ = uas
    host, port = endpoint.address("udp") or ("", 0)
    async with udp_probe() as probe:
        mine = probe.port
        probe.send(options("UDP", "192.0.2.1", 5999), (host, port))
        reply = await probe.recv(3)
    answer = parse_message(reply)
    assert isinstance(answer, Response) and answer.status == 200
    via = answer.top_via
    assert (via.host, via.port) == ("192.0.2.1", 5999)
    assert via.received == "127.0.0.1" and via.rport == mine


async def test_malformed_datagram_answered_to_its_source(uas: Uas) -> None:
    """The 400 goes to where the datagram came from, not to its (unreachable) Via."""
    endpoint, _ = uas
    host, port = endpoint.address("udp") or ("", 0)
    bad = options("UDP", "192.0.2.1", 5999, rport=False).replace(
        b"Max-Forwards: 70", b"Max-Forwards: lots"
    )
    async with udp_probe() as probe:
        probe.send(bad, (host, port))
        reply = await probe.recv(3)
        assert reply.startswith(b"SIP/2.0 400 ")
        probe.send(b"\x00\xff garbage \r\n\r\n", (host, port))  # unanswerable
        probe.send(b"\r\n\r\n", (host, port))  # a ping: ignored
        with pytest.raises(TimeoutError):
            await probe.recv(0.3)
    stats = endpoint.transport.stats
    assert (stats.malformed, stats.answered_malformed, stats.keepalives) == (2, 1, 1)


async def test_idle_and_half_message_connections_are_closed() -> None:
    config = EndpointConfig(
        udp_port=None,
        tcp_port=0,
        transport=TransportOptions(idle_timeout=0.4, partial_timeout=0.2),
    )
    async with running_uas(config) as (endpoint, _):
        _, port = endpoint.address("tcp") or ("", 0)
        idle, partial = await connect(port), await connect(port)
        try:
            partial.writer.write(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h")  # never finished
            with pytest.raises(EOFError):
                await partial.read_item(timeout=3)
            with pytest.raises(EOFError):
                await idle.read_item(timeout=3)
        finally:
            idle.close()
            partial.close()
        assert endpoint.transport.stats.connections_closed_idle == 2


async def test_connection_limit() -> None:
    config = EndpointConfig(
        udp_port=None, tcp_port=0, transport=TransportOptions(max_connections=2)
    )
    async with running_uas(config) as (endpoint, _tu):
        _, port = endpoint.address("tcp") or ("", 0)
        clients = [await connect(port) for _ in range(3)]
        try:
            third = clients[2]
            with pytest.raises((EOFError, ConnectionError)):
                third.writer.write(options("TCP", "127.0.0.1", 5060))
                await third.read_item(timeout=3)
            first = clients[0]
            first.writer.write(options("TCP", "127.0.0.1", 5060))
            answer = await first.read_message()
            assert isinstance(answer, Response) and answer.status == 200
        finally:
            for client in clients:
                client.close()
        assert endpoint.transport.stats.connections_refused == 1


async def test_unreachable_peer_ends_in_local_503(uas: Uas) -> None:
    endpoint, _ = uas
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]  # nothing listens here once closed
    request = Request(
        "OPTIONS",
        f"sip:nobody@127.0.0.1:{closed_port};transport=tcp",
        [("From", "<sip:box@127.0.0.1>;tag=b2"), ("To", "<sip:nobody@127.0.0.1>"),
         ("Call-ID", "unreachable@box"), ("CSeq", "1 OPTIONS")],
    )  # fmt: skip
    pending = endpoint.start_request(request, Peer("tcp", "127.0.0.1", closed_port))
    answer = await asyncio.wait_for(pending.response(), 5)
    assert answer.status == 503 and pending.failure == "transport"
    assert endpoint.layer.client_count == 0


async def test_outgoing_tls_verifies_and_reuses(tls_uas: tuple[SipEndpoint, TestUas, Path]) -> None:
    """Our endpoint as a TLS client (e.g. toward a trunk): certificate checked, one
    connection for several requests."""
    callee, tu, cert = tls_uas
    _, port = callee.address("tls") or ("", 0)
    trusted = ssl.create_default_context(cafile=str(cert))
    caller = SipEndpoint(
        EndpointConfig(
            udp_port=None,
            tcp_port=None,
            tls_port=0,
            tls_context=callee.config.tls_context,
            transport=TransportOptions(tls_client_context=trusted),
        )
    )
    await caller.start()
    try:
        for i in range(3):
            request = Request(
                "OPTIONS",
                f"sip:ping@127.0.0.1:{port};transport=tls",
                [("From", "<sip:box@127.0.0.1>;tag=t1"), ("To", "<sip:ping@127.0.0.1>"),
                 ("Call-ID", f"tls-out-{i}@box"), ("CSeq", "1 OPTIONS")],
            )  # fmt: skip
            answer = await asyncio.wait_for(
                caller.request(request, Peer("tls", "127.0.0.1", port)), 5
            )
            assert answer.status == 200
        assert caller.transport.stats.connections_opened == 1
        assert tu.counters.requests == {"OPTIONS": 3}
    finally:
        await caller.close()


async def test_outgoing_tls_to_an_untrusted_certificate_fails(
    tls_uas: tuple[SipEndpoint, TestUas, Path],
) -> None:
    callee, _, _ = tls_uas
    _, port = callee.address("tls") or ("", 0)
    caller = SipEndpoint(EndpointConfig(udp_port=0, tcp_port=None))  # default: system CAs
    await caller.start()
    try:
        request = Request(
            "OPTIONS",
            f"sip:ping@127.0.0.1:{port};transport=tls",
            [("From", "<sip:box@127.0.0.1>;tag=t2"), ("To", "<sip:ping@127.0.0.1>"),
             ("Call-ID", "tls-untrusted@box"), ("CSeq", "1 OPTIONS")],
        )  # fmt: skip
        handle = caller.start_request(request, Peer("tls", "127.0.0.1", port))
        answer = await asyncio.wait_for(handle.response(), 10)
        assert answer.status == 503 and handle.failure == "transport"
    finally:
        await caller.close()
