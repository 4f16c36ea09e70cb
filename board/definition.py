"""Board definitions: which chip sits on which bus address, GPIO line and PCM timeslot.

A board is data, not code: the same drivers run on every board, and a definition is
checked once, when it is loaded, so a typo in an address or two ports sharing a
timeslot is a precise error at start instead of a dead or cross-talking port at the
first call. Every check lives in ``__post_init__``, so a definition built in code is
held to the same rules as one read from YAML.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .base import BoardError

MAX_PCM_TIMESLOTS = 128  # one 8.192 MHz highway
MAX_GPIO_LINES = 1024
MAX_SPI_CHIP_SELECTS = 32
MAX_DECT_TIMESLOTS = 32  # one DECT base carries at most a few dozen simultaneous calls

_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_BUS_RE = re.compile(r"^(?P<kind>[a-z]+)(?P<index>0|[1-9][0-9]*)(?:\.(?P<unit>0|[1-9][0-9]*))?$")


class DeviceKind(enum.StrEnum):
    FXS = "fxs"
    FXO = "fxo"
    BRI = "bri"
    PRI = "pri"
    DECT = "dect"
    LED = "led"
    CONSOLE = "console"


class BusKind(enum.StrEnum):
    SPI = "spi"  # spi<controller>.<chip select>
    UART = "uart"  # uart<n>
    HDLC = "hdlc"  # hdlc<n>: a D-channel file descriptor
    GPIO = "gpio"  # gpio<chip>.<line>


@dataclass(frozen=True)
class KindRule:
    """What a device of one kind must look like: its bus, chips, and B-channel count."""

    bus: BusKind
    chips: frozenset[str]
    min_timeslots: int
    max_timeslots: int
    has_lines: bool  # may it have IRQ/reset GPIO lines?


RULES: Mapping[DeviceKind, KindRule] = {
    DeviceKind.FXS: KindRule(BusKind.SPI, frozenset({"si3210", "si3215"}), 1, 1, True),
    DeviceKind.FXO: KindRule(BusKind.SPI, frozenset({"si3050"}), 1, 1, True),
    DeviceKind.BRI: KindRule(BusKind.HDLC, frozenset({"hdlc"}), 2, 2, True),
    DeviceKind.PRI: KindRule(BusKind.HDLC, frozenset({"hdlc"}), 30, 30, True),
    DeviceKind.DECT: KindRule(BusKind.UART, frozenset({"dect-uart"}), 1, MAX_DECT_TIMESLOTS, True),
    DeviceKind.LED: KindRule(BusKind.GPIO, frozenset({"gpio-led"}), 0, 0, False),
    DeviceKind.CONSOLE: KindRule(BusKind.UART, frozenset({"uart"}), 0, 0, False),
}


@dataclass(frozen=True)
class BusAddress:
    """A parsed bus address such as ``spi0.3``; only the canonical spelling is accepted."""

    kind: BusKind
    index: int  # controller / chip number
    unit: int | None  # SPI chip select or GPIO line; None for UART and HDLC

    @property
    def controller(self) -> str:
        return f"{self.kind}{self.index}"

    def __str__(self) -> str:
        return self.controller if self.unit is None else f"{self.controller}.{self.unit}"

    @classmethod
    def parse(cls, text: str) -> BusAddress:
        kinds = ", ".join(k.value for k in BusKind)
        if not any(text.startswith(k.value) for k in BusKind):
            raise BoardError(f"bad bus address {text!r}: unknown bus ({kinds})")
        m = _BUS_RE.match(text)
        if m is None or m["kind"] not in {k.value for k in BusKind}:
            raise BoardError(
                f"bad bus address {text!r}: expected e.g. 'spi0.3', 'uart1', 'hdlc0', 'gpio0.40'"
            )
        kind = BusKind(m["kind"])
        unit = None if m["unit"] is None else int(m["unit"])
        if kind in (BusKind.SPI, BusKind.GPIO) and unit is None:
            what = "chip select" if kind is BusKind.SPI else "line"
            raise BoardError(f"bad bus address {text!r}: {kind} needs a {what}, e.g. '{text}.0'")
        if kind in (BusKind.UART, BusKind.HDLC) and unit is not None:
            raise BoardError(f"bad bus address {text!r}: {kind} takes no '.{unit}' suffix")
        if kind is BusKind.SPI and unit is not None and unit >= MAX_SPI_CHIP_SELECTS:
            raise BoardError(
                f"bad bus address {text!r}: chip select {unit} out of range "
                f"0..{MAX_SPI_CHIP_SELECTS - 1}"
            )
        return cls(kind, int(m["index"]), unit)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class DeviceDefinition:
    """One chip on the board: a port (fxs1), a LED, the console UART."""

    name: str
    kind: DeviceKind
    chip: str
    bus: str
    irq_line: int | None = None
    reset_line: int | None = None
    timeslots: tuple[int, ...] = ()
    address: BusAddress = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise BoardError(
                f"bad device name {self.name!r}: lowercase letter, then letters, digits, '-' "
                "or '_', at most 32 characters"
            )
        where = f"device {self.name!r}"
        try:
            kind = DeviceKind(self.kind)
        except ValueError:
            kinds = ", ".join(k.value for k in DeviceKind)
            raise BoardError(f"{where}: unknown kind {self.kind!r} ({kinds})") from None
        object.__setattr__(self, "kind", kind)
        rule = RULES[kind]
        if self.chip not in rule.chips:
            chips = ", ".join(sorted(rule.chips))
            raise BoardError(f"{where}: chip {self.chip!r} is not a {kind} chip ({chips})")
        try:
            address = BusAddress.parse(self.bus)
        except BoardError as exc:
            raise BoardError(f"{where}: {exc}") from None
        if address.kind is not rule.bus:
            raise BoardError(
                f"{where}: a {kind} device sits on a {rule.bus} bus, not on {self.bus!r}"
            )
        object.__setattr__(self, "address", address)
        for role, line in (("irq_line", self.irq_line), ("reset_line", self.reset_line)):
            if line is None:
                continue
            if not rule.has_lines:
                raise BoardError(f"{where}: a {kind} device has no {role}")
            if not _is_int(line) or line < 0:
                raise BoardError(f"{where}: {role} must be a GPIO line number >= 0, not {line!r}")
        object.__setattr__(self, "timeslots", tuple(self.timeslots))
        count = len(self.timeslots)
        if not rule.min_timeslots <= count <= rule.max_timeslots:
            raise BoardError(f"{where}: a {kind} device has {_count_text(rule)}, not {count}")
        for ts in self.timeslots:
            if not _is_int(ts) or ts < 0:
                raise BoardError(f"{where}: timeslot {ts!r} is not a number >= 0")
        if len(set(self.timeslots)) != count:
            dupes = sorted({t for t in self.timeslots if self.timeslots.count(t) > 1})
            raise BoardError(f"{where}: timeslot(s) {dupes} listed twice")

    @property
    def gpio_lines(self) -> dict[int, str]:
        """GPIO lines this device uses, mapped to line names such as ``fxs1-irq``."""
        lines: dict[int, str] = {}
        if self.irq_line is not None:
            lines[self.irq_line] = f"{self.name}-irq"
        if self.reset_line is not None:
            lines[self.reset_line] = f"{self.name}-reset"
        if self.address.kind is BusKind.GPIO and self.address.unit is not None:
            lines[self.address.unit] = self.name
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "chip": self.chip,
            "bus": self.bus,
            "irq_line": self.irq_line,
            "reset_line": self.reset_line,
            "timeslots": list(self.timeslots),
        }


def _count_text(rule: KindRule) -> str:
    if rule.min_timeslots == rule.max_timeslots:
        n = rule.min_timeslots
        return "no PCM timeslots" if n == 0 else f"exactly {n} timeslot{'s' if n > 1 else ''}"
    return f"{rule.min_timeslots} to {rule.max_timeslots} timeslots"


@dataclass(frozen=True)
class BoardDefinition:
    """A whole board: its devices and the shared resources they must not fight over."""

    name: str
    devices: tuple[DeviceDefinition, ...]
    console_uart: str
    pcm_timeslots: int
    gpio_lines: int = 64

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise BoardError(f"bad board name {self.name!r}")
        if not _is_int(self.pcm_timeslots) or not 1 <= self.pcm_timeslots <= MAX_PCM_TIMESLOTS:
            raise BoardError(
                f"pcm_timeslots must be 1..{MAX_PCM_TIMESLOTS}, not {self.pcm_timeslots!r}"
            )
        if not _is_int(self.gpio_lines) or not 1 <= self.gpio_lines <= MAX_GPIO_LINES:
            raise BoardError(f"gpio_lines must be 1..{MAX_GPIO_LINES}, not {self.gpio_lines!r}")
        object.__setattr__(self, "devices", tuple(self.devices))
        if not self.devices:
            raise BoardError("a board needs at least one device")
        self._check_unique()
        self._check_console()

    def _check_unique(self) -> None:
        names: set[str] = set()
        buses: dict[str, str] = {}
        lines: dict[int, str] = {}
        slots: dict[int, str] = {}
        last_slot = self.pcm_timeslots - 1
        for dev in self.devices:
            where = f"device {dev.name!r}"
            if dev.name in names:
                raise BoardError(f"{where} is defined twice")
            names.add(dev.name)
            if dev.bus in buses:
                raise BoardError(f"{where}: bus {dev.bus} is already taken by {buses[dev.bus]!r}")
            buses[dev.bus] = dev.name
            if dev.address.kind is BusKind.GPIO and dev.address.index != 0:
                raise BoardError(
                    f"{where}: only GPIO chip gpio0 exists, not {dev.address.controller}"
                )
            for line, role in dev.gpio_lines.items():
                if line >= self.gpio_lines:
                    raise BoardError(
                        f"{where}: GPIO line {line} ({role}) out of range 0..{self.gpio_lines - 1}"
                    )
                if line in lines:
                    raise BoardError(
                        f"{where}: GPIO line {line} ({role}) is already used as {lines[line]!r}"
                    )
                lines[line] = role
            for ts in dev.timeslots:
                if ts > last_slot:
                    raise BoardError(f"{where}: timeslot {ts} out of range 0..{last_slot}")
                if ts in slots:
                    raise BoardError(f"{where}: timeslot {ts} is already used by {slots[ts]!r}")
                slots[ts] = dev.name

    def _check_console(self) -> None:
        try:
            address = BusAddress.parse(self.console_uart)
        except BoardError as exc:
            raise BoardError(f"console_uart: {exc}") from None
        if address.kind is not BusKind.UART:
            raise BoardError(
                f"console_uart must be a UART such as 'uart0', not {self.console_uart!r}"
            )
        consoles = self.of_kind(DeviceKind.CONSOLE)
        if len(consoles) != 1:
            raise BoardError(f"a board needs exactly one console device, found {len(consoles)}")
        if consoles[0].bus != self.console_uart:
            raise BoardError(
                f"console_uart is {self.console_uart!r} but console device "
                f"{consoles[0].name!r} sits on {consoles[0].bus!r}"
            )

    def __iter__(self) -> Iterator[DeviceDefinition]:
        return iter(self.devices)

    def device(self, name: str) -> DeviceDefinition:
        for dev in self.devices:
            if dev.name == name:
                return dev
        raise BoardError(f"board {self.name!r} has no device {name!r}")

    def of_kind(self, kind: DeviceKind) -> tuple[DeviceDefinition, ...]:
        return tuple(d for d in self.devices if d.kind is kind)

    def on_bus(self, kind: BusKind) -> tuple[DeviceDefinition, ...]:
        return tuple(d for d in self.devices if d.address.kind is kind)

    def gpio_line_names(self) -> dict[int, str]:
        names: dict[int, str] = {}
        for dev in self.devices:
            names.update(dev.gpio_lines)
        return names

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "console_uart": self.console_uart,
            "pcm_timeslots": self.pcm_timeslots,
            "gpio_lines": self.gpio_lines,
            "devices": [d.as_dict() for d in self.devices],
        }


# --- loading from YAML -------------------------------------------------------------------

_BOARD_KEYS = {"name", "devices", "console_uart", "pcm_timeslots", "gpio_lines"}
_BOARD_REQUIRED = {"name", "devices", "console_uart", "pcm_timeslots"}
_DEVICE_KEYS = {"name", "kind", "chip", "bus", "irq_line", "reset_line", "timeslots"}
_DEVICE_REQUIRED = {"name", "kind", "chip", "bus"}
_RANGE_RE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


def load_board_definition(path: Path) -> BoardDefinition:
    """Read and check a board definition file; every problem is a BoardError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BoardError(f"{path}: cannot read board definition: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BoardError(f"{path}: not valid YAML: {exc}") from None
    return board_definition_from_dict(data, source=str(path))


def board_definition_from_dict(data: object, source: str = "<board>") -> BoardDefinition:
    """Build a BoardDefinition from parsed YAML/JSON, with errors prefixed by ``source``."""
    try:
        return _board(data)
    except BoardError as exc:
        raise BoardError(f"{source}: {exc}") from None


def _mapping(data: object, where: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BoardError(f"{where}: expected a mapping, got {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise BoardError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    missing = sorted(required - set(data))
    if missing:
        raise BoardError(f"{where}: missing key(s) {missing}")
    return data


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise BoardError(f"{where}: expected a string, got {value!r}")
    return value


def _int(value: object, where: str) -> int:
    if not _is_int(value):
        raise BoardError(f"{where}: expected an integer, got {value!r}")
    assert isinstance(value, int)
    return value


def _timeslots(value: object, where: str) -> tuple[int, ...]:
    """A list of timeslots; an entry may be an inclusive range '16-45' (a PRI's 30)."""
    if not isinstance(value, list):
        raise BoardError(f"{where}: expected a list of timeslots, got {value!r}")
    out: list[int] = []
    for i, item in enumerate(value):
        if isinstance(item, str) and (m := _RANGE_RE.match(item)):
            first, last = int(m[1]), int(m[2])
            if first > last:
                raise BoardError(f"{where}[{i}]: range {item!r} runs backwards")
            out.extend(range(first, last + 1))
        else:
            out.append(_int(item, f"{where}[{i}]"))
    return tuple(out)


def _device(data: object, i: int) -> DeviceDefinition:
    where = f"devices[{i}]"
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        where = f"devices[{i}] ({data['name']})"
    d = _mapping(data, where, _DEVICE_KEYS, _DEVICE_REQUIRED)
    irq = d.get("irq_line")
    reset = d.get("reset_line")
    kind = _str(d["kind"], f"{where}.kind")
    if kind not in {k.value for k in DeviceKind}:
        kinds = ", ".join(k.value for k in DeviceKind)
        raise BoardError(f"{where}.kind: unknown kind {kind!r} ({kinds})")
    return DeviceDefinition(
        name=_str(d["name"], f"{where}.name"),
        kind=DeviceKind(kind),
        chip=_str(d["chip"], f"{where}.chip"),
        bus=_str(d["bus"], f"{where}.bus"),
        irq_line=None if irq is None else _int(irq, f"{where}.irq_line"),
        reset_line=None if reset is None else _int(reset, f"{where}.reset_line"),
        timeslots=_timeslots(d.get("timeslots", []), f"{where}.timeslots"),
    )


def _board(data: object) -> BoardDefinition:
    d = _mapping(data, "board", _BOARD_KEYS, _BOARD_REQUIRED)
    devices = d["devices"]
    if not isinstance(devices, list):
        raise BoardError(f"devices: expected a list, got {type(devices).__name__}")
    return BoardDefinition(
        name=_str(d["name"], "name"),
        devices=tuple(_device(dev, i) for i, dev in enumerate(devices)),
        console_uart=_str(d["console_uart"], "console_uart"),
        pcm_timeslots=_int(d["pcm_timeslots"], "pcm_timeslots"),
        gpio_lines=_int(d.get("gpio_lines", 64), "gpio_lines"),
    )
