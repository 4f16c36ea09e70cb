"""MediaBridge over real UDP sockets on 127.0.0.1 (asyncio and uvloop): pass-through,
transcoding, RFC 4733 <-> in-band DTMF, SRTP on one leg, latching, playback, CDR figures."""

from __future__ import annotations

import asyncio
import itertools
import random

import numpy as np
import pytest

from firmware.dsp.dtmf import DtmfReceiver, DtmfSender
from firmware.media.bridge import BridgeCore, BridgeError, LegMedia, MediaBridge
from firmware.media.codecs import alaw_decode, alaw_encode, ulaw_decode
from firmware.media.player import ToneSource
from firmware.media.ports import PortAllocator
from firmware.media.relay import Leg, RelayPorts, RelaySession, RelayStats
from firmware.media.rtp import build_rtp, parse_rtp
from firmware.media.sdes import CryptoSuite, generate_key
from firmware.media.srtp import SrtpSession
from firmware.media.stream import RtpSender
from firmware.media.telephone_event import DigitStart, EventReceiver, EventSender

from .conftest import HOST, Peer, PeerFactory

RATE = 8000


@pytest.fixture
def allocator() -> PortAllocator:
    return PortAllocator(23000, 23999)  # not the relay tests' range


def tone(freq: float, samples: int, start: int = 0, amplitude: float = 8000.0) -> np.ndarray:
    t = (np.arange(samples) + start) / RATE
    return np.round(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def peak_hz(samples: np.ndarray) -> float:
    x = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.argmax(spectrum) * RATE / len(samples))


def pcma_packets(audio: np.ndarray, pt: int = 8, ssrc: int = 0x1234, frame: int = 160) -> list:
    sender = RtpSender(pt, ssrc=ssrc, rng=random.Random(1))
    return [
        sender.send(alaw_encode(audio[i : i + frame]), frame)
        for i in range(0, len(audio) - frame + 1, frame)
    ]


async def drain(peer: Peer, quiet: float = 0.3, limit: float = 5.0) -> list[bytes]:
    """Everything ``peer`` receives until ``quiet`` seconds pass with nothing."""
    got: list[bytes] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while loop.time() < end:
        try:
            data, _ = await asyncio.wait_for(peer.queue.get(), quiet)
        except TimeoutError:
            break
        got.append(data)
    return got


async def wired(peer: PeerFactory, allocator: PortAllocator) -> tuple[MediaBridge, Peer, Peer]:
    a, b = await peer(), await peer()
    bridge = await MediaBridge.open(HOST, allocator, rng=random.Random(7))
    bridge.set_remote(Leg.A, HOST, a.port)
    bridge.set_remote(Leg.B, HOST, b.port)
    return bridge, a, b


async def test_passthrough_when_legs_agree_is_byte_identical(
    peer: PeerFactory, allocator: PortAllocator
) -> None:
    bridge, a, b = await wired(peer, allocator)
    async with bridge:
        bridge.configure(Leg.A, "PCMA", telephone_event_pt=101)
        bridge.configure(Leg.B, 8, telephone_event_pt=101)
        assert bridge.core.passthrough(Leg.A) and bridge.core.passthrough(Leg.B)
        packets = pcma_packets(tone(1000, 160 * 20))
        for p in packets:
            a.send(p, bridge.port(Leg.A))
        assert [data for data in await drain(b)] == packets
        reply = pcma_packets(tone(500, 160 * 5), ssrc=99)
        for p in reply:
            b.send(p, bridge.port(Leg.B))
        got = await drain(a)
        assert got == reply
        stats = bridge.stats()
        assert isinstance(stats, RelayStats)
        assert stats.rtp_a_to_b.packets == 20 and stats.rtp_b_to_a.packets == 5
        assert stats.source_a == a.addr and stats.source_b == b.addr


async def test_pcma_to_pcmu_keeps_a_1khz_tone(peer: PeerFactory, allocator: PortAllocator) -> None:
    bridge, a, b = await wired(peer, allocator)
    async with bridge:
        bridge.configure(Leg.A, "PCMA")
        bridge.configure(Leg.B, "PCMU")
        assert not bridge.core.passthrough(Leg.A)
        sent = tone(1000, 160 * 25)
        for p in pcma_packets(sent):
            a.send(p, bridge.port(Leg.A))
        got = [parse_rtp(d) for d in await drain(b)]
        assert len(got) == 25 and {p.payload_type for p in got} == {0}
        audio = np.concatenate([ulaw_decode(p.payload) for p in got])
        assert abs(peak_hz(audio) - 1000) < 4
        rms_in = np.sqrt(np.mean(sent.astype(float) ** 2))
        rms_out = np.sqrt(np.mean(audio.astype(float) ** 2))
        assert abs(20 * np.log10(rms_out / rms_in)) < 0.5  # level kept within 0.5 dB
        seqs = [p.sequence for p in got]
        assert all((y - x) & 0xFFFF == 1 for x, y in itertools.pairwise(seqs))


