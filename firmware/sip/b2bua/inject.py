"""Audio the box itself plays into a call: feature-code beeps, music on hold.

The injector stands in for one party of the call's RTP relay: the relay is told that
party now sends from the injector's socket (``set_remote``), and the injector sends
RTP to the relay port of that party's side, paced at 20 ms. The relay forwards it to
the other party exactly as it would the phone's audio, so latching, counters and the
CDR's media figures work unchanged, and taking the phone's address back (resume) is
one ``set_remote``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import numpy as np

from firmware.media.codecs.g711 import alaw_encode, ulaw_encode
from firmware.media.player import Source
from firmware.media.relay import Leg as Side
from firmware.media.rtp import build_rtp

from ..ids import random_bits
from .call import Anchor

log = logging.getLogger(__name__)

FRAME_SECONDS = 0.02
ENCODERS: dict[int, Callable[[np.ndarray], bytes]] = {8: alaw_encode, 0: ulaw_encode}


class RelayInjector:
    """Plays ``source`` into ``relay`` as the party on ``side`` (G.711 ``pt``)."""

    def __init__(self, relay: Anchor, side: Side, address: str, pt: int) -> None:
        if pt not in ENCODERS:
            raise ValueError(f"the box plays G.711 only, not payload type {pt}")
        self.relay, self.side, self.address, self.pt = relay, side, address, pt
        self._transport: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self.frames = 0

    async def play(self, source: Source) -> None:
        """Start playing (returns at once); `done` waits for a source that ends."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=(self.address, 0)
        )
        self._transport = transport
        host, port = transport.get_extra_info("sockname")[:2]
        self.relay.set_remote(self.side, host, port)
        self._task = asyncio.create_task(self._run(source))

    async def done(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def _run(self, source: Source) -> None:
        transport = self._transport
        assert transport is not None
        dest = (self.address, self.relay.port(self.side))
        encode = ENCODERS[self.pt]
        ssrc, seq, ts = random_bits(32), random_bits(16), random_bits(32)
        start = time.monotonic()
        try:
            while True:
                frame = source.read()
                if frame is None:
                    return
                payload = encode(frame)
                marker = self.frames == 0
                transport.sendto(build_rtp(self.pt, seq, ts, ssrc, payload, marker), dest)
                seq, ts, self.frames = seq + 1, ts + len(frame), self.frames + 1
                delay = start + self.frames * FRAME_SECONDS - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
        finally:
            transport.close()
