"""Emulated SPI controller: chip models hang on chip selects, drivers get periphery's SPI shape.

A driver written against ``periphery.SPI`` (``transfer``, ``mode``, ``max_speed``,
``close``, context manager) runs unchanged on a ``SimSpiDevice``; errors subclass
``periphery.SPIError`` so the driver's ``except`` clauses catch both.
"""

from __future__ import annotations

import errno
import os
from types import TracebackType
from typing import Protocol, overload

from periphery import SPIError


class SimSpiError(SPIError):
    """An SPI error with an errno, like periphery's (EBADF after close, ENOENT for no such CS)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, f"{message}: {os.strerror(code)}")


class SpiSlave(Protocol):
    """A chip model: one full-duplex exchange per chip-select assertion, same length out as in."""

    def exchange(self, data: bytes) -> bytes: ...


class SimSpiBus:
    """One SPI controller (``spi0``) with a fixed number of chip selects."""

    def __init__(self, name: str, chip_selects: int = 8) -> None:
        if chip_selects < 1:
            raise ValueError("an SPI bus needs at least one chip select")
        self.name = name
        self.chip_selects = chip_selects
        self._slaves: dict[int, SpiSlave] = {}
        self._open: set[SimSpiDevice] = set()
        self.closed = False

    def _check_cs(self, cs: int) -> None:
        if not 0 <= cs < self.chip_selects:
            raise SimSpiError(errno.ENOENT, f"{self.name}: no chip select {cs}")

    def attach(self, cs: int, slave: SpiSlave) -> None:
        """Put a chip model on chip select ``cs`` (hardware side)."""
        self._check_cs(cs)
        if cs in self._slaves:
            raise SimSpiError(errno.EBUSY, f"{self.name}.{cs}: a chip is already attached")
        self._slaves[cs] = slave

    def detach(self, cs: int) -> SpiSlave | None:
        """Take the chip off ``cs``; the chip select floats again (reads 0xFF)."""
        return self._slaves.pop(cs, None)

    def slave(self, cs: int) -> SpiSlave | None:
        return self._slaves.get(cs)

    @property
    def attached(self) -> dict[int, SpiSlave]:
        return dict(self._slaves)

    def open(
        self,
        cs: int,
        mode: int = 0,
        max_speed: float = 1_000_000,
        bit_order: str = "msb",
        bits_per_word: int = 8,
        extra_flags: int = 0,
    ) -> SimSpiDevice:
        """Open chip select ``cs`` as periphery's ``SPI(devpath, mode, max_speed, ...)`` would."""
        if self.closed:
            raise SimSpiError(errno.EBADF, f"{self.name}: bus is closed")
        self._check_cs(cs)
        dev = SimSpiDevice(self, cs, mode, max_speed, bit_order, bits_per_word, extra_flags)
        self._open.add(dev)
        return dev

    def _exchange(self, cs: int, data: bytes) -> bytes:
        slave = self._slaves.get(cs)
        if slave is None:
            return b"\xff" * len(data)  # nothing drives MISO: the pull-up reads all ones
        reply = slave.exchange(data)
        if len(reply) != len(data):
            raise SimSpiError(
                errno.EIO,
                f"{self.name}.{cs}: chip model {type(slave).__name__} answered "
                f"{len(reply)} bytes to {len(data)}",
            )
        return reply

    def _forget(self, dev: SimSpiDevice) -> None:
        self._open.discard(dev)

    def close(self) -> None:
        """Close every device opened on the bus and drop the chip models."""
        for dev in list(self._open):
            dev.close()
        self._slaves.clear()
        self.closed = True


