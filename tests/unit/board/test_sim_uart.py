"""The console null-modem: real pyserial on both ends of two cross-wired ptys."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
import serial

from board.sim import SimBoard
from board.sim.uart import NullModem

from .conftest import open_fds


async def start(cable: NullModem) -> asyncio.Task[None]:
    ready = asyncio.Event()
    task = asyncio.create_task(cable.run(ready.set))
    await asyncio.wait_for(ready.wait(), 1.0)
    return task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.fixture
async def running_board(sim_board: SimBoard) -> AsyncIterator[SimBoard]:
    task = await start(sim_board.uart(sim_board.definition.console_uart))
    yield sim_board
    await stop(task)


async def read_exactly(port: serial.Serial, n: int) -> bytes:
    """pyserial blocks; read in a thread so the relay on the event loop keeps running."""
    return await asyncio.to_thread(port.read, n)


async def until(predicate: object, timeout: float = 1.0) -> None:
    assert callable(predicate)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def test_console_round_trip_both_ways(running_board: SimBoard) -> None:
    board = running_board
    assert board.console_peer is not None
    with (
        serial.Serial(board.console_device, 115200, timeout=1) as firmware,
        serial.Serial(board.console_peer, 115200, timeout=1) as technician,
    ):
        firmware.write(b"skillepunkt login: ")
        assert await read_exactly(technician, 19) == b"skillepunkt login: "
        raw = b"admin\r\n\x03\x00\x7f\xff"  # raw mode: no CR/LF mangling, ^C is just a byte
        technician.write(raw)
        assert await read_exactly(firmware, len(raw)) == raw


async def test_peer_can_close_and_reopen(running_board: SimBoard) -> None:
    board = running_board
    cable = board.uart(board.definition.console_uart)
    assert board.console_peer is not None
    with serial.Serial(board.console_device, timeout=1) as firmware:
        for round_ in range(3):
            with serial.Serial(board.console_peer, timeout=1) as technician:
                technician.write(b"ping %d\r" % round_)
                assert await read_exactly(firmware, 7) == b"ping %d\r" % round_
                firmware.write(b"pong %d\r\n" % round_)
                assert await read_exactly(technician, 8) == b"pong %d\r\n" % round_
            # The technician is gone; the firmware keeps talking into the cable. Those
            # bytes wait in the pty; pyserial flushes its input on open, so the next
            # round still reads only fresh bytes.
            carried = cable.stats()["to_peer"]
            firmware.write(b"log line nobody reads\r\n")
            await until(lambda carried=carried: cable.stats()["to_peer"] > carried)
    assert cable.dropped == 0


async def test_firmware_end_can_close_and_reopen(running_board: SimBoard) -> None:
    board = running_board
    assert board.console_peer is not None
    with serial.Serial(board.console_peer, timeout=1) as technician:
        for _ in range(2):  # e.g. the console service restarted by the supervisor
            with serial.Serial(board.console_device, timeout=1) as firmware:
                firmware.write(b"> ")
                assert await read_exactly(technician, 2) == b"> "
                technician.write(b"help\r")
                assert await read_exactly(firmware, 5) == b"help\r"


async def test_cable_never_blocks_the_sender() -> None:
    cable = NullModem("test", buffer_limit=4096)
    task = await start(cable)
    try:
        with serial.Serial(cable.device, timeout=1, write_timeout=1) as firmware:
            blob = bytes(range(256)) * 512  # 128 KiB into a cable nobody reads
            await asyncio.to_thread(firmware.write, blob)
            await until(lambda: sum(cable.stats().values()) >= len(blob), timeout=2.0)
        assert cable.dropped > 0
        assert task.done() is False
    finally:
        await stop(task)
        cable.close()


async def test_service_restart_and_close_release_everything() -> None:
    before = open_fds()
    cable = NullModem("test")
    assert cable.name == "sim-test-cable"
    assert os.path.exists(cable.device) and os.path.exists(cable.peer)
    for _ in range(2):  # the supervisor may run the same service object again
        task = await start(cable)
        with serial.Serial(cable.device, timeout=1) as a, serial.Serial(cable.peer, timeout=1) as b:
            a.write(b"x")
            assert await read_exactly(b, 1) == b"x"
        await stop(task)
    cable.close()
    cable.close()
    assert open_fds() == before
    with pytest.raises(RuntimeError, match="closed"):
        await cable.run(lambda: None)
