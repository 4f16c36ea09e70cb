"""Symmetric RTP latching as a pure decision (no sockets, injected clock).

Phones behind NAT put their private address in SDP; their packets arrive from the NAT's
public mapping. So a relay leg sends to the source its peer's packets actually come
from, not to the SDP address. The rule, per socket (RTP and RTCP latch separately,
since a NAT maps each port on its own):

1. Only a well-formed packet (RTP/RTCP version 2, long enough) can latch; the relay
   checks that before asking.
2. With no latch yet, the first such packet latches, from wherever it comes.
3. A packet from the address the SDP announced always latches at once: that address
   was signalled by the authenticated peer, so it beats a guess.
4. Once latched, other sources are ignored, unless the latched source has been silent
   for ``relatch_after`` seconds (a phone whose NAT mapping changed). A stranger
   cannot take over a stream that is still talking.
5. A different SDP remote (a re-INVITE moved the stream) clears the latch: back to
   rule 2. The first SDP remote does not: the callee's media may overtake its answer.

Silence is judged without a clock read per packet: the relay passes its running count
of packets from the latched source and the latch notes when that count last moved, at
the moments a stranger knocks. A stream thus re-latches between ``relatch_after`` and
twice that after the old source stopped, which is what the hot path can afford.
"""

from __future__ import annotations

from typing import Any

#: A socket address as asyncio reports it: (host, port) or (host, port, flow, scope).
Addr = tuple[Any, ...]

#: RTP fixed header length (RFC 3550 §5.1).
RTP_HEADER = 12
#: Shortest RTCP packet: a receiver report with no report blocks.
RTCP_HEADER = 8


def is_rtp(data: bytes) -> bool:
    """Long enough for an RTP header, version 2."""
    return len(data) >= RTP_HEADER and data[0] & 0xC0 == 0x80


def is_rtcp(data: bytes) -> bool:
    """Version 2 with an RTCP packet type (192-223, the range RFC 5761 reserves)."""
    return len(data) >= RTCP_HEADER and data[0] & 0xC0 == 0x80 and 192 <= data[1] <= 223


class Latch:
    """Which source one relay socket accepts, and where replies toward that side go."""

    __slots__ = ("_seen_at", "_seen_count", "expected", "relatch_after", "source")

    def __init__(self, relatch_after: float = 2.0) -> None:
        self.relatch_after = relatch_after
        self.expected: Addr | None = None
        self.source: Addr | None = None
        self._seen_count = 0
        self._seen_at = 0.0

    @property
    def target(self) -> Addr | None:
        """Where to send toward this side: the latched source, else the SDP address."""
        return self.source if self.source is not None else self.expected

    def reset(self, expected: Addr | None) -> None:
        """A new SDP remote: expect ``expected``, and forget the latch if one was known."""
        if self.expected is not None:
            self.source = None
        self.expected = expected

    def consider(self, source: Addr, now: float, latched_count: int) -> bool:
        """A well-formed packet came from ``source``, which is not the latched source.

        ``latched_count`` is how many packets the latched source has sent so far.
        Returns True when the socket should latch onto ``source`` (and forward it).
        """
        if self.source is None or source == self.expected:
            self._latch(source, now, latched_count)
            return True
        if latched_count != self._seen_count:
            self._seen_count = latched_count
            self._seen_at = now
            return False
        if now - self._seen_at >= self.relatch_after:
            self._latch(source, now, latched_count)
            return True
        return False

    def _latch(self, source: Addr, now: float, latched_count: int) -> None:
        self.source = source
        self._seen_count = latched_count
        self._seen_at = now
