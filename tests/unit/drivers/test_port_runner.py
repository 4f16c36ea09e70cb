"""The asyncio adapter in real time: sim board, PCM clock, IRQs through the GPIO edge fd."""

from __future__ import annotations

import asyncio
from pathlib import Path

from board.sim import SimBoard
from board.sim.analog_line import FxoLine, FxsLine
from drivers.analog_events import AnalogEvent, OffHook, OnHook, PortRunner, RingStart
from drivers.daa_si3050 import DaaSi3050
from drivers.line_timing import FxoTiming
from drivers.slic_si3215 import SlicSi3215


async def wait_for(events: list[AnalogEvent], kind: type, timeout: float) -> AnalogEvent:
    async def look() -> AnalogEvent:
        while True:
            for event in events:
                if isinstance(event, kind):
                    return event
            await asyncio.sleep(0.01)

    return await asyncio.wait_for(look(), timeout)


async def test_runner_serves_irqs_in_real_time(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    board = SimBoard(tmp_path)
    tasks: list[asyncio.Task[None]] = []
    try:
        chips = board.attach_chips(loop.time)
        phone = chips["fxs1"].line  # type: ignore[attr-defined]
        pstn = chips["fxo1"].line  # type: ignore[attr-defined]
        assert isinstance(phone, FxsLine) and isinstance(pstn, FxoLine)
        tasks.append(asyncio.create_task(board.pcm_clock.run(lambda: None)))
        fxs_def, fxo_def = board.definition.device("fxs1"), board.definition.device("fxo1")
        slic = SlicSi3215(
            board.open_spi(fxs_def.bus, mode=3),
            loop.time,
            port="fxs1",
            timeslot=fxs_def.timeslots[0],
            irq=board.open_gpio("fxs1-irq", "in", edge="falling"),
            reset=board.open_gpio("fxs1-reset", "high"),
        )
        daa = DaaSi3050(
            board.open_spi(fxo_def.bus),
            loop.time,
            port="fxo1",
            timeslot=fxo_def.timeslots[0],
            timing=FxoTiming(ring_validation_ms=200),
            irq=board.open_gpio("fxo1-irq", "in", edge="falling"),
            reset=board.open_gpio("fxo1-reset", "high"),
        )
        events: list[AnalogEvent] = []
        runners = [PortRunner(d, d.irq, events.append) for d in (slic, daa)]  # type: ignore[arg-type]
        ready = [asyncio.Event(), asyncio.Event()]
        for runner, flag in zip(runners, ready, strict=True):
            tasks.append(asyncio.create_task(runner.run(flag.set)))
        await asyncio.wait_for(asyncio.gather(*(f.wait() for f in ready)), 3.0)
        assert slic.ready and daa.ready

        phone.set_hook(True)
        off = await wait_for(events, OffHook, 1.0)
        assert loop.time() - off.at < 0.2
        pstn.ring_burst(0.5)
        await wait_for(events, RingStart, 1.5)
        phone.set_hook(False)
        await wait_for(events, OnHook, 1.5)
        assert runners[0].interrupts >= 2 and runners[1].interrupts >= 1
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        board.close()
