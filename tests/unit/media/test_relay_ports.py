"""The RTP port allocator: even ports, no double hand-out, clear exhaustion, late reuse."""

from __future__ import annotations

import pytest

from firmware.media.ports import PortAllocator, PortsExhaustedError


def test_even_ports_with_room_for_rtcp() -> None:
    pool = PortAllocator(10001, 10010)  # odd start rounds up; 10010 cannot host a pair
    assert pool.capacity == 4
    ports = [pool.allocate() for _ in range(4)]
    assert ports == [10002, 10004, 10006, 10008]
    assert all(p % 2 == 0 and p + 1 <= 10010 for p in ports)


def test_default_range() -> None:
    pool = PortAllocator()
    assert pool.capacity == 5000 and pool.allocate() == 10000


def test_never_twice_and_exhaustion() -> None:
    pool = PortAllocator(20000, 20009)
    ports = {pool.allocate() for _ in range(pool.capacity)}
    assert len(ports) == 5 and pool.available == 0 and pool.in_use == 5
    with pytest.raises(PortsExhaustedError, match="20000-20009"):
        pool.allocate()
    pool.release(20004)
    assert pool.allocate() == 20004


def test_released_ports_are_reused_last() -> None:
    pool = PortAllocator(20000, 20005)
    first = pool.allocate()
    pool.release(first)
    assert pool.allocate() != first  # late packets of the old call hit a closed port


def test_release_errors() -> None:
    pool = PortAllocator(20000, 20005)
    with pytest.raises(ValueError):
        pool.release(20000)
    port = pool.allocate()
    assert pool.is_allocated(port)
    pool.release(port)
    assert not pool.is_allocated(port)
    with pytest.raises(ValueError):
        pool.release(port)
    assert pool.available == pool.capacity


@pytest.mark.parametrize("first,last", [(20000, 20000), (20001, 20002), (0, 10), (20010, 20000)])
def test_bad_ranges(first: int, last: int) -> None:
    with pytest.raises(ValueError):
        PortAllocator(first, last)
