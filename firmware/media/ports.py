"""RTP/RTCP port pairs for anchored media: even port for RTP, the odd one above for RTCP.

Freed pairs go to the back of the queue, so a pair is reused as late as possible: late
packets of an ended call then find a closed port instead of the next call.
"""

from __future__ import annotations

from collections import deque

DEFAULT_FIRST_PORT = 10_000
DEFAULT_LAST_PORT = 20_000


class PortsExhaustedError(RuntimeError):
    """Every pair in the range is in use: the box is at its media capacity."""


class PortAllocator:
    """Hands out even RTP ports (RTCP = port + 1) from ``first..last`` inclusive.

    A port is never handed out twice while in use; releasing one that is not in use
    is a bug in the caller and raises ValueError rather than corrupting the pool.
    """

    def __init__(self, first: int = DEFAULT_FIRST_PORT, last: int = DEFAULT_LAST_PORT) -> None:
        start = first + (first & 1)
        if not 1 <= first <= last <= 65_535 or start + 1 > last:
            raise ValueError(f"port range {first}-{last} holds no even/odd pair")
        self.first = first
        self.last = last
        self._free: deque[int] = deque(range(start, last, 2))
        self._used: set[int] = set()
        self.capacity = len(self._free)

    @property
    def available(self) -> int:
        return len(self._free)

    @property
    def in_use(self) -> int:
        return len(self._used)

    def allocate(self) -> int:
        """An even RTP port whose pair is now reserved for the caller."""
        if not self._free:
            raise PortsExhaustedError(
                f"no free RTP port pair in {self.first}-{self.last} "
                f"(all {self.capacity} pairs in use)"
            )
        port = self._free.popleft()
        self._used.add(port)
        return port

    def release(self, port: int) -> None:
        """Give a pair back (to the end of the queue)."""
        try:
            self._used.remove(port)
        except KeyError:
            raise ValueError(f"port {port} is not allocated") from None
        self._free.append(port)

    def is_allocated(self, port: int) -> bool:
        return port in self._used
