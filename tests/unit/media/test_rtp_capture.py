"""Captured packets: SIPp's g711a.pcap (a real A-law RTP stream) through our parser,
receiver statistics and G.711 decoder.

`read_pcap_udp` is a tiny classic-pcap reader (Ethernet/IPv4/UDP) shared with the
telephone-event capture tests.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from firmware.media.codecs.g711 import alaw_decode
from firmware.media.rtp import parse_rtp
from firmware.media.stream import Accept, RtpReceiver

SIPP = Path("/usr/share/sip-tester")


@dataclass(frozen=True)
class Datagram:
    time: float
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes


def read_pcap_udp(path: Path) -> list[Datagram]:
    """UDP datagrams of a classic pcap file (Ethernet link type, IPv4)."""
    data = path.read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    assert linktype == 1, "Ethernet captures only"
    out = []
    offset = 24
    while offset + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack_from(endian + "IIII", data, offset)
        frame = data[offset + 16 : offset + 16 + incl]
        offset += 16 + incl
        if struct.unpack_from("!H", frame, 12)[0] != 0x0800:
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 17:
            continue
        total = struct.unpack_from("!H", ip, 2)[0]
        src = ".".join(map(str, ip[12:16]))
        dst = ".".join(map(str, ip[16:20]))
        sport, dport, ulen = struct.unpack_from("!HHH", ip, ihl)
        payload = ip[ihl + 8 : min(total, ihl + ulen)]
        when = sec + frac / (1e9 if nano else 1e6)
        out.append(Datagram(when, (src, sport), (dst, dport), payload))
    return out


needs_sipp = pytest.mark.skipif(not (SIPP / "g711a.pcap").exists(), reason="sip-tester pcaps")


@needs_sipp
def test_g711a_capture_parses_as_one_clean_stream() -> None:
    datagrams = read_pcap_udp(SIPP / "g711a.pcap")
    packets = [parse_rtp(d.payload) for d in datagrams]
    assert len(packets) == 236
    assert {p.payload_type for p in packets} == {8}
    assert len({p.ssrc for p in packets}) == 1
    assert packets[0].marker and not any(p.marker for p in packets[1:])
    assert all(len(p.payload) == 240 for p in packets)  # ptime 30
    seqs = [p.sequence for p in packets]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    stamps = [p.timestamp for p in packets]
    assert all((b - a) & 0xFFFFFFFF == 240 for a, b in itertools.pairwise(stamps))


@needs_sipp
def test_g711a_capture_receiver_stats() -> None:
    datagrams = read_pcap_udp(SIPP / "g711a.pcap")
    receiver = RtpReceiver(8000)
    verdicts = [receiver.receive(parse_rtp(d.payload), d.time) for d in datagrams]
    assert verdicts[0] is Accept.PROBATION
    assert all(v is Accept.VALID for v in verdicts[1:])
    assert receiver.lost == 0
    assert receiver.received == 235  # the probation packet is not counted (RFC 3550 A.1)
    # Captured at 30 ms +- a few ms: jitter is a few ms, far below one frame.
    assert 0 < receiver.jitter_seconds < 0.010
    report = receiver.interval_report()
    assert report is not None and report.fraction_lost == 0


@needs_sipp
def test_g711a_capture_decodes_to_speech_like_audio() -> None:
    datagrams = read_pcap_udp(SIPP / "g711a.pcap")
    audio = np.concatenate([alaw_decode(parse_rtp(d.payload).payload) for d in datagrams])
    assert audio.dtype == np.int16 and len(audio) == 236 * 240
    rms = np.sqrt(np.mean(audio.astype(float) ** 2))
    assert 100 < rms < 20000  # audible, not clipped noise
    # Speech/tone energy sits in the telephone band (300-3400 Hz), not at DC or Nyquist.
    spectrum = np.abs(np.fft.rfft(audio.astype(float))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / 8000)
    band = spectrum[(freqs > 300) & (freqs < 3400)].sum()
    assert band / spectrum.sum() > 0.5
