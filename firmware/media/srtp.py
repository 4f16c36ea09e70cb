"""SRTP/SRTCP (RFC 3711, RFC 7714) through pylibsrtp, and RTP<->SRTP bridging for the relay.

`SrtpSession` is one SRTP endpoint of the box toward one peer: it protects what we
send with our key and unprotects what the peer sends with its key (SDES gives one key
per direction). libsrtp keeps the per-SSRC state (rollover counter, replay window), so
an SSRC change on either side just starts a new stream.

Two ways to call it:

- ``protect``/``unprotect`` (and ``_rtcp``) raise `SrtpError` carrying libsrtp's reason;
  for control paths and tests.
- ``protect_or_drop``/``unprotect_or_drop`` return None instead and count the failure
  by kind (authentication, replay, other) in `SrtpStats`: the per-packet path of a
  relay, where a forged or replayed packet is routine and must cost no exception
  handling upstream.

`SrtpBridge` is what the relay calls per packet: leg A and leg B each either plain
(None) or an `SrtpSession`; ``a_to_b`` unprotects with A's session (if any) and
protects with B's (if any), so plain<->SRTP and SRTP<->SRTP with different keys are
the same code. A None result means "drop the packet".

Known edge: libsrtp refuses to protect a packet index it has already used, since that
would reuse keystream. A plain-side sender that jumps its sequence numbers back by more
than the replay window under the same SSRC is therefore dropped (``protect_failures``)
until it passes its old position or changes SSRC; re-sequencing such a sender belongs to
the RTP layer in front of the bridge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pylibsrtp

from firmware.media.sdes import CryptoAttribute, CryptoSuite, SdesError

_PROFILES: dict[CryptoSuite, int] = {
    CryptoSuite.AES_CM_128_HMAC_SHA1_80: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    CryptoSuite.AES_CM_128_HMAC_SHA1_32: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
    CryptoSuite.AEAD_AES_128_GCM: pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    CryptoSuite.AEAD_AES_256_GCM: pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
}
#: libsrtp's replay window when none is asked for (packets).
DEFAULT_WINDOW = 128
#: pylibsrtp works in a 1500-byte buffer; SRTP adds at most this much (tag + MKI).
MAX_PACKET = 1500 - pylibsrtp.SRTP_MAX_SRTCP_TRAILER_LEN
_Process = Callable[[bytes], bytes]
_AUTH_REASONS = frozenset({"authentication failure", "cipher failure"})
_REPLAY_REASONS = frozenset(
    {
        "replay check failed (bad index)",
        "replay check failed (index too old)",
        "packet index is too old to consider",
    }
)


class SrtpError(Exception):
    """An SRTP operation failed; ``reason`` is libsrtp's text (or ours for bad input)."""

    def __init__(self, operation: str, reason: str) -> None:
        super().__init__(f"{operation}: {reason}")
        self.operation = operation
        self.reason = reason

    @property
    def is_auth_failure(self) -> bool:
        return self.reason in _AUTH_REASONS

    @property
    def is_replay(self) -> bool:
        return self.reason in _REPLAY_REASONS


@dataclass(slots=True)
class SrtpStats:
    """Counters of one `SrtpSession` (RTP and RTCP together)."""

    protected: int = 0
    unprotected: int = 0
    auth_failures: int = 0  # forged, corrupted, or keyed with another key
    replays: int = 0  # duplicates and packets older than the replay window
    other_failures: int = 0  # malformed, too long, anything else libsrtp refused
    protect_failures: int = 0

    @property
    def rejected(self) -> int:
        return self.auth_failures + self.replays + self.other_failures


def _policy(
    suite: CryptoSuite, material: bytes, ssrc_type: int, window: int | None
) -> pylibsrtp.Policy:
    if len(material) != suite.master_length:
        raise SrtpError(
            "key", f"{suite} needs {suite.master_length} bytes of key||salt, got {len(material)}"
        )
    policy = pylibsrtp.Policy(
        key=bytes(material), ssrc_type=ssrc_type, srtp_profile=_PROFILES[suite]
    )
    if window is not None:
        if not 64 <= window <= 0x7FFF:
            raise SrtpError("key", f"replay window {window} outside 64..32767")
        policy.window_size = window
    # A relay may forward a duplicate from the plain side; libsrtp would refuse to
    # protect the same index twice. The peer's replay check still drops the copy.
    policy.allow_repeat_tx = True
    return policy


