"""Random identifiers for the SIP hot path: branches, tags, Call-IDs, o= session ids.

These need to be unique and unguessable by an off-path attacker (a guessed tag or
branch lets one inject a BYE or a CANCEL), so they come from the OS CSPRNG like
`secrets` -- but `secrets.token_hex` costs a getrandom() system call and a few Python
layers each time, and a B2BUA call needs about ten of them. Here os.urandom is read
4 KiB at a time and handed out in slices: the same randomness, one system call per
~300 identifiers. Nonces and passwords stay with `secrets` (firmware.sip.digest).

The pool is per process; a forked child drops what it inherited before its first
use, so parent and child never share bytes.
"""

from __future__ import annotations

import os
import threading

_POOL_BYTES = 4096


class _HexPool:
    __slots__ = ("_hex", "_lock", "_pos")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hex = ""
        self._pos = 0

    def forget(self) -> None:
        """Drop what is left (a forked child must not reuse the parent's bytes)."""
        self._lock = threading.Lock()
        self._hex = ""
        self._pos = 0

    def take(self, nbytes: int) -> str:
        width = 2 * nbytes
        if not 0 < width <= 2 * _POOL_BYTES:
            raise ValueError(f"cannot take {nbytes} random bytes at once")
        with self._lock:
            pos = self._pos
            if pos + width > len(self._hex):
                self._hex = os.urandom(_POOL_BYTES).hex()
                pos = 0
            self._pos = pos + width
            return self._hex[pos : pos + width]


_pool = _HexPool()
os.register_at_fork(after_in_child=_pool.forget)


def random_hex(nbytes: int) -> str:
    """``nbytes`` random bytes from the OS CSPRNG as lower-case hex (like token_hex)."""
    return _pool.take(nbytes)


def random_bits(bits: int) -> int:
    """A random non-negative integer below ``2**bits`` (like secrets.randbits)."""
    if bits < 1:
        raise ValueError("bits must be positive")
    return int(_pool.take((bits + 7) // 8), 16) >> (-bits % 8)


def new_tag() -> str:
    """A From/To tag: 48 random bits (RFC 3261 §19.3 asks for at least 32)."""
    return _pool.take(6)


def new_call_id(host: str) -> str:
    """A Call-ID: 96 random bits @ host (globally unique, §8.1.1.4)."""
    return f"{_pool.take(12)}@{host}"
