"""SIP transport/endpoint interop fixtures: our endpoint with small test TUs, and SIPp.

SIPp (Debian ``sip-tester``) is the independent peer. Every SIPp run is bounded
(``-m`` calls, ``-timeout``) and every wait in the tests has a deadline, so a broken
stack fails a test instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import random
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from firmware.sip import Request, Response
from firmware.sip.endpoint import BaseTransactionUser, EndpointConfig, SipEndpoint
from firmware.sip.hop import response_peer
from firmware.sip.peer import Peer
from firmware.sip.txn_events import TxnId

SIPP = shutil.which("sipp")
HERE = Path(__file__).resolve().parent
TORTURE_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "sip-torture"
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, LoopFactory]:
    """Every test here runs on the stdlib loop and on uvloop (what the daemon uses):
    the two differ where it matters to a transport (uvloop's TLS transport is not an
    asyncio.Transport, for one). SIPp modules pick uvloop only."""
    factories: dict[str, LoopFactory] = {"asyncio": asyncio.new_event_loop}
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        factories["uvloop"] = uvloop.new_event_loop
    return factories


#: for the slow SIPp modules: the production loop only (falls back when uvloop is absent)
production_loop = pytest.mark.asyncio(
    loop_factories=["uvloop" if importlib.util.find_spec("uvloop") else "asyncio"]
)

needs_sipp = pytest.mark.skipif(
    SIPP is None,
    reason="SIPp missing: apt-get install -y -o DPkg::Lock::Timeout=600 sip-tester",
)


def free_port(kind: int = socket.SOCK_DGRAM, span: int = 1) -> int:
    """A port (and the ``span - 1`` after it) free on 127.0.0.1 for UDP and TCP."""
    for _ in range(200):
        port = random.randint(20_000, 60_000)
        try:
            for p in range(port, port + span):
                for sock_kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    with socket.socket(socket.AF_INET, sock_kind) as s:
                        s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


class UdpProbe(asyncio.DatagramProtocol):
    """A bare UDP peer that works on every loop (uvloop has no ``sock_sendto``)."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait(data)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, data: bytes, address: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, address)

    async def recv(self, timeout: float) -> bytes:
        return await asyncio.wait_for(self.received.get(), timeout)


@contextlib.asynccontextmanager
async def udp_probe() -> AsyncIterator[UdpProbe]:
    loop = asyncio.get_running_loop()
    transport, probe = await loop.create_datagram_endpoint(UdpProbe, local_addr=("127.0.0.1", 0))
    try:
        yield probe
    finally:
        transport.close()


@dataclass
class SippResult:
    returncode: int
    stdout: str
    errors: str

    def explain(self) -> str:
        return f"sipp rc={self.returncode}\n--- stdout (tail)\n{self.stdout[-3000:]}\n--- errors\n{self.errors[-3000:]}"


async def run_sipp(args: list[str], cwd: Path, timeout: float = 60.0) -> SippResult:
    """Run SIPp to completion (it is bounded by -m and -timeout; this bounds it again)."""
    assert SIPP is not None
    media = free_port(span=4)
    cmd = [SIPP, *args, "-i", "127.0.0.1", "-mp", str(media), "-nostdin", "-trace_err"]
    if "-timeout" not in args:
        cmd += ["-timeout", "20s"]
    if "-p" not in args:
        cmd += ["-p", str(free_port())]
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
    errors = "".join(p.read_text(errors="replace") for p in cwd.glob("*_errors.log"))
    return SippResult(
        proc.returncode if proc.returncode is not None else -1, out.decode(errors="replace"), errors
    )


@dataclass
class Retransmit:
    """Our 2xx to an INVITE, resent T1, 2T1, ... T2 until its ACK (RFC 3261 §13.3.1.4)."""

    data: Response
    peer: Peer
    handle: asyncio.TimerHandle | None = None
    interval: float = 0.5
    elapsed: float = 0.0


@dataclass
class Counters:
    requests: dict[str, int] = field(default_factory=dict)
    acks: int = 0
    cancels: int = 0
    retransmitted_2xx: int = 0