class SrtpSession:
    """SRTP toward one peer: ``tx_key`` protects what we send, ``rx_key`` unprotects what
    it sends (both master key||salt for ``suite``). ``window`` is the replay window."""

    __slots__ = ("_rx", "_tx", "stats", "suite")

    def __init__(
        self, suite: CryptoSuite, tx_key: bytes, rx_key: bytes, *, window: int | None = None
    ) -> None:
        self.suite = suite
        self.stats = SrtpStats()
        try:
            self._tx = pylibsrtp.Session(
                _policy(suite, tx_key, pylibsrtp.Policy.SSRC_ANY_OUTBOUND, None)
            )
            self._rx = pylibsrtp.Session(
                _policy(suite, rx_key, pylibsrtp.Policy.SSRC_ANY_INBOUND, window)
            )
        except pylibsrtp.Error as exc:
            raise SrtpError("create", str(exc)) from None

    @classmethod
    def from_sdes(cls, local: CryptoAttribute, remote: CryptoAttribute) -> SrtpSession:
        """From a negotiated pair: ``local`` is our a=crypto line, ``remote`` the peer's.
        The peer's ``WSH=`` hint sizes our replay window (RFC 4568 §6.3.7)."""
        for attribute in (local, remote):
            reason = attribute.unusable_reason()
            if reason is not None:
                raise SdesError(f"a=crypto tag {attribute.tag}: {reason}")
        suite = local.known_suite
        if suite is None or remote.suite != local.suite:
            raise SdesError(f"suite mismatch: local {local.suite}, remote {remote.suite}")
        window = remote.window_size_hint
        if window is not None:
            window = max(64, min(window, 0x7FFF))
        return cls(suite, local.keys[0].material, remote.keys[0].material, window=window)

    # -- raising API

    def protect(self, packet: bytes) -> bytes:
        """RTP -> SRTP."""
        return self._run(self._tx.protect, "protect", packet)

    def unprotect(self, packet: bytes) -> bytes:
        """SRTP -> RTP; `SrtpError` on authentication/replay failure."""
        return self._run(self._rx.unprotect, "unprotect", packet)

    def protect_rtcp(self, packet: bytes) -> bytes:
        return self._run(self._tx.protect_rtcp, "protect_rtcp", packet)

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        return self._run(self._rx.unprotect_rtcp, "unprotect_rtcp", packet)

    def _run(self, func: _Process, operation: str, packet: bytes) -> bytes:
        data = bytes(packet)
        if len(data) > MAX_PACKET:
            raise SrtpError(operation, f"packet of {len(data)} bytes is too long")
        try:
            return bytes(func(data))
        except pylibsrtp.Error as exc:
            raise SrtpError(operation, str(exc)) from None
        except (IndexError, ValueError, TypeError) as exc:  # pylibsrtp's own checks
            raise SrtpError(operation, str(exc) or type(exc).__name__) from None

    # -- counting API (hot path)

    def protect_or_drop(self, packet: bytes) -> bytes | None:
        try:
            out = self._run(self._tx.protect, "protect", packet)
        except SrtpError:
            self.stats.protect_failures += 1
            return None
        self.stats.protected += 1
        return out

    def unprotect_or_drop(self, packet: bytes) -> bytes | None:
        return self._unprotect_counted(self._rx.unprotect, "unprotect", packet)

    def protect_rtcp_or_drop(self, packet: bytes) -> bytes | None:
        try:
            out = self._run(self._tx.protect_rtcp, "protect_rtcp", packet)
        except SrtpError:
            self.stats.protect_failures += 1
            return None
        self.stats.protected += 1
        return out

    def unprotect_rtcp_or_drop(self, packet: bytes) -> bytes | None:
        return self._unprotect_counted(self._rx.unprotect_rtcp, "unprotect_rtcp", packet)

    def _unprotect_counted(self, func: _Process, operation: str, packet: bytes) -> bytes | None:
        try:
            out = self._run(func, operation, packet)
        except SrtpError as exc:
            if exc.is_auth_failure:
                self.stats.auth_failures += 1
            elif exc.is_replay:
                self.stats.replays += 1
            else:
                self.stats.other_failures += 1
            return None
        self.stats.unprotected += 1
        return out


class SrtpBridge:
    """Per-packet RTP/SRTP conversion between the two legs of a relayed call.

    ``a`` and ``b`` are each None (plain RTP on that leg) or the `SrtpSession` toward
    that leg's peer. Methods return the packet to send on the other leg, or None to drop
    it (failures are counted in the sessions' `SrtpStats`). Plain on both legs passes
    packets through untouched.
    """

    __slots__ = ("a", "b")

    def __init__(self, a: SrtpSession | None, b: SrtpSession | None) -> None:
        self.a = a
        self.b = b

    def a_to_b(self, packet: bytes) -> bytes | None:
        return _convert(self.a, self.b, packet)

    def b_to_a(self, packet: bytes) -> bytes | None:
        return _convert(self.b, self.a, packet)

    def a_to_b_rtcp(self, packet: bytes) -> bytes | None:
        return _convert_rtcp(self.a, self.b, packet)

    def b_to_a_rtcp(self, packet: bytes) -> bytes | None:
        return _convert_rtcp(self.b, self.a, packet)


def _convert(src: SrtpSession | None, dst: SrtpSession | None, packet: bytes) -> bytes | None:
    plain: bytes | None = packet if src is None else src.unprotect_or_drop(packet)
    if plain is None or dst is None:
        return plain
    return dst.protect_or_drop(plain)


def _convert_rtcp(src: SrtpSession | None, dst: SrtpSession | None, packet: bytes) -> bytes | None:
    plain: bytes | None = packet if src is None else src.unprotect_rtcp_or_drop(packet)
    if plain is None or dst is None:
        return plain
    return dst.protect_rtcp_or_drop(plain)
