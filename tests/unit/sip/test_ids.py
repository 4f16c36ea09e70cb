"""Random identifiers: format, uniqueness, and no bytes shared across a fork."""

from __future__ import annotations

import os

import pytest

from firmware.sip import ids
from firmware.sip.hop import MAGIC_COOKIE, new_branch


def test_formats() -> None:
    assert len(ids.new_tag()) == 12 and int(ids.new_tag(), 16) >= 0
    call_id = ids.new_call_id("192.0.2.1")
    assert call_id.endswith("@192.0.2.1") and len(call_id.split("@")[0]) == 24
    branch = new_branch()
    assert branch.startswith(MAGIC_COOKIE) and len(branch) == len(MAGIC_COOKIE) + 24
    assert all(0 <= ids.random_bits(62) < 2**62 for _ in range(200))
    assert all(0 <= ids.random_bits(3) < 8 for _ in range(200))
    with pytest.raises(ValueError):
        ids.random_hex(0)
    with pytest.raises(ValueError):
        ids.random_bits(0)


def test_unique_across_pool_refills() -> None:
    tags = [ids.new_tag() for _ in range(5_000)]  # ~7 refills of the 4 KiB pool
    assert len(set(tags)) == len(tags)
    # the bits are spread: every hex digit shows up in every position
    for position in range(12):
        assert len({t[position] for t in tags}) == 16


def test_fork_does_not_share_bytes() -> None:
    ids.new_tag()  # the pool holds bytes now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        os.write(write, "".join(ids.new_tag() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    try:
        child = b""
        while chunk := os.read(read, 4096):
            child += chunk
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    mine = "".join(ids.new_tag() for _ in range(10))
    assert len(child) == 120 and child.decode() != mine
