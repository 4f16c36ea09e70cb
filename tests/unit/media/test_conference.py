"""Conference over real UDP sockets on 127.0.0.1: three parties with different codecs, each
hearing the other two (FFT), a listening supervisor heard by nobody, members leaving."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest

from firmware.media.codecs import alaw_encode, ulaw_encode
from firmware.media.codecs import create_codec as make_codec
from firmware.media.conference import Conference, ConferenceError
from firmware.media.mixer import Role
from firmware.media.ports import PortAllocator
from firmware.media.rtp import parse_rtp
from firmware.media.stream import RtpSender

from .conftest import HOST, Peer, PeerFactory

RATE = 8000


@pytest.fixture
def allocator() -> PortAllocator:
    return PortAllocator(23000, 23999)


def tone(freq: float, frames: int) -> np.ndarray:
    t = np.arange(160 * frames) / RATE
    return np.round(6000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def level_at(audio: np.ndarray, freq: float) -> float:
    """Amplitude spectrum magnitude near ``freq`` (dB, relative to full scale-ish)."""
    x = audio.astype(np.float64) * np.hanning(len(audio))
    spectrum = np.abs(np.fft.rfft(x)) / len(audio)
    k = round(freq * len(audio) / RATE)
    return float(20 * np.log10(spectrum[k - 3 : k + 4].max() + 1e-9))


async def talk(peers: list[tuple[Peer, int, str, float]], frames: int) -> None:
    """Each (peer, conference port, codec, Hz) sends a tone, one packet per 20 ms."""
    senders = [
        RtpSender(0 if codec == "PCMU" else 8, rng=random.Random(i))
        for i, (_, _, codec, _) in enumerate(peers)
    ]
    audio = [tone(freq, frames) for _, _, _, freq in peers]
    loop = asyncio.get_running_loop()
    start = loop.time()
    for n in range(frames):
        for (peer, port, codec, _), sender, samples in zip(peers, senders, audio, strict=True):
            chunk = samples[160 * n : 160 * (n + 1)]
            payload = ulaw_encode(chunk) if codec == "PCMU" else alaw_encode(chunk)
            peer.send(sender.send(payload, 160), port)
        await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - loop.time()))


def heard(peer: Peer, codec: str) -> np.ndarray:
    decoder = make_codec(codec)
    packets = []
    while not peer.queue.empty():
        packets.append(parse_rtp(peer.queue.get_nowait()[0]))
    assert packets and {p.payload_type for p in packets} == {0 if codec == "PCMU" else 8}
    return np.concatenate([decoder.decode(p.payload) for p in packets])


async def test_each_party_hears_the_other_two(peer: PeerFactory, allocator: PortAllocator) -> None:
    a, b, c, sup = await peer(), await peer(), await peer(), await peer()
    async with await Conference.open(HOST, allocator, rng=random.Random(5)) as conf:
        ports = {}
        for name, p, codec in (("a", a, "PCMA"), ("b", b, "PCMU"), ("c", c, "PCMA")):
            ports[name] = await conf.add(name, codec)
            conf.set_remote(name, HOST, p.port)
        ports["sup"] = await conf.add("sup", "PCMU", role=Role.LISTEN)
        conf.set_remote("sup", HOST, sup.port)
        await talk(
            [
                (a, ports["a"], "PCMA", 500.0),
                (b, ports["b"], "PCMU", 1200.0),
                (sup, ports["sup"], "PCMU", 2600.0),  # a listener talking: heard by nobody
            ],
            40,
        )
        await asyncio.sleep(0.1)
        at_a, at_b, at_c, at_sup = (
            heard(a, "PCMA"),
            heard(b, "PCMU"),
            heard(c, "PCMA"),
            heard(sup, "PCMU"),
        )
        # A hears B, not itself; B hears A, not itself; C hears both; nobody hears sup.
        assert level_at(at_a, 1200) - level_at(at_a, 500) > 30
        assert level_at(at_b, 500) - level_at(at_b, 1200) > 30
        assert abs(level_at(at_c, 500) - level_at(at_c, 1200)) < 3
        assert level_at(at_sup, 500) > level_at(at_sup, 2600) + 30
        for audio in (at_a, at_b, at_c):
            assert level_at(audio, 2600) < max(level_at(audio, 500), level_at(audio, 1200)) - 30
        quality = conf.quality("a")
        assert quality["packets_received"] == 40 and quality["packets_lost"] == 0
        assert quality["mos"] is not None and quality["codec"] == "PCMA"
        assert conf.source("b") == b.addr

        conf.remove("c")
        assert conf.members == ["a", "b", "sup"]
        with pytest.raises(ConferenceError):
            conf.remove("c")
        with pytest.raises(ConferenceError):
            await conf.add("a", "PCMA")
    assert allocator.in_use == 0
