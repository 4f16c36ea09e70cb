"""The box's media anchor in a process of its own, for bench/media_relay.py.

Usage: ``relay_server.py relay|transcode|pool FIRST_PORT LAST_PORT [WORKERS]`` (run with
the repository root on sys.path). Reads one JSON line from stdin: ``[[phone_a_port,
phone_b_port], ...]`` (phones on 127.0.0.1); opens one session per pair under uvloop
(``relay``: a `RelaySession`, the pass-through path of an ordinary call; ``transcode``: a
`MediaBridge` with leg A PCMA and leg B PCMU; ``pool``: a `RemoteRelaySession` from a
`RelayWorkerPool` of WORKERS processes, this process playing the SIP service), points
each leg at its phone and prints ``{"ports": [[port_a, port_b], ...], "pids": [...]}`` as
one JSON line (``pids``: this process and its relay workers, whose CPU the parent reads
from /proc/PID/stat). Then it relays until stdin says ``quit`` (or closes), closes every
session and prints the packets forwarded as a JSON line.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import sys

import uvloop

from firmware.media.bridge import MediaBridge
from firmware.media.ports import PortAllocator
from firmware.media.relay import Leg, RelaySession
from firmware.media.relay_workers import RelayWorkerPool, RemoteRelaySession

HOST = "127.0.0.1"
BUSY_RETRIES = 200


Session = RelaySession | MediaBridge | RemoteRelaySession


async def _open(mode: str, allocator: PortAllocator, pool: RelayWorkerPool | None) -> Session:
    """One session; pairs held by other processes on this shared host are skipped
    (the allocator moves them to the back of its queue)."""
    for _ in range(BUSY_RETRIES):
        try:
            if pool is not None:
                return await pool.open(HOST)
            if mode == "relay":
                return await RelaySession.open(HOST, allocator)
            bridge = await MediaBridge.open(HOST, allocator)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            continue
        bridge.configure(Leg.A, "PCMA")
        bridge.configure(Leg.B, "PCMU")
        return bridge
    raise OSError(errno.EADDRINUSE, "no free media port pair in the bench's range")


async def main(mode: str, first: int, last: int, workers: int) -> None:
    loop = asyncio.get_running_loop()
    allocator = PortAllocator(first, last)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    phones = json.loads(await reader.readline())
    sessions: list[Session] = []
    pool = RelayWorkerPool(first, last, workers) if mode == "pool" else None
    try:
        if pool is not None:
            await pool.start()
        for port_a, port_b in phones:
            session = await _open(mode, allocator, pool)
            session.set_remote(Leg.A, HOST, port_a)
            session.set_remote(Leg.B, HOST, port_b)
            sessions.append(session)
        pids = [os.getpid(), *(p for p in (pool.pids() if pool else []) if p is not None)]
        print(json.dumps({"ports": [list(s.ports) for s in sessions], "pids": pids}), flush=True)
        while True:
            line = await reader.readline()
            if not line or line.strip() == b"quit":
                break
    finally:
        forwarded = 0
        for s in sessions:
            if not isinstance(s, RemoteRelaySession):
                forwarded += _forwarded(s)
            s.close()
        for s in sessions:
            await s.wait_closed()
            if isinstance(s, RemoteRelaySession):  # its final counters came with the close
                forwarded += _forwarded(s)
        if pool is not None:
            await pool.close()
        print(json.dumps({"forwarded": forwarded}), flush=True)


def _forwarded(session: Session) -> int:
    stats = session.stats()
    return stats.rtp_a_to_b.packets + stats.rtp_b_to_a.packets


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5) or sys.argv[1] not in ("relay", "transcode", "pool"):
        sys.exit("usage: relay_server.py relay|transcode|pool FIRST_PORT LAST_PORT [WORKERS]")
    workers = int(sys.argv[4]) if len(sys.argv) == 5 else 1
    uvloop.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), workers))
