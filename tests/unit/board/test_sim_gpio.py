"""Emulated GPIO: levels, directions, and edge events that really arrive through ``fd``."""

from __future__ import annotations

import asyncio
import errno
import select

import periphery
import pytest

from board.sim import SimBoard
from board.sim.gpio import EdgeEvent, SimGpioChip, SimGpioError

from .conftest import open_fds


def readable(fd: int) -> bool:
    r, _, _ = select.select([fd], [], [], 0)
    return bool(r)


def test_input_follows_what_the_hardware_drives() -> None:
    chip = SimGpioChip(8)
    with chip.open(3, "in") as line:
        assert line.read() is False
        chip.drive(3, True)
        assert line.read() is True
        line.inverted = True  # active-low, as a SLIC's IRQ is
        assert line.read() is False
    chip.close()


def test_output_is_seen_by_the_hardware() -> None:
    chip = SimGpioChip(8)
    reset = chip.open(5, "high")
    assert reset.direction == "out"
    assert chip.level(5) is True
    reset.write(False)
    assert chip.level(5) is False
    reset.inverted = True
    reset.write(True)  # logical true on an active-low line pulls it low
    assert chip.level(5) is False
    assert reset.read() is True
    reset.close()
    chip.close()


def test_edges_are_queued_on_the_fd_with_timestamps() -> None:
    chip = SimGpioChip(8)
    line = chip.open(1, "in", edge="both")
    assert not readable(line.fd)
    assert line.poll(0) is False
    chip.drive(1, True, timestamp_ns=1_000)
    chip.drive(1, True)  # no change, no edge
    chip.drive(1, False, timestamp_ns=2_000)
    assert readable(line.fd)
    assert line.poll(0.1) is True
    assert line.read_event() == EdgeEvent("rising", 1_000)
    assert line.read_event() == EdgeEvent("falling", 2_000)
    assert not readable(line.fd)
    chip.drive(1, True)
    event = line.read_event()
    assert event.edge == "rising" and event.timestamp > 2_000
    line.close()
    chip.close()


def test_edge_filter_and_inversion() -> None:
    chip = SimGpioChip(8)
    line = chip.open(0, "in", edge="falling", inverted=True)
    chip.drive(0, True)  # physical rise = logical fall on an active-low line
    chip.drive(0, False)  # logical rise: filtered out
    assert line.read_event().edge == "falling"
    assert not readable(line.fd)
    line.close()
    chip.close()


def test_reconfiguring_drops_pending_events() -> None:
    chip = SimGpioChip(8)
    line = chip.open(0, "in", edge="both")
    chip.drive(0, True)
    assert readable(line.fd)
    line.edge = "rising"
    assert not readable(line.fd)
    line.edge = "none"
    chip.drive(0, False)
    assert not readable(line.fd)
    line.close()
    chip.close()


async def test_edge_wakes_an_asyncio_reader() -> None:
    chip = SimGpioChip(16, line_names={7: "fxs1-irq"})
    line = chip.open("fxs1-irq", "in", edge="falling", inverted=False)
    assert line.line == 7 and line.name == "fxs1-irq"
    loop = asyncio.get_running_loop()
    got: asyncio.Future[EdgeEvent] = loop.create_future()

    def on_edge() -> None:
        if not got.done():
            got.set_result(line.read_event())

    loop.add_reader(line.fd, on_edge)
    try:
        chip.drive(7, True)
        loop.call_later(0.01, chip.drive, 7, False)  # the chip asserts its IRQ (active low)
        event = await asyncio.wait_for(got, 1.0)
    finally:
        loop.remove_reader(line.fd)
    assert event.edge == "falling"
    line.close()
    chip.close()


def test_bias_decides_an_undriven_line() -> None:
    chip = SimGpioChip(4)
    line = chip.open(2, "in", bias="pull_up", edge="both")
    assert line.read() is True
    chip.drive(2, False)
    assert line.read() is False
    chip.release(2)
    assert line.read() is True
    assert [line.read_event().edge for _ in range(2)] == ["falling", "rising"]
    line.close()
    chip.close()


def test_errors_carry_errno_and_are_periphery_errors() -> None:
    chip = SimGpioChip(4)
    irq = chip.open(0, "in")
    with pytest.raises(periphery.GPIOError) as write_input:
        irq.write(True)
    assert write_input.value.errno == errno.EPERM
    with pytest.raises(SimGpioError) as busy:
        chip.open(0, "out")
    assert busy.value.errno == errno.EBUSY
    with pytest.raises(SimGpioError) as no_line:
        chip.open(9, "in")
    assert no_line.value.errno == errno.EINVAL
    with pytest.raises(SimGpioError, match="edge not set"):
        irq.read_event()
    with pytest.raises(LookupError):
        chip.open("nope", "in")
    with pytest.raises(ValueError):
        chip.open(1, "sideways")
    with pytest.raises(TypeError):
        irq.write(1)  # type: ignore[arg-type]
    led = chip.open(1, "out")
    with pytest.raises(SimGpioError) as contention:
        chip.drive(1, True)
    assert contention.value.errno == errno.EBUSY
    with pytest.raises(SimGpioError, match="cannot poll output"):
        led.poll(0)
    with pytest.raises(SimGpioError, match="cannot set edge on output"):
        led.edge = "both"
    irq.close()
    with pytest.raises(SimGpioError) as closed:
        irq.read()
    assert closed.value.errno == errno.EBADF
    chip.open(0, "in").close()  # released on close: can be requested again
    led.close()
    chip.close()


def test_direction_change_like_periphery() -> None:
    chip = SimGpioChip(4)
    line = chip.open(0, "in", edge="both")
    line.direction = "high"
    assert (line.direction, line.edge, chip.level(0)) == ("out", "none", True)
    line.direction = "in"
    chip.drive(0, False)
    assert line.read() is False
    line.close()
    chip.close()


def test_lines_close_their_fds() -> None:
    before = open_fds()
    chip = SimGpioChip(8)
    lines = [chip.open(i, "in", edge="both") for i in range(4)]
    assert open_fds() == before + 8
    lines[0].close()
    chip.close()  # closes the rest
    assert open_fds() == before
    assert all(chip.owner(i) is None for i in range(8))


def test_board_names_lines_after_the_definition(sim_board: SimBoard) -> None:
    fxs3 = sim_board.definition.device("fxs3")
    assert fxs3.irq_line is not None
    sim_board.gpio.drive(fxs3.irq_line, True)  # the SLIC's open-drain IRQ idles high
    with sim_board.open_gpio("fxs3-irq", "in", edge="rising", inverted=True) as irq:
        assert irq.line == fxs3.irq_line
        assert irq.read() is False
        sim_board.gpio.drive(fxs3.irq_line, False)  # asserted: low, i.e. logically active
        assert irq.poll(1.0)
        assert irq.read_event().edge == "rising"
    with sim_board.open_gpio("led-power", "out") as led:
        led.write(True)
        assert sim_board.gpio.level(led.line) is True
