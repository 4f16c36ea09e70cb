"""The simulated reference board: its definition plus emulated buses that behave like real ones.

Buses are built from the board definition (``board.yaml``), so the sim has exactly
the controllers, chip selects, GPIO lines, UARTs, D-channels and timeslots the
definition names. Chip models and virtual devices attach to these buses later; the
firmware's drivers open them through ``open_spi``/``open_gpio``/``uart``/``hdlc``
with the same shapes they use on hardware (python-periphery, pyserial, fds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base import BoardError
from ..definition import BoardDefinition, BusAddress, BusKind, DeviceKind, load_board_definition
from .gpio import SimGpioChip, SimGpioLine
from .hdlc import HdlcChannel
from .pcm import PcmClock, PcmHighway
from .spi import SimSpiBus, SimSpiDevice
from .uart import NullModem

if TYPE_CHECKING:
    from firmware.system.supervisor import Service

DEFINITION_FILE = Path(__file__).with_name("board.yaml")
SPI_CHIP_SELECTS = 8


class SimBoard:
    """The ``sim`` board. Open it, hand ``services()`` to the supervisor, ``close()`` at the end."""

    name = "sim"

    def __init__(self, data_dir: Path, definition_file: Path = DEFINITION_FILE) -> None:
        self.data_dir = data_dir
        self.definition: BoardDefinition = load_board_definition(definition_file)
        self._closers: list[Callable[[], None]] = []
        self._virtual: dict[str, object] = {}
        try:
            self._build(self.definition)
        except BaseException:
            self.close()
            raise

    def _build(self, d: BoardDefinition) -> None:
        chip_selects: dict[str, int] = {}
        for dev in d.on_bus(BusKind.SPI):
            ctrl, cs = dev.address.controller, dev.address.unit or 0
            chip_selects[ctrl] = max(chip_selects.get(ctrl, SPI_CHIP_SELECTS), cs + 1)
        self.spi: dict[str, SimSpiBus] = {}
        for ctrl, count in chip_selects.items():
            self.spi[ctrl] = bus = SimSpiBus(ctrl, count)
            self._closers.append(bus.close)
        self.gpio = SimGpioChip(d.gpio_lines, "gpio0", line_names=d.gpio_line_names())
        self._closers.append(self.gpio.close)
        self.uarts: dict[str, NullModem] = {}
        for dev in d.on_bus(BusKind.UART):
            self.uarts[dev.bus] = cable = NullModem(dev.name)
            self._closers.append(cable.close)
        self.hdlc_channels: dict[str, HdlcChannel] = {}
        for dev in d.on_bus(BusKind.HDLC):
            self.hdlc_channels[dev.bus] = channel = HdlcChannel(dev.bus)
            self._closers.append(channel.close)
        self.pcm = PcmHighway(d.pcm_timeslots)
        self.pcm_clock = PcmClock(self.pcm)

    # --- Board protocol ---------------------------------------------------------------

    @property
    def console_device(self) -> str:
        return self.uart(self.definition.console_uart).device

    @property
    def console_peer(self) -> str | None:
        return self.uart(self.definition.console_uart).peer

    def services(self) -> list[Service]:
        return [*self.uarts.values(), self.pcm_clock]

    def describe(self) -> dict[str, Any]:
        return {
            "board": self.name,
            "console": {
                "uart": self.definition.console_uart,
                "device": self.console_device,
                "peer": self.console_peer,
            },
            "devices": [d.as_dict() for d in self.definition.devices],
            "buses": {
                "spi": {
                    name: {"chip_selects": bus.chip_selects, "attached": sorted(bus.attached)}
                    for name, bus in self.spi.items()
                },
                "gpio": {"chip": self.gpio.name, "lines": self.gpio.lines},
                "uart": {
                    name: {"device": c.device, "peer": c.peer, **c.stats()}
                    for name, c in self.uarts.items()
                },
                "hdlc": sorted(self.hdlc_channels),
                "pcm": {
                    "timeslots": self.pcm.timeslots,
                    "frame_samples": self.pcm.frame_samples,
                    "ticks": self.pcm.ticks,
                    "skipped": self.pcm_clock.skipped,
                },
            },
            "attached": [_describe_virtual(n, obj) for n, obj in self._virtual.items()],
        }

    def close(self) -> None:
        """Close every bus and fd the board opened; safe to call twice."""
        closers, self._closers = self._closers, []
        for close in reversed(closers):
            close()
        self._virtual.clear()

    # --- bus access for drivers ---------------------------------------------------------

    def open_spi(self, address: str, mode: int = 0, max_speed: float = 1_000_000) -> SimSpiDevice:
        """Open ``spi0.3`` as the driver would open ``/dev/spidev0.3`` with periphery."""
        a = self._address(address, BusKind.SPI)
        assert a.unit is not None
        return self._spi_bus(a.controller).open(a.unit, mode, max_speed)

    def spi_bus(self, controller: str) -> SimSpiBus:
        """The controller ``spi0`` itself, where chip models attach."""
        return self._spi_bus(controller)

    def open_gpio(
        self,
        line: int | str,
        direction: str,
        edge: str = "none",
        bias: str = "default",
        drive: str = "default",
        inverted: bool = False,
        label: str | None = None,
    ) -> SimGpioLine:
        """Request a GPIO line by number or board name (``fxs1-irq``), like periphery's GPIO."""
        return self.gpio.open(line, direction, edge, bias, drive, inverted, label)

    def uart(self, address: str) -> NullModem:
        self._address(address, BusKind.UART)
        try:
            return self.uarts[address]
        except KeyError:
            raise BoardError(f"board {self.name!r} has no UART {address!r}") from None

    def hdlc(self, address: str) -> HdlcChannel:
        self._address(address, BusKind.HDLC)
        try:
            return self.hdlc_channels[address]
        except KeyError:
            raise BoardError(f"board {self.name!r} has no HDLC channel {address!r}") from None

    def _spi_bus(self, controller: str) -> SimSpiBus:
        try:
            return self.spi[controller]
        except KeyError:
            raise BoardError(f"board {self.name!r} has no SPI bus {controller!r}") from None

    @staticmethod
    def _address(text: str, kind: BusKind) -> BusAddress:
        address = BusAddress.parse(text)
        if address.kind is not kind:
            raise BoardError(f"{text!r} is not a {kind} address")
        return address

    # --- virtual devices -----------------------------------------------------------------

    def attach_virtual(self, name: str, device: object) -> None:
        """Register a virtual device (analog phone, PSTN line, ...) so ``describe`` lists it."""
        if name in self._virtual:
            raise BoardError(f"a virtual device named {name!r} is already attached")
        self._virtual[name] = device

    def detach_virtual(self, name: str) -> object:
        try:
            return self._virtual.pop(name)
        except KeyError:
            raise BoardError(f"no virtual device named {name!r} is attached") from None

    @property
    def virtual(self) -> dict[str, object]:
        return dict(self._virtual)

    # --- analog chip models (FXS: Si3215, FXO: Si3050) ------------------------------------

    def attach_chips(self, clock: Callable[[], float] = time.monotonic) -> dict[str, object]:
        """Put a chip model and its analog line on every FXS/FXO device of the definition.

        ``clock`` must be the clock the PCM highway is ticked on (the event loop's
        ``time``, which is ``time.monotonic`` for asyncio and uvloop). Returns the models
        by device name; their ``line`` is where virtual phones and PSTN lines plug in.
        """
        from .analog_line import FxoLine, FxsLine
        from .si3050 import Si3050
        from .si3215 import Si3215

        chips: dict[str, object] = {}
        for dev in self.definition.devices:
            if dev.kind not in (DeviceKind.FXS, DeviceKind.FXO):
                continue
            bus, cs = self._spi_bus(dev.address.controller), dev.address.unit or 0
            pins = (self.gpio, dev.irq_line, dev.reset_line)
            model: Si3215 | Si3050
            if dev.kind is DeviceKind.FXS:
                model = Si3215(
                    FxsLine(clock, dev.name),
                    clock,
                    highway=self.pcm,
                    clock_slot=dev.timeslots[0],
                    gpio=pins[0],
                    irq_line=pins[1],
                    reset_line=pins[2],
                )
            else:
                model = Si3050(
                    FxoLine(clock, dev.name),
                    clock,
                    highway=self.pcm,
                    clock_slot=dev.timeslots[0],
                    gpio=pins[0],
                    irq_line=pins[1],
                    reset_line=pins[2],
                )
            bus.attach(cs, model)
            self._closers.append(model.close)
            chips[dev.name] = model
        self.chips = chips
        return chips


def _describe_virtual(name: str, device: object) -> dict[str, Any]:
    """A virtual device describes itself if it can (``describe() -> dict``)."""
    entry: dict[str, Any] = {"name": name, "type": type(device).__name__}
    describe = getattr(device, "describe", None)
    if callable(describe):
        entry.update(describe())
    return entry


__all__ = [
    "HdlcChannel",
    "NullModem",
    "PcmClock",
    "PcmHighway",
    "SimBoard",
    "SimGpioChip",
    "SimGpioLine",
    "SimSpiBus",
    "SimSpiDevice",
]
