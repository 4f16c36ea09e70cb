"""Board definitions: the sim board loads, and each kind of mistake is a precise BoardError."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from board.base import BoardError
from board.definition import (
    BoardDefinition,
    BusAddress,
    BusKind,
    DeviceDefinition,
    DeviceKind,
    board_definition_from_dict,
    load_board_definition,
)
from board.sim import DEFINITION_FILE


def sim_yaml() -> dict[str, Any]:
    data = yaml.safe_load(DEFINITION_FILE.read_text())
    assert isinstance(data, dict)
    return data


def test_sim_board_definition_loads() -> None:
    board = load_board_definition(DEFINITION_FILE)
    assert board.name == "sim"
    assert board.console_uart == "uart0"
    counts = {kind: len(board.of_kind(kind)) for kind in DeviceKind}
    assert counts[DeviceKind.FXS] == 8
    assert counts[DeviceKind.FXO] == 4
    assert counts[DeviceKind.BRI] == 2
    assert counts[DeviceKind.PRI] == 1
    assert counts[DeviceKind.DECT] == 1
    assert counts[DeviceKind.CONSOLE] == 1
    assert counts[DeviceKind.LED] >= 3
    assert [d.name for d in board.of_kind(DeviceKind.FXS)] == [f"fxs{i}" for i in range(1, 9)]
    fxs1 = board.device("fxs1")
    assert (fxs1.chip, fxs1.bus, fxs1.timeslots) == ("si3215", "spi0.0", (0,))
    assert fxs1.irq_line is not None and fxs1.reset_line is not None
    assert fxs1.address == BusAddress(BusKind.SPI, 0, 0)
    assert [board.device(f"fxo{i}").bus for i in range(1, 5)] == [f"spi1.{i}" for i in range(4)]
    assert [board.device(f"fxo{i}").timeslots for i in range(1, 5)] == [(8,), (9,), (10,), (11,)]
    assert board.device("pri1").timeslots == tuple(range(16, 46))
    assert board.device("dect1").bus == "uart1"
    assert board.gpio_line_names()[fxs1.irq_line] == "fxs1-irq"


def test_definitions_are_frozen_data() -> None:
    board = load_board_definition(DEFINITION_FILE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        board.name = "other"  # type: ignore[misc]
    assert board == load_board_definition(DEFINITION_FILE)


def test_definition_built_in_code_is_checked_too() -> None:
    console = DeviceDefinition("console", DeviceKind.CONSOLE, "uart", "uart0")
    fxs = DeviceDefinition("fxs1", DeviceKind.FXS, "si3215", "spi0.0", 0, 1, (0,))
    assert BoardDefinition("tiny", (console, fxs), "uart0", 8).device("fxs1") is fxs
    with pytest.raises(BoardError, match=r"device 'fxs1': timeslot 8 out of range 0\.\.7"):
        BoardDefinition("tiny", (console, dataclasses.replace(fxs, timeslots=(8,))), "uart0", 8)
    with pytest.raises(BoardError, match="exactly 2 timeslots, not 1"):
        DeviceDefinition("bri1", DeviceKind.BRI, "hdlc", "hdlc0", timeslots=(3,))


def _device(data: dict[str, Any], name: str) -> dict[str, Any]:
    for dev in data["devices"]:
        if dev["name"] == name:
            assert isinstance(dev, dict)
            return dev
    raise KeyError(name)


def _set(name: str, key: str, value: object) -> Any:
    def mutate(data: dict[str, Any]) -> None:
        _device(data, name)[key] = value

    return mutate


def _top(key: str, value: object) -> Any:
    def mutate(data: dict[str, Any]) -> None:
        data[key] = value

    return mutate


def _drop_device(name: str) -> Any:
    def mutate(data: dict[str, Any]) -> None:
        data["devices"] = [d for d in data["devices"] if d["name"] != name]

    return mutate


def _add_device(**dev: object) -> Any:
    def mutate(data: dict[str, Any]) -> None:
        data["devices"].append(dev)

    return mutate


BAD = {
    "duplicate name": (_set("fxs2", "name", "fxs1"), "device 'fxs1' is defined twice"),
    "duplicate bus": (_set("fxs2", "bus", "spi0.0"), "bus spi0.0 is already taken by 'fxs1'"),
    "shared timeslot": (
        _set("fxo1", "timeslots", [3]),
        "device 'fxo1': timeslot 3 is already used by 'fxs4'",
    ),
    "timeslot out of range": (
        _set("fxs8", "timeslots", [64]),
        r"device 'fxs8': timeslot 64 out of range 0\.\.63",
    ),
    "timeslot listed twice": (
        _set("bri1", "timeslots", [12, 12]),
        r"device 'bri1': timeslot\(s\) \[12\] listed twice",
    ),
    "pri with 29 b-channels": (
        _set("pri1", "timeslots", ["16-44"]),
        "device 'pri1': a pri device has exactly 30 timeslots, not 29",
    ),
    "bri with 3 b-channels": (
        _set("bri2", "timeslots", [14, 15, 50]),
        "device 'bri2': a bri device has exactly 2 timeslots, not 3",
    ),
    "fxs without timeslot": (
        _set("fxs1", "timeslots", []),
        "device 'fxs1': a fxs device has exactly 1 timeslot, not 0",
    ),
    "fxo with two timeslots": (
        _set("fxo2", "timeslots", [9, 50]),
        "device 'fxo2': a fxo device has exactly 1 timeslot, not 2",
    ),
    "led with a timeslot": (
        _set("led-power", "timeslots", [60]),
        "device 'led-power': a led device has no PCM timeslots, not 1",
    ),
    "fxs on a uart": (
        _set("fxs1", "bus", "uart5"),
        "device 'fxs1': a fxs device sits on a spi bus, not on 'uart5'",
    ),
    "unknown kind": (
        _set("fxs1", "kind", "fsx"),
        r"devices\[0\] \(fxs1\)\.kind: unknown kind 'fsx'",
    ),
    "fxs with a daa chip": (
        _set("fxs1", "chip", "si3050"),
        "device 'fxs1': chip 'si3050' is not a fxs chip",
    ),
    "spi without chip select": (
        _set("fxs1", "bus", "spi0"),
        "device 'fxs1': bad bus address 'spi0': spi needs a chip select",
    ),
    "non-canonical address": (_set("fxs1", "bus", "spi00.1"), "bad bus address 'spi00.1'"),
    "unknown bus": (
        _set("fxs1", "bus", "i2c0.1"),
        r"bad bus address 'i2c0.1': unknown bus \(spi, uart",
    ),
    "chip select out of range": (_set("fxs1", "bus", "spi0.99"), r"chip select 99 out of range"),
    "uart with suffix": (_set("dect1", "bus", "uart1.2"), r"uart takes no '\.2' suffix"),
    "irq line out of range": (
        _set("fxs1", "irq_line", 64),
        r"device 'fxs1': GPIO line 64 \(fxs1-irq\) out of range 0\.\.63",
    ),
    "irq line shared": (
        _set("fxs2", "irq_line", 0),
        r"device 'fxs2': GPIO line 0 \(fxs2-irq\) is already used as 'fxs1-irq'",
    ),
    "led on an irq line": (
        _set("led-power", "bus", "gpio0.8"),
        r"device 'led-power': GPIO line 8 \(led-power\) is already used as 'fxs1-reset'",
    ),
    "led on a second gpio chip": (_set("led-power", "bus", "gpio1.3"), "only GPIO chip gpio0"),
    "negative reset line": (_set("fxs1", "reset_line", -1), "reset_line must be a GPIO line"),
    "led with an irq": (_set("led-status", "irq_line", 40), "a led device has no irq_line"),
    "bool is not a line": (
        _set("fxs1", "irq_line", True),
        r"irq_line: expected an integer, got True",
    ),
    "timeslot not a number": (
        _set("fxs1", "timeslots", ["zero"]),
        r"devices\[0\] \(fxs1\)\.timeslots\[0\]: expected an integer, got 'zero'",
    ),
    "backwards range": (_set("pri1", "timeslots", ["45-16"]), "range '45-16' runs backwards"),
    "typo in a key": (_set("fxs1", "irq", 3), r"unknown key\(s\) \['irq'\]"),
    "missing chip": (
        _add_device(name="fxs9", kind="fxs", bus="spi0.9"),
        r"missing key\(s\) \['chip'\]",
    ),
    "bad device name": (_set("fxs1", "name", "FXS 1"), "bad device name 'FXS 1'"),
    "no console device": (_drop_device("console"), "exactly one console device, found 0"),
    "console elsewhere": (
        _top("console_uart", "uart1"),
        "console_uart is 'uart1' but console device 'console' sits on 'uart0'",
    ),
    "console not a uart": (_top("console_uart", "hdlc0"), "console_uart must be a UART"),
    "too many timeslots": (_top("pcm_timeslots", 500), r"pcm_timeslots must be 1\.\.128, not 500"),
    "no timeslots": (_top("pcm_timeslots", 0), "pcm_timeslots must be"),
    "devices not a list": (_top("devices", {"fxs1": {}}), "devices: expected a list"),
    "unknown top-level key": (_top("leds", []), r"board: unknown key\(s\) \['leds'\]"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_definition_is_a_precise_error(case: str) -> None:
    mutate, message = BAD[case]
    data = copy.deepcopy(sim_yaml())
    mutate(data)
    with pytest.raises(BoardError, match=message) as info:
        board_definition_from_dict(data, source="test.yaml")
    assert str(info.value).startswith("test.yaml: ")


def test_every_sim_device_kind_is_covered_by_the_rules() -> None:
    board = load_board_definition(DEFINITION_FILE)
    assert {d.kind for d in board.devices} == set(DeviceKind)


def test_yaml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "board.yaml"
    path.write_text("name: sim\ndevices: [\n")
    with pytest.raises(BoardError, match=rf"{path}: not valid YAML"):
        load_board_definition(path)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(BoardError, match=rf"{path}: cannot read board definition"):
        load_board_definition(path)


def test_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "board.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(BoardError, match="board: expected a mapping, got list"):
        load_board_definition(path)
