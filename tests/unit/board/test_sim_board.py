"""The sim board as the daemon sees it: Board protocol, services, describe(), clean close."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from board import open_board
from board.base import BoardError
from board.sim import SimBoard
from firmware.system.supervisor import Supervisor

from .conftest import open_fds


class FakePhone:
    def describe(self) -> dict[str, object]:
        return {"port": "fxs1", "hook": "on"}


def test_open_board_gives_the_sim(tmp_path: Path) -> None:
    board = open_board("sim", tmp_path)
    try:
        assert isinstance(board, SimBoard)
        assert board.name == "sim" and board.definition.name == "sim"
        assert os.path.exists(board.console_device)
        assert board.console_peer is not None and os.path.exists(board.console_peer)
        assert board.console_device != board.console_peer
        assert list(tmp_path.iterdir()) == []  # the daemon, not the board, writes console.pty
    finally:
        board.close()


def test_services_are_the_cables_and_the_clock(sim_board: SimBoard) -> None:
    names = [s.name for s in sim_board.services()]
    assert sorted(names) == ["sim-console-cable", "sim-dect1-cable", "sim-pcm-clock"]
    assert [s.name for s in sim_board.services()] == names  # same objects every call


def test_describe_is_json_and_lists_devices(sim_board: SimBoard) -> None:
    info = json.loads(json.dumps(sim_board.describe()))
    assert info["board"] == "sim"
    assert info["console"]["device"] == sim_board.console_device
    by_name = {d["name"]: d for d in info["devices"]}
    assert by_name["fxs1"] == {
        "name": "fxs1",
        "kind": "fxs",
        "chip": "si3215",
        "bus": "spi0.0",
        "irq_line": 0,
        "reset_line": 8,
        "timeslots": [0],
    }
    assert len(by_name["pri1"]["timeslots"]) == 30
    assert info["attached"] == []
    assert set(info["buses"]["spi"]) == {"spi0", "spi1"}
    assert info["buses"]["pcm"]["timeslots"] == 64


def test_virtual_device_registry(sim_board: SimBoard) -> None:
    phone = FakePhone()
    sim_board.attach_virtual("phone-fxs1", phone)
    sim_board.attach_virtual("pstn-fxo1", object())
    with pytest.raises(BoardError, match="already attached"):
        sim_board.attach_virtual("phone-fxs1", FakePhone())
    attached = sim_board.describe()["attached"]
    assert attached[0] == {"name": "phone-fxs1", "type": "FakePhone", "port": "fxs1", "hook": "on"}
    assert attached[1] == {"name": "pstn-fxo1", "type": "object"}
    assert sim_board.detach_virtual("phone-fxs1") is phone
    with pytest.raises(BoardError, match="no virtual device named 'phone-fxs1'"):
        sim_board.detach_virtual("phone-fxs1")
    assert list(sim_board.virtual) == ["pstn-fxo1"]


def test_bus_lookups_give_precise_errors(sim_board: SimBoard) -> None:
    with pytest.raises(BoardError, match="no SPI bus 'spi2'"):
        sim_board.open_spi("spi2.0")
    with pytest.raises(BoardError, match="'uart0' is not a spi address"):
        sim_board.open_spi("uart0")
    with pytest.raises(BoardError, match="no HDLC channel 'hdlc7'"):
        sim_board.hdlc("hdlc7")
    with pytest.raises(BoardError, match="no UART 'uart3'"):
        sim_board.uart("uart3")
    assert sim_board.uart("uart1").device != sim_board.console_device  # the DECT module's UART


def test_close_releases_every_fd(tmp_path: Path) -> None:
    SimBoard(tmp_path).close()  # warm up lazy imports and caches before counting
    before = open_fds()
    for _ in range(3):
        board = SimBoard(tmp_path)
        board.open_gpio("fxs1-irq", "in", edge="both")
        board.open_spi("spi0.0")
        assert open_fds() > before
        board.close()
        board.close()
        assert open_fds() == before


async def test_services_run_under_the_supervisor(sim_board: SimBoard) -> None:
    supervisor = Supervisor()
    for service in sim_board.services():
        supervisor.add(service)
    task = asyncio.create_task(supervisor.run())
    await asyncio.wait_for(supervisor.all_ready.wait(), 1.0)
    await asyncio.sleep(0.1)
    assert supervisor.overall() == "ok"
    assert sim_board.pcm.ticks >= 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert {s.state.value for s in supervisor.status()} == {"stopped"}
