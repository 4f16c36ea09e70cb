"""The gateway's SIP-side pieces: the router's internal binding (trusted source, static
targets for FXS extensions) and the per-call RTP channel with its SDP."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest

from firmware.core.analog_media import MediaError, RtpChannel, remote_rtp, session_sdp
from firmware.core.routing import AuthenticatedCaller, ExtensionRouter
from firmware.media.codecs.g711 import alaw_decode, alaw_encode
from firmware.media.rtp import build_rtp, parse_rtp
from firmware.sip.b2bua import Caller, RouteStep
from firmware.sip.digest import DigestAuthenticator
from firmware.sip.location import LocationService
from firmware.sip.message import parse_message
from firmware.sip.peer import Peer
from firmware.sip.registrar import AuthGuard, UserDirectory

USERS = [{"extension": "201", "name": "Anne", "sip_password": "pass-word-123"}]


def router() -> ExtensionRouter:
    r = ExtensionRouter(
        UserDirectory(lambda: USERS),
        LocationService(None, clock=lambda: 0.0),
        DigestAuthenticator("box", clock=lambda: 0.0, algorithms=("MD5",)),
        AuthGuard(clock=lambda: 0.0),
    )
    r.set_users(USERS)
    return r


def invite_from(number: str) -> bytes:
    return (
        "INVITE sip:201@127.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK1\r\n"
        f"From: <sip:{number}@127.0.0.1:40000>;tag=a\r\nTo: <sip:201@127.0.0.1>\r\n"
        "Call-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:gw@127.0.0.1:40000>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def test_internal_ua_is_trusted_and_its_extensions_ring_it() -> None:
    r = router()
    request = parse_message(invite_from("101"))
    assert r.authenticate(request, Peer("udp", "127.0.0.1", 40000)).status == 407  # type: ignore[union-attr]
    r.set_internal("analog", "127.0.0.1", 40000, ["101", "102"])
    caller = r.authenticate(request, Peer("udp", "127.0.0.1", 40000))
    assert caller == AuthenticatedCaller("101")  # its port's extension: may use feature codes
    other = r.authenticate(
        parse_message(invite_from("4512345678")), Peer("udp", "127.0.0.1", 40000)
    )
    assert type(other) is Caller and other.number == "4512345678"  # FXO caller ID, believed
    assert r.authenticate(request, Peer("udp", "127.0.0.1", 40001)).status == 407  # type: ignore[union-attr]
    plan = r.route(Caller("201"), "101")
    assert isinstance(plan, list)
    (step,) = plan
    assert isinstance(step, RouteStep)
    (target,) = step.targets
    assert (str(target.uri), target.peer, target.callee) == (
        "sip:101@127.0.0.1:40000", Peer("udp", "127.0.0.1", 40000), "101",
    )  # fmt: skip
    r.set_users(USERS)  # a users change keeps the ports' numbers
    assert isinstance(r.route(Caller("201"), "102"), list)
    r.set_internal("analog", "127.0.0.1", 0, [])  # the gateway stopped
    assert r.route(Caller("201"), "101") == 404
    assert r.authenticate(request, Peer("udp", "127.0.0.1", 40000)).status == 407  # type: ignore[union-attr]


def test_sdp_offer_names_pcma_and_is_read_back() -> None:
    sdp = session_sdp("127.0.0.1", 30000, 7)
    assert b"m=audio 30000 RTP/AVP 8\r\n" in sdp and b"a=rtpmap:8 PCMA/8000" in sdp
    assert remote_rtp(sdp) == ("127.0.0.1", 30000)
    with pytest.raises(MediaError):
        remote_rtp(sdp.replace(b"RTP/AVP 8", b"RTP/AVP 0").replace(b"8 PCMA", b"0 PCMU"))
    with pytest.raises(MediaError):
        remote_rtp(b"garbage")


async def test_rtp_channel_both_ways_and_release() -> None:
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)
    loop = asyncio.get_running_loop()
    rtp = RtpChannel("127.0.0.1")
    try:
        assert rtp.media_in() is None  # nothing received yet
        rtp.remote = peer.getsockname()
        frame = alaw_encode((3000 * np.sin(np.arange(160) / 3)).astype(np.int16))
        rtp.media_out(frame)
        data = await asyncio.wait_for(loop.sock_recv(peer, 2048), 2)
        packet = parse_rtp(data)
        assert (packet.payload_type, packet.payload) == (8, frame)
        for i in range(6):
            peer.sendto(build_rtp(8, i, 160 * i, 99, frame), ("127.0.0.1", rtp.port))
        peer.sendto(build_rtp(101, 7, 0, 99, b"\x01\x00\x00\xa0"), ("127.0.0.1", rtp.port))
        async with asyncio.timeout(2):
            while rtp.received + rtp.dropped < 7:
                await asyncio.sleep(0.01)
        assert (rtp.received, rtp.dropped) == (6, 1)  # the RFC 4733 event is not audio
        await asyncio.sleep(0.06)  # past the jitter buffer's initial delay
        out = [rtp.media_in() for _ in range(3)]
        assert any(f is not None and np.abs(alaw_decode(f)).max() > 1000 for f in out)
    finally:
        rtp.close()
        peer.close()
    assert not rtp.is_open
    rtp.close()  # twice is harmless
