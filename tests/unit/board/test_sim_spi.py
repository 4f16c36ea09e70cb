"""Emulated SPI: periphery's transfer() shape, chip models on chip selects, a floating MISO."""

from __future__ import annotations

import errno

import periphery
import pytest

from board.sim import SimBoard
from board.sim.spi import SimSpiBus, SimSpiError


class ShiftRegister:
    """A minimal chip model: MISO returns what MOSI carried one byte earlier."""

    def __init__(self) -> None:
        self.last = 0x00
        self.seen: list[bytes] = []

    def exchange(self, data: bytes) -> bytes:
        self.seen.append(data)
        out = bytes([self.last]) + data[:-1]
        self.last = data[-1]
        return out


class Liar:
    def exchange(self, data: bytes) -> bytes:
        return data + b"\x00"


def test_transfer_returns_the_type_it_was_given() -> None:
    bus = SimSpiBus("spi0")
    bus.attach(2, ShiftRegister())
    with bus.open(2, mode=3, max_speed=2_000_000) as dev:
        out_bytes = dev.transfer(b"\x01\x02")
        assert isinstance(out_bytes, bytes) and out_bytes == b"\x00\x01"
        out_array = dev.transfer(bytearray(b"\x03\x04"))
        assert isinstance(out_array, bytearray) and out_array == bytearray(b"\x02\x03")
        out_list = dev.transfer([5, 6, 7])
        assert out_list == [4, 5, 6]
        assert (dev.mode, dev.max_speed, dev.bit_order, dev.bits_per_word) == (
            3,
            2_000_000,
            "msb",
            8,
        )
    bus.close()


def test_empty_chip_select_floats_high() -> None:
    bus = SimSpiBus("spi1", chip_selects=4)
    with bus.open(3) as dev:
        assert dev.transfer(b"\x00\x12\x34") == b"\xff\xff\xff"
        assert dev.transfer([0, 0]) == [0xFF, 0xFF]
    model = ShiftRegister()
    bus.attach(3, model)
    assert bus.detach(3) is model
    with bus.open(3) as dev:
        assert dev.transfer(b"\x55") == b"\xff"
    bus.close()


def test_slave_sees_bytes_full_duplex() -> None:
    bus = SimSpiBus("spi0")
    model = ShiftRegister()
    bus.attach(0, model)
    with bus.open(0) as dev:
        dev.transfer([0x80 | 11, 0x00])
    assert model.seen == [bytes([0x8B, 0x00])]
    bus.close()


def test_errors_are_periphery_errors_with_errno() -> None:
    bus = SimSpiBus("spi0", chip_selects=2)
    with pytest.raises(periphery.SPIError) as no_cs:
        bus.open(5)
    assert no_cs.value.errno == errno.ENOENT
    bus.attach(1, Liar())
    dev = bus.open(1)
    with pytest.raises(SimSpiError) as bad_model:
        dev.transfer(b"\x01")
    assert bad_model.value.errno == errno.EIO
    assert "Liar answered 2 bytes to 1" in str(bad_model.value)
    with pytest.raises(SimSpiError) as busy:
        bus.attach(1, ShiftRegister())
    assert busy.value.errno == errno.EBUSY
    dev.close()
    with pytest.raises(SimSpiError) as closed:
        dev.transfer(b"\x00")
    assert closed.value.errno == errno.EBADF
    dev.close()  # closing twice is harmless, as in periphery
    bus.close()


def test_argument_checks_match_periphery() -> None:
    bus = SimSpiBus("spi0")
    with pytest.raises(ValueError):
        bus.open(0, mode=4)
    with bus.open(0) as dev:
        with pytest.raises(TypeError):
            dev.transfer("abc")  # type: ignore[call-overload]
        with pytest.raises(ValueError):
            dev.transfer([256])
        with pytest.raises(ValueError):
            dev.bit_order = "middle"
        dev.mode = 1
        assert dev.mode == 1
    bus.close()


def test_bus_close_closes_open_devices() -> None:
    bus = SimSpiBus("spi0")
    dev = bus.open(0)
    bus.close()
    with pytest.raises(SimSpiError):
        dev.transfer(b"\x00")
    with pytest.raises(SimSpiError):
        bus.open(0)


def test_board_opens_spi_by_bus_address(sim_board: SimBoard) -> None:
    model = ShiftRegister()
    sim_board.spi_bus("spi1").attach(2, model)  # where fxo3 sits
    with sim_board.open_spi(sim_board.definition.device("fxo3").bus, mode=3) as dev:
        assert dev.transfer(b"\xaa\xbb") == b"\x00\xaa"
    with sim_board.open_spi("spi0.7") as dev:  # fxs8: no chip model yet
        assert dev.transfer(b"\x00") == b"\xff"
