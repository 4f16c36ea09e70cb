"""SRTP sessions and the RTP<->SRTP bridge.

Interop is checked two ways: against libsrtp driven directly through pylibsrtp (keyed
from the SDES text, not through our wrapper), and against an RFC 3711 AES-CM/HMAC-SHA1
transform written here on top of `cryptography` (checked on the RFC's own key
derivation vectors), so a key||salt mix-up in our wrapper cannot hide behind libsrtp
agreeing with itself.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import time

import pylibsrtp
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.media.sdes import (
    CryptoSuite,
    SdesError,
    SrtpPolicy,
    Verdict,
    answer_offer,
    make_offer,
    new_crypto,
    parse_crypto,
)
from firmware.media.srtp import SrtpBridge, SrtpError, SrtpSession

CM_SUITES = [CryptoSuite.AES_CM_128_HMAC_SHA1_80, CryptoSuite.AES_CM_128_HMAC_SHA1_32]


def rtp(seq: int, ts: int = 0, ssrc: int = 0x1234_5678, payload: bytes | None = None) -> bytes:
    body = payload if payload is not None else bytes((seq + i) & 0xFF for i in range(160))
    return struct.pack("!BBHII", 0x80, 8, seq & 0xFFFF, ts & 0xFFFF_FFFF, ssrc) + body


def rtcp_sr(ssrc: int = 0x1234_5678) -> bytes:
    return struct.pack("!BBHI", 0x80, 200, 6, ssrc) + bytes(range(20))


# --------------------------------------------------------------------------- RFC 3711 reference


def _aes_cm(key: bytes, iv: int, length: int) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv.to_bytes(16, "big"))).encryptor()
    return encryptor.update(bytes(length)) + encryptor.finalize()


def derive(master_key: bytes, master_salt: bytes, label: int, length: int) -> bytes:
    """RFC 3711 §4.3.1 key derivation with kdr = 0."""
    x = int.from_bytes(master_salt, "big") ^ (label << 48)
    return _aes_cm(master_key, x << 16, length)


class ReferenceSrtp:
    """Protect-side RFC 3711 transform (AES-CM + HMAC-SHA1), one SSRC, no extensions."""

    def __init__(self, material: bytes, tag_length: int) -> None:
        key, salt = material[:16], material[16:30]
        self.key = derive(key, salt, 0, 16)
        self.auth = derive(key, salt, 1, 20)
        self.salt = derive(key, salt, 2, 14)
        self.rtcp_key = derive(key, salt, 3, 16)
        self.rtcp_auth = derive(key, salt, 4, 20)
        self.rtcp_salt = derive(key, salt, 5, 14)
        self.tag_length = tag_length
        self.roc = 0
        self.rtcp_index = 0

    def _iv(self, salt: bytes, ssrc: int, index: int) -> int:
        return ((int.from_bytes(salt, "big") << 16) ^ (ssrc << 64) ^ (index << 16)) & (2**128 - 1)

    def protect(self, packet: bytes) -> bytes:
        header, payload = packet[:12], packet[12:]
        seq, ssrc = struct.unpack("!H", header[2:4])[0], struct.unpack("!I", header[8:12])[0]
        index = (self.roc << 16) | seq
        stream = _aes_cm(self.key, self._iv(self.salt, ssrc, index), len(payload))
        body = header + bytes(a ^ b for a, b in zip(payload, stream, strict=True))
        tag = hmac.new(self.auth, body + self.roc.to_bytes(4, "big"), hashlib.sha1).digest()
        if seq == 0xFFFF:
            self.roc += 1
        return body + tag[: self.tag_length]

    def protect_rtcp(self, packet: bytes) -> bytes:
        self.rtcp_index += 1
        header, payload = packet[:8], packet[8:]
        ssrc = struct.unpack("!I", header[4:8])[0]
        iv = self._iv(self.rtcp_salt, ssrc, self.rtcp_index)
        stream = _aes_cm(self.rtcp_key, iv, len(payload))
        body = header + bytes(a ^ b for a, b in zip(payload, stream, strict=True))
        body += (0x8000_0000 | self.rtcp_index).to_bytes(4, "big")
        return body + hmac.new(self.rtcp_auth, body, hashlib.sha1).digest()[:10]


def test_reference_matches_rfc3711_key_derivation_vectors() -> None:
    """RFC 3711 appendix B.3."""
    key = bytes.fromhex("E1F97A0D3E018BE0D64FA32C06DE4139")
    salt = bytes.fromhex("0EC675AD498AFEEBB6960B3AABE6")
    assert derive(key, salt, 0, 16).hex().upper() == "C61E7A93744F39EE10734AFE3FF7A087"
    assert derive(key, salt, 2, 14).hex().upper() == "30CBBC08863D8C85D49DB34A9AE1"
    assert derive(key, salt, 1, 20).hex().upper() == "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"


@pytest.mark.parametrize("suite", CM_SUITES)
def test_protect_is_byte_identical_to_rfc3711_reference(suite: CryptoSuite) -> None:
    tag_length = 10 if suite is CryptoSuite.AES_CM_128_HMAC_SHA1_80 else 4
    local = new_crypto(1, suite)
    session = SrtpSession.from_sdes(local, new_crypto(1, suite))
    reference = ReferenceSrtp(local.keys[0].material, tag_length)
    # Across a sequence-number wrap, so the rollover counter is exercised too.
    for seq in (65_533, 65_534, 65_535, 0, 1, 2):
        packet = rtp(seq, ts=seq * 160)
        assert session.protect(packet) == reference.protect(packet)
    for _ in range(3):
        assert session.protect_rtcp(rtcp_sr()) == reference.protect_rtcp(rtcp_sr())


@pytest.mark.parametrize("suite", CM_SUITES)
def test_unprotects_reference_packets(suite: CryptoSuite) -> None:
    tag_length = 10 if suite is CryptoSuite.AES_CM_128_HMAC_SHA1_80 else 4
    remote = new_crypto(1, suite)
    session = SrtpSession.from_sdes(new_crypto(1, suite), remote)
    reference = ReferenceSrtp(remote.keys[0].material, tag_length)
    for seq in (65_534, 65_535, 0, 1):
        assert session.unprotect(reference.protect(rtp(seq))) == rtp(seq)
    assert session.unprotect_rtcp(reference.protect_rtcp(rtcp_sr())) == rtcp_sr()


# --------------------------------------------------------------------------- libsrtp interop

PROFILES = {
    CryptoSuite.AES_CM_128_HMAC_SHA1_80: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    CryptoSuite.AES_CM_128_HMAC_SHA1_32: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
    CryptoSuite.AEAD_AES_128_GCM: pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    CryptoSuite.AEAD_AES_256_GCM: pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
}


def libsrtp_peer(a_crypto_value: str, inbound: bool) -> pylibsrtp.Session:
    """A libsrtp session keyed straight from an a=crypto text, bypassing our code."""
    suite_name, inline = a_crypto_value.split()[1:3]
    import base64

    key = base64.b64decode(inline.removeprefix("inline:").split("|")[0])
    ssrc = pylibsrtp.Policy.SSRC_ANY_INBOUND if inbound else pylibsrtp.Policy.SSRC_ANY_OUTBOUND
    profile = PROFILES[CryptoSuite(suite_name)]
    return pylibsrtp.Session(pylibsrtp.Policy(key, ssrc, srtp_profile=profile))


@pytest.mark.parametrize("suite", list(CryptoSuite))
def test_interop_with_libsrtp_both_directions_keys_from_sdes(suite: CryptoSuite) -> None:
    # The peer offers, we answer (SDES text only crosses between the two sides).
    peer_line = str(new_crypto(4, suite))
    decision = answer_offer(SrtpPolicy.MANDATORY, "RTP/SAVP", [peer_line])
    assert decision.verdict is Verdict.SRTP and decision.local and decision.remote
    ours = SrtpSession.from_sdes(decision.local, decision.remote)
    our_answer_line = str(decision.local)

    peer_tx = libsrtp_peer(peer_line, inbound=False)
    peer_rx = libsrtp_peer(our_answer_line, inbound=True)
    for seq in range(100, 110):
        assert ours.unprotect(peer_tx.protect(rtp(seq))) == rtp(seq)
        assert peer_rx.unprotect(ours.protect(rtp(seq, ssrc=99))) == rtp(seq, ssrc=99)
    assert ours.unprotect_rtcp(peer_tx.protect_rtcp(rtcp_sr())) == rtcp_sr()
    assert peer_rx.unprotect_rtcp(ours.protect_rtcp(rtcp_sr(7))) == rtcp_sr(7)


def test_our_offer_keys_libsrtp_answerer() -> None:
    offer = make_offer(SrtpPolicy.MANDATORY)
    peer_answer = new_crypto(1, CryptoSuite.AES_CM_128_HMAC_SHA1_80)
    from firmware.media.sdes import accept_answer

    result = accept_answer(SrtpPolicy.MANDATORY, offer, "RTP/SAVP", [str(peer_answer)])
    assert result.local is not None and result.remote is not None
    ours = SrtpSession.from_sdes(result.local, result.remote)
    peer_rx = libsrtp_peer(str(result.local), inbound=True)
    peer_tx = libsrtp_peer(str(peer_answer), inbound=False)
    assert peer_rx.unprotect(ours.protect(rtp(1))) == rtp(1)
    assert ours.unprotect(peer_tx.protect(rtp(2))) == rtp(2)


# --------------------------------------------------------------------------- failures


def pair(
    suite: CryptoSuite = CryptoSuite.AES_CM_128_HMAC_SHA1_80,
) -> tuple[SrtpSession, SrtpSession]:
    """Two sessions keyed to talk to each other."""
    k1, k2 = os.urandom(suite.master_length), os.urandom(suite.master_length)
    return SrtpSession(suite, k1, k2), SrtpSession(suite, k2, k1)


def test_tampered_packet_raises_with_libsrtp_reason() -> None:
    alice, bob = pair()
    protected = bytearray(alice.protect(rtp(1)))
    protected[20] ^= 0x01
    with pytest.raises(SrtpError) as info:
        bob.unprotect(bytes(protected))
    assert info.value.reason == "authentication failure"
    assert info.value.is_auth_failure and not info.value.is_replay


def test_replay_raises() -> None:
    alice, bob = pair()
    protected = alice.protect(rtp(1))
    bob.unprotect(protected)
    with pytest.raises(SrtpError) as info:
        bob.unprotect(protected)
    assert info.value.is_replay


@pytest.mark.parametrize("suite", list(CryptoSuite))
def test_tampered_replayed_and_garbage_packets_are_counted_not_raised(suite: CryptoSuite) -> None:
    alice, bob = pair(suite)
    good = [alice.protect(rtp(seq)) for seq in range(10)]
    for packet in good[:5]:
        assert bob.unprotect_or_drop(packet) is not None
    tampered = bytearray(good[5])
    tampered[-1] ^= 0x80  # the tag
    assert bob.unprotect_or_drop(bytes(tampered)) is None
    body_flip = bytearray(good[6])
    body_flip[14] ^= 0x01  # the payload
    assert bob.unprotect_or_drop(bytes(body_flip)) is None
    assert bob.unprotect_or_drop(good[0]) is None  # replay
    assert bob.unprotect_or_drop(b"\x80") is None  # too short to be RTP
    assert bob.unprotect_or_drop(bytes(2000)) is None  # too long for the buffer
    # An SRTP packet from a stranger (wrong key).
    stranger, _ = pair(suite)
    assert bob.unprotect_or_drop(stranger.protect(rtp(7))) is None
    assert bob.unprotect_or_drop(good[7]) == rtp(7)  # the stream goes on
    stats = bob.stats
    assert (stats.unprotected, stats.auth_failures, stats.replays) == (6, 3, 1)
    assert stats.other_failures == 2
    assert stats.rejected == 6


def test_rtcp_failures_are_counted() -> None:
    alice, bob = pair()
    protected = bytearray(alice.protect_rtcp(rtcp_sr()))
    assert bob.unprotect_rtcp_or_drop(bytes(protected)) == rtcp_sr()
    assert bob.unprotect_rtcp_or_drop(bytes(protected)) is None  # replayed SRTCP index
    protected[9] ^= 1
    assert bob.unprotect_rtcp_or_drop(bytes(protected)) is None
    assert bob.stats.replays + bob.stats.auth_failures == 2


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1600))
def test_unprotect_garbage_never_crashes(data: bytes) -> None:
    _, bob = pair()
    assert bob.unprotect_or_drop(data) is None
    assert bob.unprotect_rtcp_or_drop(data) is None


def test_bad_keys_are_refused() -> None:
    with pytest.raises(SrtpError, match="30 bytes"):
        SrtpSession(CryptoSuite.AES_CM_128_HMAC_SHA1_80, bytes(16), bytes(30))
    with pytest.raises(SrtpError, match="replay window"):
        SrtpSession(CryptoSuite.AES_CM_128_HMAC_SHA1_80, bytes(30), bytes(30), window=10)
    mki = parse_crypto(
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4"
    )
    plain = new_crypto(1, CryptoSuite.AES_CM_128_HMAC_SHA1_80)
    with pytest.raises(SdesError, match="MKI"):
        SrtpSession.from_sdes(plain, mki)
    with pytest.raises(SdesError, match="mismatch"):
        SrtpSession.from_sdes(plain, new_crypto(1, CryptoSuite.AES_CM_128_HMAC_SHA1_32))


def test_window_size_hint_widens_the_replay_window() -> None:
    suite = CryptoSuite.AES_CM_128_HMAC_SHA1_80
    ours, theirs = new_crypto(1, suite), new_crypto(1, suite)
    hinted = parse_crypto(str(theirs) + " WSH=1024")
    wide = SrtpSession.from_sdes(ours, hinted)
    narrow = SrtpSession.from_sdes(ours, theirs)
    sender = libsrtp_peer(str(theirs), inbound=False)
    packets = [sender.protect(rtp(seq)) for seq in range(600)]
    for session in (wide, narrow):
        session.unprotect(packets[599])
    assert wide.unprotect_or_drop(packets[100]) == rtp(100)  # 499 behind: inside 1024
    assert narrow.unprotect_or_drop(packets[100]) is None  # outside the default 128
    assert narrow.stats.replays == 1


# --------------------------------------------------------------------------- bridge


def test_bridge_plain_a_srtp_b_round_trip_is_byte_identical() -> None:
    suite = CryptoSuite.AES_CM_128_HMAC_SHA1_80
    box_b, phone_b = pair(suite)
    bridge = SrtpBridge(None, box_b)
    for seq in range(50):
        packet = rtp(seq, ts=seq * 160)
        on_wire = bridge.a_to_b(packet)
        assert on_wire is not None and on_wire != packet and len(on_wire) == len(packet) + 10
        assert on_wire[:12] == packet[:12]  # SRTP leaves the header in clear
        # The SRTP phone echoes what it heard; back through the bridge to plain A.
        echoed = phone_b.protect(phone_b.unprotect(on_wire))
        assert bridge.b_to_a(echoed) == packet
    report = rtcp_sr()
    srtcp = bridge.a_to_b_rtcp(report)
    assert srtcp is not None and phone_b.unprotect_rtcp(srtcp) == report
    assert bridge.b_to_a_rtcp(phone_b.protect_rtcp(report)) == report


def test_bridge_srtp_both_legs_with_different_keys() -> None:
    box_a, phone_a = pair(CryptoSuite.AES_CM_128_HMAC_SHA1_32)
    box_b, phone_b = pair(CryptoSuite.AEAD_AES_128_GCM)
    bridge = SrtpBridge(box_a, box_b)
    for seq in range(20):
        out = bridge.a_to_b(phone_a.protect(rtp(seq)))
        assert out is not None and phone_b.unprotect(out) == rtp(seq)
        back = bridge.b_to_a(phone_b.protect(rtp(seq, ssrc=5)))
        assert back is not None and phone_a.unprotect(back) == rtp(seq, ssrc=5)


def test_bridge_drops_and_counts_tampered_packets() -> None:
    box_b, phone_b = pair()
    bridge = SrtpBridge(None, box_b)
    forged = bytearray(phone_b.protect(rtp(1)))
    forged[15] ^= 0xFF
    assert bridge.b_to_a(bytes(forged)) is None
    assert bridge.b_to_a(rtp(2)) is None  # plain RTP injected on the SRTP leg
    assert box_b.stats.auth_failures == 2
    assert bridge.b_to_a(phone_b.protect(rtp(3))) == rtp(3)


def test_bridge_plain_both_sides_passes_through() -> None:
    bridge = SrtpBridge(None, None)
    assert bridge.a_to_b(rtp(1)) == rtp(1)
    assert bridge.b_to_a_rtcp(rtcp_sr()) == rtcp_sr()


# --------------------------------------------------------------------------- cost


@pytest.mark.parametrize("suite", list(CryptoSuite))
def test_measure_cost_per_packet(suite: CryptoSuite, capsys: pytest.CaptureFixture[str]) -> None:
    """Prints µs per 172-byte PCMA packet; asserts only correctness."""
    alice, bob = pair(suite)
    n = 2000
    packets = [rtp(seq) for seq in range(n)]
    start = time.perf_counter()
    protected = [alice.protect_or_drop(p) for p in packets]
    middle = time.perf_counter()
    plain = [bob.unprotect_or_drop(p) for p in protected if p is not None]
    end = time.perf_counter()
    assert plain == packets
    with capsys.disabled():
        print(
            f"\n{suite}: protect {(middle - start) / n * 1e6:.2f} µs/packet, "
            f"unprotect {(end - middle) / n * 1e6:.2f} µs/packet"
        )


def test_measure_bridge_cost_per_packet(capsys: pytest.CaptureFixture[str]) -> None:
    """Prints µs per packet through the bridge: plain->SRTP and SRTP->SRTP (re-keying)."""
    n = 2000
    packets = [rtp(seq) for seq in range(n)]
    box_a, phone_a = pair()
    cases = [
        ("plain->SRTP", SrtpBridge(None, pair()[0]), packets),
        ("SRTP->SRTP", SrtpBridge(box_a, pair()[0]), [phone_a.protect(p) for p in packets]),
    ]
    results = {}
    for label, bridge, inputs in cases:
        start = time.perf_counter()
        out = [bridge.a_to_b(p) for p in inputs]
        results[label] = (time.perf_counter() - start) / n * 1e6
        assert all(o is not None for o in out)
    with capsys.disabled():
        print("\nbridge: " + ", ".join(f"{k} {v:.2f} µs/packet" for k, v in results.items()))


def test_sequence_jump_back_beyond_the_window_is_refused_by_protect() -> None:
    """libsrtp will not encrypt an index it has already used (it would reuse keystream);
    a plain-side sender that restarts its sequence numbers under the same SSRC is
    dropped (and counted) until it passes its old position or changes SSRC."""
    box, phone = pair()
    for seq in range(1000, 1300):
        assert box.protect_or_drop(rtp(seq)) is not None
    assert box.protect_or_drop(rtp(1299)) is not None  # a duplicate of the last: allowed
    assert box.protect_or_drop(rtp(5)) is None
    assert box.stats.protect_failures == 1
    assert phone.unprotect(box.protect(rtp(5, ssrc=77))) == rtp(5, ssrc=77)  # new SSRC