async def test_ptime_mediation_20_to_30(peer: PeerFactory, allocator: PortAllocator) -> None:
    bridge, a, b = await wired(peer, allocator)
    async with bridge:
        bridge.configure(Leg.A, "PCMA", ptime=20)
        bridge.configure(Leg.B, "PCMA", ptime=30)
        for p in pcma_packets(tone(1000, 160 * 30)):
            a.send(p, bridge.port(Leg.A))
        got = [parse_rtp(d) for d in await drain(b)]
        assert len(got) == 20 and {len(p.payload) for p in got} == {240}
        audio = np.concatenate([alaw_decode(p.payload) for p in got])
        assert abs(peak_hz(audio) - 1000) < 4


async def test_rfc4733_events_cross_with_their_payload_type_rewritten(
    peer: PeerFactory, allocator: PortAllocator
) -> None:
    bridge, a, b = await wired(peer, allocator)
    async with bridge:
        bridge.configure(Leg.A, "PCMA", telephone_event_pt=101)
        bridge.configure(Leg.B, "PCMA", telephone_event_pt=96)
        sender = EventSender(RtpSender(8, ssrc=5, rng=random.Random(2)), 101)
        sent = sender.digit("7") + sender.digit("#")
        for p in sent:
            a.send(p, bridge.port(Leg.A))
        got = [parse_rtp(d) for d in await drain(b)]
        assert [p.payload_type for p in got] == [96] * len(sent)
        assert [p.payload for p in got] == [parse_rtp(p).payload for p in sent]
        receiver = EventReceiver(96)
        digits = [
            r.digit for p in got for r in receiver.receive(p, 0.0) if isinstance(r, DigitStart)
        ]
        assert digits == ["7", "#"]


async def test_rfc4733_to_inband_when_the_other_leg_has_no_events(
    peer: PeerFactory, allocator: PortAllocator
) -> None:
    bridge, a, b = await wired(peer, allocator)
    async with bridge:
        bridge.configure(Leg.A, "PCMA", telephone_event_pt=101)
        bridge.configure(Leg.B, "PCMA")
        sender = EventSender(RtpSender(8, ssrc=5, rng=random.Random(2)), 101)
        for digit in "159":
            for p in sender.digit(digit):
                a.send(p, bridge.port(Leg.A))
        got = [parse_rtp(d) for d in await drain(b, quiet=0.5)]
        assert got and {p.payload_type for p in got} == {8}
        detector = DtmfReceiver()
        try:
            digits = detector.feed(np.concatenate([alaw_decode(p.payload) for p in got]))
        finally:
            detector.close()
        assert "".join(digits) == "159"
        assert bridge.core.digits(Leg.B) == "159"


