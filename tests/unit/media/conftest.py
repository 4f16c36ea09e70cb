"""Fixtures of the relay tests: every async test runs under asyncio and under uvloop (the
loop the box runs), and talks to the relay through real UDP sockets on 127.0.0.1.

Port ranges sit below Linux's ephemeral range (32768+), so the test peers (bound to
port 0) cannot take the relay's ports.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest
import uvloop

from firmware.media.ports import PortAllocator

HOST = "127.0.0.1"
RTP = b"\x80\x08\x00\x01" + b"\x00" * 8 + b"\xd5" * 160  # PCMA, 20 ms
RTCP_RR = b"\x81\xc9\x00\x07" + b"\x11" * 28  # receiver report, one block


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Any]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


class Peer(asyncio.DatagramProtocol):
    """A phone's media socket: sends datagrams, queues what it receives."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    @property
    def addr(self) -> tuple[str, int]:
        return HOST, self.port

    def send(self, data: bytes, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(data, (HOST, port))

    async def recv(self, timeout: float = 2.0) -> tuple[bytes, tuple[str, int]]:
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def silent(self, wait: float = 0.05) -> bool:
        """True if nothing arrives within ``wait`` seconds."""
        await asyncio.sleep(wait)
        return self.queue.empty()


PeerFactory = Callable[[], Awaitable[Peer]]


@pytest.fixture
async def peer() -> AsyncIterator[PeerFactory]:
    made: list[Peer] = []

    async def make() -> Peer:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(Peer, local_addr=(HOST, 0))
        made.append(protocol)
        return protocol

    yield make
    for p in made:
        if p.transport is not None:
            p.transport.close()


@pytest.fixture
def allocator() -> PortAllocator:
    return PortAllocator(21000, 21999)
