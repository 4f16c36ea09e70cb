"""SIP over UDP, TCP and TLS (RFC 3261 §18, RFC 3581): the asyncio side of the stack.

Bytes in: parse, stamp the top Via of requests with ``received``/``rport`` (RFC
3581), hand the message and its source `Peer` to ``on_message``. Bytes out:
`send` to a `Peer`, over the connection it names when that is still open, else
over any open connection to that address, else over a new one (RFC 3261 §18.2.2
and connection reuse: a phone that registered over TCP is reached over the
connection it opened). UDP responses and requests leave from the listening socket
so that NATs and ``rport`` see one address.

Hostile input never propagates: a malformed request is answered with
`error_response` to the address it came from (never to its Via, which may be
forged) or dropped when it cannot be answered; a malformed message on a stream
also closes the connection, whose framing can no longer be trusted. Connections
are capped in number, buffered bytes and idle time. Everything refused is counted
in `stats`, not logged per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from firmware.sip.errors import SipParseError
from firmware.sip.framing import KEEPALIVE, StreamFramer
from firmware.sip.hop import stamp_via
from firmware.sip.message import Request, Response, error_response, parse_message
from firmware.sip.peer import Peer, Transport

log = logging.getLogger(__name__)

OnMessage = Callable[[Request | Response, Peer], None]
OnSendError = Callable[[int | None, Peer], None]
_UDP_PEERS_KEPT = 4096
_UDP_BUFFER = 4 << 20  # absorbs bursts at 1,000 calls/s; the kernel may cap it
_MAX_QUEUED = 256  # messages waiting for one outgoing connection to open
_SO_MEMINFO = getattr(socket, "SO_MEMINFO", 55)  # Linux: u32 rmem_alloc, rcvbuf, ...
_MEMINFO_SIZE = 9 * 4


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """Limits of the stream side. Timeouts in seconds."""

    max_connections: int = 1024
    idle_timeout: float = 900.0  # no byte in either direction for this long: close
    partial_timeout: float = 30.0  # half a message sitting in the buffer this long: close
    connect_timeout: float = 5.0
    max_write_buffer: int = 1 << 20  # a peer that does not read is cut off
    tls_client_context: ssl.SSLContext | None = None  # outgoing TLS; default verifies


@dataclass(slots=True)
class TransportStats:
    received: int = 0  # datagrams and framed stream messages
    sent: int = 0
    malformed: int = 0  # messages the parser refused
    answered_malformed: int = 0  # ... of which answered with 400/505/413
    dropped: int = 0  # refused input that could not be answered, or TU callback failures
    keepalives: int = 0  # CRLFCRLF pings answered (streams) or ignored (UDP)
    connections_accepted: int = 0
    connections_opened: int = 0  # outgoing
    connections_refused: int = 0  # over max_connections
    connections_closed_idle: int = 0
    connections_closed_error: int = 0  # framing error, overflowing write buffer
    send_errors: int = 0


def _client_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.owner._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.owner.stats.send_errors += 1  # ICMP unreachable for an earlier datagram


class _Stream(asyncio.Protocol):
    """One TCP or TLS connection: frames, parses and answers keep-alives."""

    def __init__(self, owner: SipTransport, kind: Transport, outgoing: bool) -> None:
        self.owner = owner
        self.kind = kind
        self.outgoing = outgoing
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.peer = Peer(kind, "", 0)
        self.keys: list[tuple[str, str, int]] = []
        self.last_active = 0.0
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # duck-typed: uvloop's TLS transport is not an asyncio.Transport subclass
        stream = cast(asyncio.Transport, transport)
        self.transport = stream
        self.owner._register(self, stream)

    def data_received(self, data: bytes) -> None:
        owner = self.owner
        self.last_active = owner._now()
        try:
            items = self.framer.feed(data)
        except SipParseError:
            owner.stats.malformed += 1
            self.abort_for_error()
            return
        for item in items:
            if self.closing:
                return
            if item is KEEPALIVE:
                owner.stats.keepalives += 1
                self.write(b"\r\n")
                continue
            assert isinstance(item, bytes)
            owner.stats.received += 1
            try:
                message = parse_message(item, stream=True)
            except SipParseError as exc:
                response = owner._refused(exc)
                if response is not None:
                    self.write(response)
                self.abort_for_error()
                return
            owner._deliver(message, self.peer)

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or self.closing:
            return
        transport.write(data)
        self.last_active = self.owner._now()
        if transport.get_write_buffer_size() > self.owner.options.max_write_buffer:
            self.owner.stats.connections_closed_error += 1
            self.abort()  # the peer does not read: flushing would wait forever

    def abort_for_error(self) -> None:
        self.owner.stats.connections_closed_error += 1
        self.close()

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        """Close after flushing what is queued (an error response, say)."""
        if not self.closing:
            self.closing = True
            if self.transport is not None:
                self.transport.close()

    def eof_received(self) -> bool | None:
        return False  # half-closed: we close too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.owner._unregister(self)


@dataclass
class _Pending:
    """Messages waiting for an outgoing connection to open."""

    queue: list[tuple[bytes, int | None]] = field(default_factory=list)


class SipTransport:
    """The UDP/TCP/TLS listeners and connections of one SIP endpoint.

    ``on_message(message, peer)`` gets every parsed message; ``on_send_error(context,
    peer)`` is called (soon, never from inside `send`) when a message given to
    `send` with that ``context`` could not be delivered.
    """

    def __init__(
        self,
        on_message: OnMessage,
        on_send_error: OnSendError | None = None,
        options: TransportOptions | None = None,
    ) -> None:
        self.options = options or TransportOptions()
        self.stats = TransportStats()
        self._on_message = on_message
        self._on_send_error = on_send_error
        self._loop: asyncio.AbstractEventLoop | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._servers: list[asyncio.Server] = []
        self._addresses: dict[Transport, tuple[str, int]] = {}
        self._conns: dict[int, _Stream] = {}
        self._by_addr: dict[tuple[str, str, int], _Stream] = {}
        self._pending: dict[tuple[str, str, int], _Pending] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_conn = 0
        # UDP sources as Peers, made once per address (a box hears the same few hundred
        # phones and trunks); forgotten wholesale when a flood of sources fills it
        self._udp_peers: dict[tuple[str, int], Peer] = {}
        self._tls_client: ssl.SSLContext | None = self.options.tls_client_context

    # ------------------------------------------------------------------ setup
    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _start(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._spawn(self._reaper())
        return self._loop

    async def listen_udp(self, host: str, port: int) -> tuple[str, int]:
        """Bind the UDP socket (port 0: any); returns the bound (host, port)."""
        loop = self._start()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(self), local_addr=(host, port)
        )
        sock = transport.get_extra_info("socket")
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _UDP_BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _UDP_BUFFER)
        self._udp = transport
        return self._bound("udp", transport.get_extra_info("sockname"))

    async def listen_tcp(self, host: str, port: int) -> tuple[str, int]:
        return await self._listen_stream("tcp", host, port, None)

    async def listen_tls(self, host: str, port: int, context: ssl.SSLContext) -> tuple[str, int]:
        """TLS listener; ``context`` from `firmware.system.certs.server_context`."""
        return await self._listen_stream("tls", host, port, context)

    async def _listen_stream(
        self, kind: Transport, host: str, port: int, context: ssl.SSLContext | None
    ) -> tuple[str, int]:
        loop = self._start()
        server = await loop.create_server(
            lambda: _Stream(self, kind, outgoing=False),
            host,
            port,
            ssl=context,
            backlog=512,
            reuse_address=True,
            ssl_handshake_timeout=self.options.connect_timeout if context else None,
        )
        self._servers.append(server)
        return self._bound(kind, server.sockets[0].getsockname())

    def _bound(self, kind: Transport, sockname: Any) -> tuple[str, int]:
        address = (str(sockname[0]), int(sockname[1]))
        self._addresses[kind] = address
        return address

    def address(self, kind: Transport) -> tuple[str, int] | None:
        """The bound (host, port) of a listener, None when not listening on ``kind``."""
        return self._addresses.get(kind)

    @property
    def connection_count(self) -> int:
        return len(self._conns)

    def receive_backlog(self) -> tuple[int, int] | None:
        """(bytes queued in the kernel for the UDP listener, its receive buffer size):
        how far behind reading the box is. None when not listening on UDP or the
        kernel cannot tell (SO_MEMINFO is Linux 4.6+)."""
        udp = self._udp
        sock = None if udp is None else udp.get_extra_info("socket")
        if sock is None:
            return None
        try:
            info = sock.getsockopt(socket.SOL_SOCKET, _SO_MEMINFO, _MEMINFO_SIZE)
        except OSError:
            return None
        rmem_alloc, rcvbuf = struct.unpack_from("=II", info)
        return rmem_alloc, rcvbuf

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for conn in list(self._conns.values()):
            conn.abort()
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        if self._udp is not None:
            self._udp.close()
        self._servers.clear()
        self._udp = None
        self._loop = None

    # --------------------------------------------------------------- receive
    def _refused(self, exc: SipParseError) -> bytes | None:
        """Count a malformed message; the bytes of the answer if it deserves one."""
        self.stats.malformed += 1
        if exc.internal:
            log.warning("SIP parser safety net caught: %s", exc.reason)
        response = error_response(exc)
        if response is None:
            self.stats.dropped += 1
            return None
        self.stats.answered_malformed += 1
        return response.to_bytes()

    def _datagram(self, data: bytes, addr: Any) -> None:
        if len(data) <= 4 and not data.strip(b"\r\n"):
            self.stats.keepalives += 1  # RFC 5626 CRLF pings over UDP need no answer
            return
        self.stats.received += 1
        try:
            message = parse_message(data)
        except SipParseError as exc:
            answer = self._refused(exc)
            if answer is not None and self._udp is not None:
                self._udp.sendto(answer, addr)  # the source, not the (maybe forged) Via
                self.stats.sent += 1
            return
        peer = self._udp_peers.get(addr)
        if peer is None:
            if len(self._udp_peers) >= _UDP_PEERS_KEPT:
                self._udp_peers.clear()
            peer = self._udp_peers[addr] = Peer("udp", addr[0], addr[1])
        self._deliver(message, peer)

    def _deliver(self, message: Request | Response, peer: Peer) -> None:
        try:
            if isinstance(message, Request):
                stamp_via(message, peer)
            self._on_message(message, peer)
        except SipParseError:
            self.stats.dropped += 1
        except Exception:  # a TU bug must not take the listener down
            self.stats.dropped += 1
            log.exception("SIP message handler failed")

    # ------------------------------------------------------------------ send
    def send(self, data: bytes, peer: Peer, context: int | None = None) -> None:
        """Send one message; failures are reported to ``on_send_error`` with ``context``."""
        if peer.transport == "udp":
            udp = self._udp
            if udp is None or udp.is_closing():
                self._failed(context, peer)
                return
            udp.sendto(data, (peer.host, peer.port))
            self.stats.sent += 1
            return
        conn = self._conns.get(peer.connection) if peer.connection is not None else None
        if conn is None or conn.closing:
            conn = self._by_addr.get((peer.transport, peer.host, peer.port))
        if conn is not None and not conn.closing:
            conn.write(data)
            self.stats.sent += 1
            return
        self._connect_and_send(data, peer, context)

    def _failed(self, context: int | None, peer: Peer) -> None:
        self.stats.send_errors += 1
        if self._on_send_error is not None and self._loop is not None:
            self._loop.call_soon(self._on_send_error, context, peer)

    def _connect_and_send(self, data: bytes, peer: Peer, context: int | None) -> None:
        key = (peer.transport, peer.host, peer.port)
        pending = self._pending.get(key)
        if pending is not None:
            if len(pending.queue) < _MAX_QUEUED:
                pending.queue.append((data, context))
            else:
                self._failed(context, peer)
            return
        if (
            self._loop is None
            or len(self._conns) + len(self._pending) >= self.options.max_connections
        ):
            self.stats.connections_refused += 1
            self._failed(context, peer)
            return
        pending = self._pending[key] = _Pending([(data, context)])
        self._spawn(self._open(key, peer, pending))

    async def _open(self, key: tuple[str, str, int], peer: Peer, pending: _Pending) -> None:
        assert self._loop is not None
        tls = peer.transport == "tls"
        if tls and self._tls_client is None:
            self._tls_client = _client_context()
        conn: _Stream | None = None
        try:
            _, conn = await asyncio.wait_for(
                self._loop.create_connection(
                    lambda: _Stream(self, peer.transport, outgoing=True),
                    peer.host,
                    peer.port,
                    ssl=self._tls_client if tls else None,
                    server_hostname=peer.host if tls else None,
                ),
                self.options.connect_timeout,
            )
        except (OSError, TimeoutError, ssl.SSLError):
            conn = None  # refused, unreachable, too slow, or its certificate rejected
        finally:
            self._pending.pop(key, None)
        if conn is None or conn.closing:
            for _, context in pending.queue:
                self._failed(context, peer)
            return
        self.stats.connections_opened += 1
        if key not in conn.keys:  # reachable under the name it was asked for too
            conn.keys.append(key)
            self._by_addr[key] = conn
        for data, _ in pending.queue:
            conn.write(data)
            self.stats.sent += 1

    # ------------------------------------------------------------ connections
    def _register(self, conn: _Stream, transport: asyncio.Transport) -> None:
        if not conn.outgoing and len(self._conns) >= self.options.max_connections:
            self.stats.connections_refused += 1
            conn.closing = True
            transport.abort()
            return
        if not conn.outgoing:
            self.stats.connections_accepted += 1
        self._next_conn += 1
        peername = transport.get_extra_info("peername") or ("", 0)
        conn.peer = Peer(conn.kind, str(peername[0]), int(peername[1]), self._next_conn)
        conn.last_active = self._now()
        self._conns[self._next_conn] = conn
        key = (conn.kind, conn.peer.host, conn.peer.port)
        conn.keys.append(key)
        self._by_addr[key] = conn

    def _unregister(self, conn: _Stream) -> None:
        if conn.peer.connection is not None:
            self._conns.pop(conn.peer.connection, None)
        for key in conn.keys:
            if self._by_addr.get(key) is conn:
                del self._by_addr[key]

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reaper(self) -> None:
        """Close idle connections and ones stuck on half a message."""
        options = self.options
        tick = max(0.05, min(options.idle_timeout, options.partial_timeout) / 4)
        while True:
            await asyncio.sleep(tick)
            now = self._now()
            for conn in list(self._conns.values()):
                silent = now - conn.last_active
                if conn.closing:
                    if silent > options.partial_timeout:
                        conn.abort()  # a graceful close that never flushed
                elif silent > options.idle_timeout or (
                    conn.framer.buffered and silent > options.partial_timeout
                ):
                    self.stats.connections_closed_idle += 1
                    conn.close()
