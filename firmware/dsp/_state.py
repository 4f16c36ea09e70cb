"""Ownership of C states: close() / context manager, and a finalizer as a safety net."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

from firmware.dsp.errors import DspError

Free = tuple[Callable[[Any], object], Any]


class CState:
    """Owns C pointers that are freed exactly once: by ``close()``, ``with`` or collection.

    Subclasses allocate, then call ``_own`` with the ``(free_function, pointer)`` pairs (freed
    last-first) and whatever C may still reach (callbacks, buffers), kept alive until then.
    """

    _finalizer: weakref.finalize[Any, Any] | None = None

    def _own(self, frees: Sequence[Free], *keep: object) -> None:
        self._finalizer = weakref.finalize(self, _free_all, list(frees), keep)

    @property
    def closed(self) -> bool:
        return self._finalizer is None or not self._finalizer.alive

    def _check_open(self) -> None:
        if self.closed:
            raise DspError(f"{type(self).__name__} is closed")

    def close(self) -> None:
        """Free the C state; idempotent."""
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _free_all(frees: list[Free], keep: tuple[object, ...]) -> None:
    while frees:
        free, ptr = frees.pop()
        free(ptr)
    del keep


class CallbackGuard:
    """Keeps exceptions raised in Python callbacks from crossing into C.

    A C callback wrapper calls ``run``; the first exception is stored and ``reraise`` raises
    it once the C call has returned.
    """

    def __init__(self) -> None:
        self._error: BaseException | None = None

    def run(self, fn: Callable[..., object], *args: object) -> None:
        if self._error is not None:
            return
        try:
            fn(*args)
        except BaseException as exc:  # stored, re-raised after the C call returns
            self._error = exc

    def reraise(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error