async def test_inband_dtmf_to_rfc4733(peer: PeerFactory, allocator: PortAllocator) -> None:
    bridge, a, b = await wired(peer, allocator)
    async with bridge:
        bridge.configure(Leg.A, "PCMA")
        bridge.configure(Leg.B, "PCMA", telephone_event_pt=101)
        generator = DtmfSender(level_dbm0=-10, on_ms=100, off_ms=100)
        try:
            audio = np.concatenate([generator.generate("73#"), np.zeros(160 * 10, np.int16)])
        finally:
            generator.close()
        audio = audio[: len(audio) // 160 * 160]
        for p in pcma_packets(audio):
            a.send(p, bridge.port(Leg.A))
        got = [parse_rtp(d) for d in await drain(b)]
        events = [p for p in got if p.payload_type == 101]
        receiver = EventReceiver(101)
        digits = [
            r.digit for p in events for r in receiver.receive(p, 0.0) if isinstance(r, DigitStart)
        ]
        assert digits == ["7", "3", "#"]
        assert len({p.ssrc for p in got}) == 1  # one stream toward B, audio and events
        assert bridge.core.digits(Leg.B) == "73#"


async def test_srtp_on_one_leg_plain_on_the_other(
    peer: PeerFactory, allocator: PortAllocator
) -> None:
    suite = CryptoSuite.AES_CM_128_HMAC_SHA1_80
    box_key, phone_key = generate_key(suite), generate_key(suite)
    phone = SrtpSession(suite, tx_key=phone_key, rx_key=box_key)
    bridge, a, b = await wired(peer, allocator)
    async with bridge:
        bridge.configure(Leg.A, "PCMA", srtp=SrtpSession(suite, tx_key=box_key, rx_key=phone_key))
        bridge.configure(Leg.B, "PCMA")
        stranger = await peer()
        forged = pcma_packets(tone(300, 160))[0] + bytes(10)
        stranger.send(forged, bridge.port(Leg.A))  # fails authentication: no latch
        await asyncio.sleep(0.05)
        assert bridge.source(Leg.A) is None

        plain = pcma_packets(tone(1000, 160 * 10))
        for p in plain:
            a.send(phone.protect(p), bridge.port(Leg.A))
        assert await drain(b) == plain
        assert bridge.source(Leg.A) == a.addr

        reply = pcma_packets(tone(700, 160 * 10), ssrc=77)
        for p in reply:
            b.send(p, bridge.port(Leg.B))
        got = [phone.unprotect(d) for d in await drain(a)]
        assert got == reply
        assert bridge.stats().rtp_a_to_b.dropped == 1


async def test_latches_to_the_actual_source(peer: PeerFactory, allocator: PortAllocator) -> None:
    a, b_sdp, b_nat = await peer(), await peer(), await peer()
    async with await MediaBridge.open(HOST, allocator) as bridge:
        bridge.set_remote(Leg.A, HOST, a.port)
        bridge.set_remote(Leg.B, HOST, b_sdp.port)  # the private address in B's SDP
        bridge.configure(Leg.A, "PCMA")
        bridge.configure(Leg.B, "PCMU")
        packet = pcma_packets(tone(1000, 160))[0]
        pcmu = pcma_packets(tone(1000, 160), pt=0)[0]  # (payload not decoded here)
        b_nat.send(pcmu, bridge.port(Leg.B))  # B really sends from its NAT mapping
        assert (await a.recv())[1] == (HOST, bridge.port(Leg.A))
        assert bridge.source(Leg.B) == b_nat.addr and bridge.remote(Leg.B) == b_sdp.addr
        a.send(packet, bridge.port(Leg.A))
        data, source = await b_nat.recv()
        assert source == (HOST, bridge.port(Leg.B)) and parse_rtp(data).payload_type == 0
        assert await b_sdp.silent()
        stranger = await peer()
        stranger.send(pcmu, bridge.port(Leg.B))  # B still talks: ignored
        await asyncio.sleep(0.05)
        assert bridge.stats().rtp_b_to_a.ignored == 1


async def test_play_replaces_the_audio_and_stop_play_restores_it(
    peer: PeerFactory, allocator: PortAllocator
) -> None:
    bridge, a, b = await wired(peer, allocator)
    async with bridge:
        bridge.configure(Leg.A, "PCMA")
        bridge.configure(Leg.B, "PCMA")
        marker = b"\x42" * 160
        sender = RtpSender(8, ssrc=0xB0B, rng=random.Random(3))

        async def talk(frames: int) -> None:
            for _ in range(frames):
                b.send(sender.send(marker, 160), bridge.port(Leg.B))
                await asyncio.sleep(0.01)

        await talk(5)
        before = [parse_rtp(d) for d in await drain(a, quiet=0.1)]
        assert [p.payload for p in before] == [marker] * 5

        bridge.play(Leg.A, ToneSource("425"))
        assert bridge.playing(Leg.A)
        await talk(30)
        during = [parse_rtp(d) for d in await drain(a, quiet=0.1)]
        stop_at = len(during)
        bridge.stop_play(Leg.A)
        assert not bridge.playing(Leg.A)
        assert stop_at >= 10 and all(p.payload != marker for p in during)
        audio = np.concatenate([alaw_decode(p.payload) for p in during])
        assert abs(peak_hz(audio) - 425) < 8
        await talk(5)
        after = [parse_rtp(d) for d in await drain(a, quiet=0.1)]
        assert [p.payload for p in after] == [marker] * 5
        stream = before + during + after
        assert {p.ssrc for p in stream} == {0xB0B}  # one continuous stream toward A
        seqs = [p.sequence for p in stream]
        assert all((y - x) & 0xFFFF == 1 for x, y in itertools.pairwise(seqs))
        assert during[0].marker and after[0].marker


async def test_stats_carry_loss_jitter_and_mos(peer: PeerFactory, allocator: PortAllocator) -> None:
    bridge, a, b = await wired(peer, allocator)
    async with bridge:
        bridge.configure(Leg.A, "PCMA")
        bridge.configure(Leg.B, "PCMA")
        packets = pcma_packets(tone(1000, 160 * 100))
        for i, p in enumerate(packets):
            if i % 20 != 7:  # 5 lost
                a.send(p, bridge.port(Leg.A))
        await drain(b, quiet=0.2)
        quality = bridge.stats().quality["a"]
        assert quality["packets_received"] == 95 and quality["packets_lost"] == 5
        assert quality["loss_percent"] == pytest.approx(5.0)
        assert quality["jitter_ms"] > 0  # sent in a burst: arrival far from the 20 ms clock
        assert 1.0 <= quality["mos"] < 4.0 and quality["r_factor"] is not None
        assert quality["codec"] == "PCMA" and quality["srtp"] is False
        assert bridge.quality()["b"]["packets_sent"] == 95
        assert bridge.quality()["b"]["mos"] is None  # B sent nothing


def test_outbound_stream_stays_continuous_across_sources() -> None:
    core = BridgeCore(rng=random.Random(1))
    first = build_rtp(8, 1000, 50_000, 0xAAAA, b"\xd5" * 160)
    assert core.route_rtp(Leg.A, first, 0.0) == [first]  # untouched
    restarted = build_rtp(8, 7, 123, 0xBBBB, b"\xd5" * 160)  # re-INVITEd phone
    out = parse_rtp(core.route_rtp(Leg.A, restarted, 0.02)[0])
    assert (out.ssrc, out.sequence, out.timestamp, out.marker) == (0xAAAA, 1001, 50_160, True)


async def test_bad_settings_are_clear_errors(allocator: PortAllocator) -> None:
    with pytest.raises(BridgeError):
        LegMedia.make("OPUS")
    with pytest.raises(BridgeError):
        LegMedia.make("L16")  # dynamic: needs the SDP's payload type
    with pytest.raises(BridgeError):
        LegMedia.make("PCMA", ptime=25)
    with pytest.raises(BridgeError):
        LegMedia.make("PCMA", telephone_event_pt=8)
    async with await MediaBridge.open(HOST, allocator) as bridge:
        with pytest.raises(BridgeError):
            bridge.play(Leg.A, ToneSource("425"))  # no codec on leg A yet
        with pytest.raises(ValueError):
            bridge.set_remote(Leg.A, HOST, bridge.port(Leg.B))
    assert allocator.in_use == 0


@pytest.mark.parametrize("pooled", [False, True])
async def test_adopt_takes_over_a_relay_mid_call(
    peer: PeerFactory, allocator: PortAllocator, pooled: bool
) -> None:
    """A relayed call whose callee answers another law moves onto a bridge: same ports,
    same latches, and from then on transcoded; the ports come back once it closes."""
    ports = RelayPorts(23000, 23999) if pooled else allocator
    a, b = await peer(), await peer()
    relay = await RelaySession.open(HOST, ports)
    relay.set_remote(Leg.A, HOST, a.port)
    relay.set_remote(Leg.B, HOST, b.port)
    early = pcma_packets(tone(1000, 160 * 3))
    for p in early:  # early media relayed as it is: B latched
        b.send(p, relay.port(Leg.B))
    assert await drain(a) == early
    before = relay.ports
    bridge = MediaBridge.adopt(relay, rng=random.Random(7))
    assert relay.closed and bridge.ports == before
    assert bridge.source(Leg.B) == b.addr and bridge.remote(Leg.A) == a.addr
    async with bridge:
        bridge.configure(Leg.A, "PCMU")
        bridge.configure(Leg.B, "PCMA")
        sent = tone(1000, 160 * 25)
        for p in pcma_packets(sent):
            b.send(p, bridge.port(Leg.B))
        got = [parse_rtp(d) for d in await drain(a)]
        assert len(got) == 25 and {p.payload_type for p in got} == {0}
        audio = np.concatenate([ulaw_decode(p.payload) for p in got])
        assert abs(peak_hz(audio) - 1000) < 4
        assert bridge.stats().rtp_b_to_a.packets == 25
    assert ports.in_use == 0 and not ports.is_allocated(before[0])
    with pytest.raises(RuntimeError):
        relay.hand_over()