class TestUas(BaseTransactionUser):
    """A minimal UAS on the endpoint: OPTIONS 200; INVITE 100, 180, 200 (user "ring":
    100, 180 and wait for CANCEL); BYE 200. It retransmits its 2xx until the ACK,
    which is the dialog layer's job that this stack leaves to the TU."""

    __test__ = False  # not a pytest class

    def __init__(self, endpoint: SipEndpoint) -> None:
        super().__init__(endpoint)
        self.counters = Counters()
        self.pending_2xx: dict[str, Retransmit] = {}
        self.ringing: dict[TxnId, str] = {}

    def on_request(self, txn: TxnId, request: Request, peer: Peer) -> None:
        method = request.method
        self.counters.requests[method] = self.counters.requests.get(method, 0) + 1
        ep = self.endpoint
        if method == "OPTIONS":
            ep.reply(txn, 200, headers=[("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")])
        elif method == "INVITE":
            tag = secrets.token_hex(4)
            ep.respond(txn, request.make_response(100))
            ep.respond(txn, request.make_response(180, to_tag=tag))
            if getattr(request.uri, "user", None) == "ring":
                self.ringing[txn] = tag
                return
            host, port = ep.address(peer.transport) or ep.address("udp") or ("127.0.0.1", 0)
            ok = request.make_response(
                200,
                to_tag=tag,
                headers=[
                    ("Contact", f"<sip:uas@{host}:{port};transport={peer.transport}>"),
                    ("Content-Type", "application/sdp"),
                ],
                body=SDP,
            )
            ep.respond(txn, ok)
            if peer.transport == "udp":
                self._retransmit_later(
                    request.call_id, Retransmit(ok, response_peer(request.top_via, peer))
                )
        elif method == "BYE":
            self._stop(request.call_id)
            ep.reply(txn, 200)
        else:
            ep.reply(txn, 501)

    def on_ack(self, request: Request, peer: Peer) -> None:
        self.counters.acks += 1
        self._stop(request.call_id)

    def on_cancel(self, invite_txn: TxnId, cancel: Request, peer: Peer) -> None:
        self.counters.cancels += 1
        self.ringing.pop(invite_txn, None)
        self.endpoint.reply(invite_txn, 487)

    def _retransmit_later(self, call_id: str, state: Retransmit) -> None:
        loop = asyncio.get_running_loop()
        self.pending_2xx[call_id] = state
        state.handle = loop.call_later(state.interval, self._retransmit, call_id)

    def _retransmit(self, call_id: str) -> None:
        state = self.pending_2xx.get(call_id)
        if state is None:
            return
        state.elapsed += state.interval
        if state.elapsed >= 32:  # 64*T1 without ACK: give up (a real UAS sends BYE)
            self.pending_2xx.pop(call_id, None)
            return
        self.counters.retransmitted_2xx += 1
        self.endpoint.send_stateless(state.data, state.peer)
        state.interval = min(2 * state.interval, 4.0)
        state.handle = asyncio.get_running_loop().call_later(
            state.interval, self._retransmit, call_id
        )

    def _stop(self, call_id: str) -> None:
        state = self.pending_2xx.pop(call_id, None)
        if state is not None and state.handle is not None:
            state.handle.cancel()

    def close(self) -> None:
        for call_id in list(self.pending_2xx):
            self._stop(call_id)


class TestUac(BaseTransactionUser):
    """Our endpoint as a caller: places INVITE, ACK, BYE; re-sends the ACK when the
    2xx comes again (the ACK was lost), which RFC 6026 leaves to the TU."""

    __test__ = False

    def __init__(self, endpoint: SipEndpoint) -> None:
        super().__init__(endpoint)
        self.acks: dict[str, tuple[Request, Peer]] = {}
        self.resent_acks = 0

    def on_response(self, txn: TxnId | None, response: Response, peer: Peer) -> None:
        if 200 <= response.status < 300 and response.cseq.method == "INVITE":
            ack = self.acks.get(response.call_id)
            if ack is not None:
                self.resent_acks += 1
                self.endpoint.send_stateless(*ack)

    async def call(self, target: Peer, user: str = "service") -> tuple[int, int]:
        """One call: INVITE, ACK, BYE. Returns the final statuses of INVITE and BYE."""
        ep = self.endpoint
        host, port = ep.address(target.transport) or ("127.0.0.1", 0)
        uri = f"sip:{user}@{target.host}:{target.port}"
        call_id = f"{secrets.token_hex(8)}@127.0.0.1"
        from_ = f"<sip:uac@{host}:{port}>;tag={secrets.token_hex(4)}"
        invite = Request(
            "INVITE",
            uri,
            [
                ("From", from_),
                ("To", f"<{uri}>"),
                ("Call-ID", call_id),
                ("CSeq", "1 INVITE"),
                ("Contact", f"<sip:uac@{host}:{port};transport={target.transport}>"),
                ("Content-Type", "application/sdp"),
            ],
            SDP,
        )
        answer = await ep.request(invite, target)
        if answer.status >= 300:
            return answer.status, 0
        contact = answer.contact
        remote = str(contact[0].uri) if contact != "*" and contact else uri
        to = answer.headers.get("To") or ""
        dialog = [("From", from_), ("To", to), ("Call-ID", call_id)]
        ack = Request("ACK", remote, [*dialog, ("CSeq", "1 ACK")])
        self.acks[call_id] = (ack, target)
        ep.send_stateless(ack, target)
        bye = await ep.request(Request("BYE", remote, [*dialog, ("CSeq", "2 BYE")]), target)
        return answer.status, bye.status


@contextlib.asynccontextmanager
async def running_uas(
    config: EndpointConfig | None = None,
) -> AsyncIterator[tuple[SipEndpoint, TestUas]]:
    endpoint = SipEndpoint(config or EndpointConfig(udp_port=0, tcp_port=0))
    tu = TestUas(endpoint)
    endpoint.tu = tu
    await endpoint.start()
    try:
        yield endpoint, tu
    finally:
        tu.close()
        await endpoint.close()


@pytest.fixture
async def uas() -> AsyncIterator[tuple[SipEndpoint, TestUas]]:
    async with running_uas() as pair:
        yield pair
