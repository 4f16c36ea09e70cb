"""A fast test bench for the analog drivers: chip models on sim buses, a fake clock.

Time only moves when a test says so; each 20 ms the PCM highway ticks (which runs
the chip models) and every started driver is serviced the way the asyncio runner
would: INT level checked, then timers. Minutes of line time run in milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from board.sim.analog_line import FxoLine, FxsLine
from board.sim.gpio import SimGpioChip, SimGpioLine
from board.sim.pcm import PcmHighway
from board.sim.si3050 import Si3050
from board.sim.si3215 import Si3215
from board.sim.spi import SimSpiBus
from drivers.analog_events import AnalogEvent, run_steps
from drivers.daa_si3050 import DaaSi3050
from drivers.line_timing import FxoTiming, FxsTiming
from drivers.slic_si3215 import SlicSi3215

TICK = 0.02


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclass
class Port:
    name: str
    driver: SlicSi3215 | DaaSi3050
    irq: SimGpioLine
    events: list[tuple[float, AnalogEvent]] = field(default_factory=list)
    running: bool = False


class AnalogRig:
    def __init__(self, timeslots: int = 16) -> None:
        self.clock = FakeClock()
        self.gpio = SimGpioChip(32)
        self.highway = PcmHighway(timeslots)
        self.spi0 = SimSpiBus("spi0")
        self.spi1 = SimSpiBus("spi1")
        self.next_tick = self.clock.now + TICK
        self.ports: list[Port] = []

    def close(self) -> None:
        self.spi0.close()
        self.spi1.close()
        self.gpio.close()

    # --- building --------------------------------------------------------------------

    def fxs(
        self, cs: int = 0, timeslot: int = 0, timing: FxsTiming | None = None, start: bool = True
    ) -> tuple[SlicSi3215, Si3215, FxsLine, Port]:
        line = FxsLine(self.clock, f"fxs{cs + 1}")
        model = Si3215(
            line,
            self.clock,
            highway=self.highway,
            clock_slot=timeslot,
            gpio=self.gpio,
            irq_line=cs,
            reset_line=8 + cs,
        )
        self.spi0.attach(cs, model)
        irq = self.gpio.open(cs, "in", edge="falling")
        reset = self.gpio.open(8 + cs, "high")
        driver = SlicSi3215(
            self.spi0.open(cs, mode=3),
            self.clock,
            port=line.name,
            timeslot=timeslot,
            timing=timing,
            irq=irq,
            reset=reset,
        )
        port = Port(line.name, driver, irq)
        self.ports.append(port)
        if start:
            self.start(port)
        return driver, model, line, port

    def fxo(
        self, cs: int = 0, timeslot: int = 8, timing: FxoTiming | None = None, start: bool = True
    ) -> tuple[DaaSi3050, Si3050, FxoLine, Port]:
        line = FxoLine(self.clock, f"fxo{cs + 1}")
        model = Si3050(
            line,
            self.clock,
            highway=self.highway,
            clock_slot=timeslot,
            gpio=self.gpio,
            irq_line=16 + cs,
            reset_line=20 + cs,
        )
        self.spi1.attach(cs, model)
        irq = self.gpio.open(16 + cs, "in", edge="falling")
        reset = self.gpio.open(20 + cs, "high")
        driver = DaaSi3050(
            self.spi1.open(cs),
            self.clock,
            port=line.name,
            timeslot=timeslot,
            timing=timing,
            irq=irq,
            reset=reset,
        )
        port = Port(line.name, driver, irq)
        self.ports.append(port)
        if start:
            self.start(port)
        return driver, model, line, port

    def start(self, port: Port) -> None:
        run_steps(port.driver.init_steps(), self.sleep)
        port.running = True
        self._collect(port)

    # --- time ------------------------------------------------------------------------

    def sleep(self, seconds: float) -> None:
        self.run_until(self.clock.now + seconds)

    def run(self, seconds: float) -> None:
        self.run_until(self.clock.now + seconds)

    def run_until(self, t: float) -> None:
        while self.next_tick <= t + 1e-9:
            self.clock.now = self.next_tick
            self.highway.tick()
            for port in self.ports:
                if port.running:
                    port.driver.service(self.clock.now)
                    self._collect(port)
            self.next_tick += TICK
        self.clock.now = max(self.clock.now, t)

    def _collect(self, port: Port) -> None:
        for event in port.driver.take_events():
            port.events.append((self.clock.now, event))


def events_of(port: Port, kind: type) -> Iterator[tuple[float, AnalogEvent]]:
    return ((t, e) for t, e in port.events if isinstance(e, kind))