class SimSpiDevice:
    """An opened chip select, with python-periphery's ``SPI`` shape."""

    def __init__(
        self,
        bus: SimSpiBus,
        cs: int,
        mode: int,
        max_speed: float,
        bit_order: str,
        bits_per_word: int,
        extra_flags: int,
    ) -> None:
        self._bus: SimSpiBus | None = bus
        self.cs = cs
        self._devpath = f"sim:{bus.name}.{cs}"
        self._mode = 0
        self._max_speed: float = 0
        self._bit_order = "msb"
        self._bits_per_word = 8
        self._extra_flags = 0
        self.mode = mode
        self.max_speed = max_speed
        self.bit_order = bit_order
        self.bits_per_word = bits_per_word
        self.extra_flags = extra_flags

    def __enter__(self) -> SimSpiDevice:
        return self

    def __exit__(
        self,
        t: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _live_bus(self, what: str) -> SimSpiBus:
        if self._bus is None or self._bus.closed:
            raise SimSpiError(errno.EBADF, f"{what} {self._devpath}")
        return self._bus

    @overload
    def transfer(self, data: bytes) -> bytes: ...
    @overload
    def transfer(self, data: bytearray) -> bytearray: ...
    @overload
    def transfer(self, data: list[int]) -> list[int]: ...
    def transfer(self, data: bytes | bytearray | list[int]) -> bytes | bytearray | list[int]:
        """Shift ``data`` out and return what was shifted in, as the same type."""
        if not isinstance(data, bytes | bytearray | list):
            raise TypeError("Invalid data type, should be bytes, bytearray, or list.")
        try:
            out = bytes(data)
        except (ValueError, TypeError):
            raise ValueError("Invalid data bytes.") from None
        reply = self._live_bus("SPI transfer on")._exchange(self.cs, out)
        if isinstance(data, bytes):
            return bytes(reply)
        if isinstance(data, bytearray):
            return bytearray(reply)
        return list(reply)

    def close(self) -> None:
        if self._bus is not None:
            self._bus._forget(self)
            self._bus = None

    @property
    def devpath(self) -> str:
        return self._devpath

    @property
    def mode(self) -> int:
        return self._mode

    @mode.setter
    def mode(self, mode: int) -> None:
        if not isinstance(mode, int):
            raise TypeError("Invalid mode type, should be integer.")
        if mode not in (0, 1, 2, 3):
            raise ValueError("Invalid mode, can be 0, 1, 2, 3.")
        self._live_bus("Setting SPI mode on")
        self._mode = mode

    @property
    def max_speed(self) -> float:
        return self._max_speed

    @max_speed.setter
    def max_speed(self, max_speed: float) -> None:
        if not isinstance(max_speed, int | float) or isinstance(max_speed, bool):
            raise TypeError("Invalid max_speed type, should be integer or float.")
        if max_speed <= 0:
            raise ValueError("Invalid max_speed, should be positive.")
        self._live_bus("Setting SPI max speed on")
        self._max_speed = max_speed

    @property
    def bit_order(self) -> str:
        return self._bit_order

    @bit_order.setter
    def bit_order(self, bit_order: str) -> None:
        if not isinstance(bit_order, str):
            raise TypeError("Invalid bit_order type, should be string.")
        if bit_order.lower() not in ("msb", "lsb"):
            raise ValueError('Invalid bit_order, can be "msb" or "lsb".')
        self._live_bus("Setting SPI bit order on")
        self._bit_order = bit_order.lower()

    @property
    def bits_per_word(self) -> int:
        return self._bits_per_word

    @bits_per_word.setter
    def bits_per_word(self, bits_per_word: int) -> None:
        if not isinstance(bits_per_word, int):
            raise TypeError("Invalid bits_per_word type, should be integer.")
        if not 0 <= bits_per_word <= 255:
            raise ValueError("Invalid bits_per_word, must be 0-255.")
        self._live_bus("Setting SPI bits per word on")
        self._bits_per_word = bits_per_word

    @property
    def extra_flags(self) -> int:
        return self._extra_flags

    @extra_flags.setter
    def extra_flags(self, extra_flags: int) -> None:
        if not isinstance(extra_flags, int):
            raise TypeError("Invalid extra_flags type, should be integer.")
        self._live_bus("Setting SPI extra flags on")
        self._extra_flags = extra_flags

    def __repr__(self) -> str:
        state = "closed" if self._bus is None else f"mode={self._mode}, max_speed={self._max_speed}"
        return f"<SimSpiDevice {self._devpath} {state}>"
