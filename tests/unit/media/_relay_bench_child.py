"""Child process of the relay benchmark (see test_relay_bench.py).

Runs the relay sessions (or, for comparison, a bare relay: one DatagramProtocol per
port, a plain ``sendto`` to a fixed address) on its own event loop, so the parent can
drive traffic and read this process's CPU time alone. Usage:
``_relay_bench_child.py asyncio|uvloop relay|bare '[[port_a, port_b], ...]'``.
Prints the relay ports (JSON) once ready, then answers stdin lines: ``cpu`` prints CPU
seconds and packets forwarded so far; ``quit`` ends.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

from firmware.media.ports import PortAllocator
from firmware.media.relay import Leg, RelaySession

HOST = "127.0.0.1"


class Bare(asyncio.DatagramProtocol):
    """The baseline: forward everything to one address out of the other socket."""

    def __init__(self) -> None:
        self.other: Bare = self
        self.dest: tuple[str, int] = (HOST, 0)
        self.transport: Any = None
        self.count = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        other = self.other
        other.transport.sendto(data, other.dest)
        self.count += 1


async def main(kind: str, remotes: list[list[int]]) -> None:
    loop = asyncio.get_running_loop()
    ports: list[list[int]] = []
    sessions: list[RelaySession] = []
    bares: list[Bare] = []
    if kind == "relay":
        allocator = PortAllocator(22000, 22999)
        for port_a, port_b in remotes:
            relay = await RelaySession.open(HOST, allocator)
            relay.set_remote(Leg.A, HOST, port_a)
            relay.set_remote(Leg.B, HOST, port_b)
            sessions.append(relay)
            ports.append(list(relay.ports))
    else:
        for port_a, port_b in remotes:
            pair = []
            for _ in range(2):
                _, protocol = await loop.create_datagram_endpoint(Bare, local_addr=(HOST, 0))
                pair.append(protocol)
            pair[0].other, pair[1].other = pair[1], pair[0]
            pair[0].dest, pair[1].dest = (HOST, port_a), (HOST, port_b)
            bares += pair
            ports.append([p.transport.get_extra_info("sockname")[1] for p in pair])

    def forwarded() -> int:
        if sessions:
            return sum(
                s.stats().rtp_a_to_b.packets + s.stats().rtp_b_to_a.packets for s in sessions
            )
        return sum(b.count for b in bares)

    done = loop.create_future()
    buffer = b""

    def on_stdin() -> None:
        nonlocal buffer
        buffer += os.read(0, 4096)
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line == b"cpu":
                print(json.dumps([time.process_time(), forwarded()]), flush=True)
            elif line in (b"quit", b"") and not done.done():
                done.set_result(None)

    loop.add_reader(0, on_stdin)
    print(json.dumps(ports), flush=True)
    await done
    loop.remove_reader(0)
    for relay in sessions:
        relay.close()


if __name__ == "__main__":
    loop_name, kind, remotes = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    if loop_name == "uvloop":
        import uvloop

        uvloop.run(main(kind, remotes))
    else:
        asyncio.run(main(kind, remotes))
