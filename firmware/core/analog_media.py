"""RTP for one analog call: PCMA packets to and from a port's PCM timeslot.

Each active channel gets one UDP socket (RTP only; RTCP is not sent: the peer is the
box's own relay on loopback). Received PCMA goes through a `JitterBuffer` (decoded to
linear for its concealment, re-encoded to A-law, which round-trips exactly) and the
leg takes one frame per 20 ms PCM tick (``media_in``); the port's frames are packed by
an `RtpSender` and sent to the address of the far end's SDP (``media_out``). Payload
types other than PCMA (RFC 4733 events, comfort noise) are dropped: DTMF reaches an
analog line as audio.

Also here: the SDP offer/answer the gateway sends (PCMA only, 20 ms, telephone-event
not offered) and reading the far end's RTP address out of its SDP.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable

from firmware.media.codecs.g711 import alaw_decode, alaw_encode
from firmware.media.jitter import JitterBuffer
from firmware.media.ports import PortAllocator
from firmware.media.rtp import RtpError, parse_rtp
from firmware.media.stream import RtpSender
from firmware.sip.sdp import SdpError, parse_sdp, rtp_address

log = logging.getLogger(__name__)

PCMA = 8
FRAME_SAMPLES = 160


class MediaError(ValueError):
    """An SDP the gateway cannot use (no PCMA, no address)."""


def session_sdp(host: str, port: int, session_id: int) -> bytes:
    """Our SDP offer or answer: one audio stream, PCMA at 20 ms, sendrecv."""
    lines = [
        "v=0",
        f"o=- {session_id} 1 IN IP4 {host}",
        "s=skillepunkt analog",
        f"c=IN IP4 {host}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {PCMA}",
        f"a=rtpmap:{PCMA} PCMA/8000",
        "a=ptime:20",
        "a=sendrecv",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def remote_rtp(sdp: bytes) -> tuple[str, int]:
    """The far end's RTP address from its SDP; MediaError when it has no usable PCMA audio."""
    try:
        session = parse_sdp(sdp)
    except SdpError as exc:
        raise MediaError(f"bad SDP: {exc}") from None
    for index, media in enumerate(session.media):
        if media.kind != "audio" or not media.is_rtp or media.port == 0:
            continue
        if PCMA not in media.payload_types:
            continue
        address = rtp_address(session, index)
        if address is not None:
            return address
    raise MediaError("the SDP offers no PCMA audio stream")


class RtpChannel:
    """One call's RTP socket, jitter buffer and sender; opened at once (no await), so a
    channel action can open it. ``close()`` gives the socket (and port) back."""

    def __init__(
        self,
        host: str,
        *,
        ports: PortAllocator | None = None,
        clock: Callable[[], float] = time.monotonic,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.host = host
        self._ports = ports
        self.clock = clock
        self.remote: tuple[str, int] | None = None
        self.sender = RtpSender(PCMA)
        self.jitter = JitterBuffer(alaw_decode)
        self.received = 0
        self.dropped = 0  # not PCMA, or malformed
        self._loop = loop or asyncio.get_running_loop()
        wanted = ports.allocate() if ports is not None else 0
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((host, wanted))
            self._loop.add_reader(sock.fileno(), self._readable)
        except BaseException:
            sock.close()
            if ports is not None:
                ports.release(wanted)
            raise
        self._sock: socket.socket | None = sock
        self.port = int(sock.getsockname()[1])

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def _readable(self) -> None:
        sock = self._sock
        for _ in range(32):
            if sock is None:
                return
            try:
                data = sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ICMP port unreachable from a peer gone away
                return
            self._on_packet(data)

    def _on_packet(self, data: bytes) -> None:
        try:
            packet = parse_rtp(data)
        except RtpError:
            self.dropped += 1
            return
        if packet.payload_type != PCMA:
            self.dropped += 1
            return
        self.received += 1
        self.jitter.put_packet(packet, self.clock())

    def media_in(self) -> bytes | None:
        """The next 20 ms A-law frame for the timeslot (None before any packet came)."""
        if self.received == 0:
            return None
        return alaw_encode(self.jitter.get(self.clock()))

    def media_out(self, frame: bytes) -> None:
        """One 20 ms A-law frame from the timeslot, sent as a PCMA packet."""
        if self._sock is None or self.remote is None:
            return
        packet = self.sender.send(frame, FRAME_SAMPLES, self.clock())
        try:
            self._sock.sendto(packet, self.remote)
        except (BlockingIOError, InterruptedError):
            self.dropped += 1
        except OSError:
            self.dropped += 1

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        self._loop.remove_reader(sock.fileno())
        sock.close()
        if self._ports is not None:
            self._ports.release(self.port)
        self.jitter.close()

    def describe(self) -> dict[str, object]:
        return {
            "port": self.port,
            "remote": f"{self.remote[0]}:{self.remote[1]}" if self.remote else None,
            "sent": self.sender.packets_sent,
            "received": self.received,
            "dropped": self.dropped,
        }
