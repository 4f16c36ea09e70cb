"""The PCM highway: one frame per timeslot per tick, idle A-law where nobody talks."""

from __future__ import annotations

import asyncio
import time

import pytest

from board.sim import SimBoard
from board.sim.pcm import ALAW_IDLE, PcmClock, PcmHighway

IDLE = bytes([ALAW_IDLE]) * 160


def frame(value: int) -> bytes:
    return bytes([value]) * 160


def test_idle_before_anything_is_sent() -> None:
    hw = PcmHighway(8)
    assert hw.device.read(0) == IDLE
    hw.tick()
    assert all(hw.device.read(s) == IDLE and hw.firmware.read(s) == IDLE for s in range(8))


def test_frames_cross_on_the_tick_both_ways() -> None:
    hw = PcmHighway(8)
    hw.firmware.write(3, frame(0x11))
    hw.device.write(3, frame(0x22))
    hw.device.write(5, bytearray(frame(0x33)))
    assert hw.device.read(3) == IDLE  # nothing moves until the tick
    hw.tick()
    assert hw.device.read(3) == frame(0x11)
    assert hw.firmware.read(3) == frame(0x22)
    assert hw.firmware.read(5) == frame(0x33)
    assert hw.device.read(5) == IDLE
    hw.tick()  # nobody wrote again: the slot carries silence, not the old frame
    assert hw.device.read(3) == IDLE and hw.firmware.read(5) == IDLE
    assert hw.ticks == 2


def test_subscribers_get_every_frame_and_answer_on_the_next_tick() -> None:
    hw = PcmHighway(4)
    heard: list[tuple[int, bytes]] = []

    def echo(slot: int, data: bytes) -> None:  # a virtual device looping audio back
        heard.append((slot, data))
        hw.device.write(slot, data)

    hw.device.subscribe(2, echo)
    hw.firmware.write(2, frame(0x40))
    hw.tick()
    assert heard == [(2, frame(0x40))]
    assert hw.firmware.read(2) == IDLE  # the answer is not in this tick
    hw.tick()
    assert hw.firmware.read(2) == frame(0x40)
    assert heard[-1] == (2, IDLE)
    hw.device.unsubscribe(2, echo)
    hw.tick()
    assert len(heard) == 2


def test_slips_and_bad_frames() -> None:
    hw = PcmHighway(4, frame_samples=80)
    hw.firmware.write(0, bytes(80))
    hw.firmware.write(0, bytes([1]) * 80)
    assert hw.firmware.slips == 1
    hw.tick()
    assert hw.device.read(0) == bytes([1]) * 80
    with pytest.raises(ValueError, match="is 160 bytes, not 80"):
        hw.firmware.write(1, frame(0))
    with pytest.raises(IndexError, match=r"timeslot 4 out of range 0\.\.3"):
        hw.device.write(4, bytes(80))
    with pytest.raises(IndexError):
        hw.device.read(-1)
    assert hw.period == 0.01


def test_full_highway_tick_is_cheap() -> None:
    hw = PcmHighway(64)
    sink: list[bytes] = []
    for slot in range(64):
        hw.device.subscribe(slot, lambda _s, data: sink.append(data))
    started = time.perf_counter()
    for _ in range(500):  # 10 s of audio on every timeslot
        for slot in range(64):
            hw.firmware.write(slot, IDLE)
        hw.tick()
    assert time.perf_counter() - started < 1.0
    assert len(sink) == 500 * 64


async def run_clock(clock: PcmClock, seconds: float, stall: float = 0.0) -> tuple[int, float]:
    """Run the clock for ``seconds`` of loop time; return (ticks, elapsed since start)."""
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    task = asyncio.create_task(clock.run(ready.set))
    await ready.wait()
    start = loop.time()
    if stall:
        time.sleep(stall)  # a blocked event loop
    await asyncio.sleep(seconds - stall)
    ticks, elapsed = clock.highway.ticks, loop.time() - start
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return ticks, elapsed


async def test_clock_ticks_every_20ms_without_drift() -> None:
    clock = PcmClock(PcmHighway(46))
    ticks, elapsed = await run_clock(clock, 0.51)  # stop between two ticks, not on one
    assert abs(ticks - int(elapsed / 0.02)) <= 1, (ticks, elapsed)
    assert clock.skipped == 0


async def test_clock_skips_rather_than_bursts_after_a_stall() -> None:
    clock = PcmClock(PcmHighway(4), max_lag=5)
    ticks, elapsed = await run_clock(clock, 0.41, stall=0.2)
    assert clock.skipped >= 5
    assert abs(ticks + clock.skipped - int(elapsed / 0.02)) <= 1, (ticks, clock.skipped, elapsed)


def test_board_highway_matches_the_definition(sim_board: SimBoard) -> None:
    assert sim_board.pcm.timeslots == sim_board.definition.pcm_timeslots
    assert sim_board.pcm_clock in sim_board.services()
    fxs1 = sim_board.definition.device("fxs1")
    sim_board.pcm.firmware.write(fxs1.timeslots[0], frame(0x55))
    sim_board.pcm.tick()
    assert sim_board.pcm.device.read(fxs1.timeslots[0]) == frame(0x55)
