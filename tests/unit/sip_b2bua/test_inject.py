"""The box's own audio in a call's relay (music on hold, feature-code beeps): the
injector takes a party's place, and giving the party its address back resumes it."""

from __future__ import annotations

import asyncio
import socket

import numpy as np

from firmware.media.codecs.g711 import alaw_decode
from firmware.media.player import ToneSource
from firmware.media.ports import PortAllocator
from firmware.media.relay import Leg, RelaySession
from firmware.media.rtp import build_rtp, parse_rtp
from firmware.sip.b2bua.inject import RelayInjector


def udp() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


def drain(s: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(s.recv(2048))
        except BlockingIOError:
            return out


async def test_injector_replaces_a_party_and_the_party_comes_back() -> None:
    relay = await RelaySession.open("127.0.0.1", PortAllocator(42000, 42100))
    a, b = udp(), udp()
    try:
        relay.set_remote(Leg.A, *a.getsockname())
        relay.set_remote(Leg.B, *b.getsockname())

        def from_b(n: int, ssrc: int = 7) -> None:
            for i in range(n):
                packet = build_rtp(8, i, i * 160, ssrc, b"\xd5" * 160)
                b.sendto(packet, ("127.0.0.1", relay.port(Leg.B)))

        from_b(5)
        await asyncio.sleep(0.1)
        assert len(drain(a)) == 5
        injector = RelayInjector(relay, Leg.B, "127.0.0.1", 8)
        await injector.play(ToneSource("440"))
        await asyncio.sleep(0.5)
        from_b(5)  # the holder's own packets are not heard while the box plays
        await asyncio.sleep(0.1)
        heard = [parse_rtp(p) for p in drain(a)]
        assert len(heard) >= 15 and all(p.ssrc != 7 for p in heard)
        audio = np.concatenate([alaw_decode(p.payload) for p in heard])
        spectrum = np.abs(np.fft.rfft(audio[:4000]))
        assert abs(np.argmax(spectrum) * 8000 / 4000 - 440) < 4
        injector.stop()
        relay.set_remote(Leg.B, *b.getsockname())  # resume: the party's address again
        await asyncio.sleep(0.05)
        drain(a)
        from_b(5, ssrc=9)
        await asyncio.sleep(0.1)
        assert [parse_rtp(p).ssrc for p in drain(a)] == [9] * 5
    finally:
        relay.close()
        a.close()
        b.close()
