"""The box's media anchor in a process of its own, for bench/media_relay.py.

Usage: ``relay_server.py relay|transcode FIRST_PORT LAST_PORT`` (run with the repository
root on sys.path). Reads one JSON line from stdin: ``[[phone_a_port, phone_b_port], ...]``
(phones on 127.0.0.1); opens one session per pair under uvloop (``relay``: a
`RelaySession`, the pass-through path of an ordinary call; ``transcode``: a
`MediaBridge` with leg A PCMA and leg B PCMU), points each leg at its phone and prints
``[[port_a, port_b], ...]`` as one JSON line. Then it relays until stdin says ``quit`` (or
closes), closes every session and prints the packets forwarded as a JSON line. Its CPU
is the parent's to read (/proc/PID/stat), so that it counts this process alone.
"""

from __future__ import annotations

import asyncio
import errno
import json
import sys

import uvloop

from firmware.media.bridge import MediaBridge
from firmware.media.ports import PortAllocator
from firmware.media.relay import Leg, RelaySession

HOST = "127.0.0.1"
BUSY_RETRIES = 200


async def _open(mode: str, allocator: PortAllocator) -> RelaySession | MediaBridge:
    """One session; pairs held by other processes on this shared host are skipped
    (the allocator moves them to the back of its queue)."""
    for _ in range(BUSY_RETRIES):
        try:
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


async def main(mode: str, first: int, last: int) -> None:
    loop = asyncio.get_running_loop()
    allocator = PortAllocator(first, last)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    phones = json.loads(await reader.readline())
    sessions: list[RelaySession | MediaBridge] = []
    try:
        for port_a, port_b in phones:
            session = await _open(mode, allocator)
            session.set_remote(Leg.A, HOST, port_a)
            session.set_remote(Leg.B, HOST, port_b)
            sessions.append(session)
        print(json.dumps([list(s.ports) for s in sessions]), flush=True)
        while True:
            line = await reader.readline()
            if not line or line.strip() == b"quit":
                break
    finally:
        forwarded = 0
        for s in sessions:
            stats = s.stats()
            forwarded += stats.rtp_a_to_b.packets + stats.rtp_b_to_a.packets
            s.close()
        for s in sessions:
            await s.wait_closed()
        print(json.dumps({"forwarded": forwarded}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("relay", "transcode"):
        sys.exit("usage: relay_server.py relay|transcode FIRST_PORT LAST_PORT")
    uvloop.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
