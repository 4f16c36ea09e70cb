"""Reliable provisional responses (RFC 3262, 100rel/PRACK), one leg at a time.

On leg B the box is the UAC: it offers ``Supported: 100rel`` and PRACKs every reliable
provisional once (by RSeq). On leg A the box is the UAS: when the caller requires
100rel (or supports it and the provisional carries SDP, i.e. early media), the box
sends the provisional reliably: RSeq, retransmitted from T1 doubling until the PRACK
comes, one outstanding at a time (§3), and the final answer waits for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ids import random_bits
from ..message import Request, Response


@dataclass(frozen=True)
class RAck:
    rseq: int
    cseq: int
    method: str

    def __str__(self) -> str:
        return f"{self.rseq} {self.cseq} {self.method}"


def parse_rseq(response: Response) -> int | None:
    """The RSeq of a reliable provisional (Require: 100rel), else None."""
    if response.status >= 200 or response.status == 100 or "100rel" not in response.require:
        return None
    try:
        value = int((response.headers.get("RSeq") or "").strip())
    except ValueError:
        return None
    return value if 1 <= value < 2**32 else None


def parse_rack(request: Request) -> RAck | None:
    parts = (request.headers.get("RAck") or "").split()
    if len(parts) != 3:
        return None
    try:
        return RAck(int(parts[0]), int(parts[1]), parts[2].upper())
    except ValueError:
        return None


def wants_reliable(invite: Request, has_sdp: bool) -> bool:
    """Whether a provisional to this INVITE goes reliably (§3)."""
    if "100rel" in invite.require:
        return True
    return has_sdp and "100rel" in invite.supported


class ReliableSender:
    """RSeq numbering for one INVITE transaction the box answers (leg A)."""

    def __init__(self) -> None:
        self.next_rseq = random_bits(31) % (2**31 - 1) + 1  # §3: start below 2**31
        self.pending: int | None = None  # the RSeq not yet PRACKed

    def stamp(self) -> list[tuple[str, str]]:
        """Headers making the next provisional reliable; remembers it as pending."""
        rseq = self.next_rseq
        self.next_rseq += 1
        self.pending = rseq
        return [("Require", "100rel"), ("RSeq", str(rseq))]

    def acknowledge(self, rack: RAck, invite_cseq: int) -> bool:
        """A PRACK: True when it matches the pending provisional (then no longer pending)."""
        if self.pending is None or rack.method != "INVITE" or rack.cseq != invite_cseq:
            return False
        if rack.rseq != self.pending:
            return False
        self.pending = None
        return True


class ReliableReceiver:
    """PRACK bookkeeping for one INVITE the box sent (leg B): each RSeq once, in order."""

    def __init__(self) -> None:
        self.last: int | None = None

    def accept(self, rseq: int) -> bool:
        """True for a new reliable provisional to PRACK; False for a retransmission or
        one out of order (§4: only RSeq = last + 1 after the first)."""
        if self.last is not None and rseq != self.last + 1:
            return False
        self.last = rseq
        return True
