"""CDR write path: what a call's CDR costs the event loop and the process.

The SIP service's `CdrLog` gets three events per call (started, answered, ended) on the
event loop and hands the call's steps to the `CdrWriter` thread, which group-commits
them into `CdrStore` (SQLite, WAL, synchronous=FULL). This bench drives `CdrLog` from a
uvloop loop at a steady call rate, the way the B2BUA does under bench/sip_cps.py, and
reports per call:

* loop CPU: CPU time of the event loop thread (``time.thread_time`` on the loop);
* process CPU: utime+stime of the whole process (loop, writer thread, SQLite), the
  flush of the last batch included;
* loop stall: wall time minus CPU time of the loop's own work per tick -- time the loop
  was ready to run and did not (waiting for the GIL the writer held, or preempted);
* loop waits: voluntary context switches of the loop thread per call (it blocked: to
  sleep till the next tick -- the same in both modes -- or waiting for the GIL), and
  those of the whole process (the writer's waits for the GIL and its commits added);
* commit latency: from the moment a step is handed over to the moment the batch that
  holds it has committed (sampled every tick, so +- one tick).

Each run is done twice: with CDRs and without (``none``: the loop does only its
simulated work), so the CDR's share is the difference. ``--work-us`` gives the loop
simulated SIP work per call (Python spinning plus two UDP datagrams sent and read,
syscalls that release the GIL as the real transport's do), so that the writer thread
competes for the GIL as in the daemon; ``--work-us 0`` measures the CDR path alone.
``--long`` is the fraction of calls that last longer than CdrLog's ``defer`` (their
start and answer are written while they are up, the end later: three steps).

Run: ``.venv/bin/python bench/cdr_write.py`` (about 45 s; prints only).
The machine is shared and has 2 cores: compare runs made one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware.core.cdr import CdrStore
from firmware.core.sip_service import CdrLog
from firmware.sip.b2bua import Caller

TICK = 0.002  # the loop's step: calls due are started, answered and ended per tick


@dataclass
class Result:
    mode: str
    calls: int
    rate: float
    loop_cpu_us: float = 0.0
    process_cpu_us: float = 0.0
    stall_us: float = 0.0
    loop_switches: float = 0.0
    process_switches: float = 0.0
    elapsed: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    batches: int = 0
    largest_batch: int = 0
    rows: int = 0

    def line(self) -> str:
        text = (
            f"[{self.mode:>4}] {self.calls:,} calls at {self.rate:,.0f}/s: "
            f"loop {self.loop_cpu_us:6.1f} us CPU/call, process {self.process_cpu_us:6.1f} "
            f"us CPU/call (other threads {self.process_cpu_us - self.loop_cpu_us:5.1f}), loop stall {self.stall_us:5.1f} us/call, context switches/call "
            f"loop {self.loop_switches:.2f} process {self.process_switches:.2f}, "
            f"{self.elapsed:.1f} s"
        )
        if self.mode != "none":
            lat = sorted(self.latencies_ms) or [0.0]
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            text += (
                f"; commit latency median {statistics.median(lat):.0f} ms, p99 {p99:.0f} ms, "
                f"max {lat[-1]:.0f} ms; {self.batches:,} batches (largest {self.largest_batch:,});"
                f" {self.rows:,} rows"
            )
        return text


def calibrate(work_us: float) -> int:
    """Spin iterations that take ``work_us`` of CPU on this machine, one thread."""
    if work_us <= 0:
        return 0
    n = 200_000
    began = time.thread_time()
    spin(n)
    per = (time.thread_time() - began) / n
    return max(1, round(work_us * 1e-6 / per))


def spin(n: int) -> int:
    x = 0
    for i in range(n):
        x += i
    return x


async def drive(mode: str, args: argparse.Namespace, spins: int, data: Path) -> Result:
    result = Result(mode, args.calls, args.rate)
    store = CdrStore.open(data) if mode == "cdr" else None
    cdrs = CdrLog(store) if store is not None else None
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    to = rx.getsockname()
    payload = b"x" * 600
    callers = [Caller(f"10{i % 10}", "Bench") for i in range(10)]
    media: dict[str, object] = {"rtp_a_to_b_packets": 0, "rtp_b_to_a_packets": 0, "rtp_dropped": 0}
    long_every = round(1 / args.long) if args.long > 0 else 0
    hold_ticks = round(args.hold / TICK)
    ends: dict[int, list[str]] = {}  # tick -> long calls that end then
    marks: list[tuple[float, int]] = []  # (handed over at, steps handed over by then)

    def work() -> None:
        if spins:
            spin(spins)
            tx.sendto(payload, to)
            tx.sendto(payload, to)
            rx.recv(2048)
            rx.recv(2048)

    gc.collect()
    gc.freeze()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    rt0 = resource.getrusage(resource.RUSAGE_THREAD)
    cpu0 = time.thread_time()
    wall0 = time.monotonic()
    stall = 0.0
    placed = 0
    answering: list[str] = []
    ending: list[str] = []
    tick = 0
    while placed < args.calls or answering or ending or ends:
        t0, c0 = time.perf_counter(), time.thread_time()
        due = min(args.calls, round((time.monotonic() - wall0) * args.rate) + 1)
        for call_id in ending:
            work()
            if cdrs is not None:
                cdrs.ended(call_id, 200, "caller", media)
        ending = []
        for call_id in answering:
            work()
            if cdrs is not None:
                cdrs.answered(call_id)
            if long_every and int(call_id[1:]) % long_every == 0:
                ends.setdefault(tick + hold_ticks, []).append(call_id)
            else:
                ending.append(call_id)
        answering = []
        while placed < due:
            call_id = f"c{placed}"
            work()
            if cdrs is not None:
                cdrs.started(call_id, callers[placed % 10], "201")
            answering.append(call_id)
            placed += 1
        ending.extend(ends.pop(tick, ()))
        if cdrs is not None:
            writer = cdrs.writer
            s = writer.stats
            done = s.committed + s.rejected + s.lost + s.dropped
            now = time.monotonic()
            while marks and marks[0][1] <= done:
                result.latencies_ms.append((now - marks.pop(0)[0]) * 1e3)
            if not marks or marks[-1][1] != s.submitted:
                marks.append((now, s.submitted))
        stall += (time.perf_counter() - t0) - (time.thread_time() - c0)
        tick += 1
        await asyncio.sleep(max(0.0, wall0 + tick * TICK - time.monotonic()))
    if cdrs is not None:
        writer = cdrs.writer
        while writer.backlog:  # the loop keeps running (and sampling) until all is written
            s = writer.stats
            done = s.committed + s.rejected + s.lost + s.dropped
            now = time.monotonic()
            while marks and marks[0][1] <= done:
                result.latencies_ms.append((now - marks.pop(0)[0]) * 1e3)
            await asyncio.sleep(TICK)
        while marks:
            result.latencies_ms.append((time.monotonic() - marks.pop(0)[0]) * 1e3)
    result.elapsed = time.monotonic() - wall0
    cpu = time.thread_time() - cpu0
    rt1 = resource.getrusage(resource.RUSAGE_THREAD)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    gc.unfreeze()
    process = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    result.loop_cpu_us = cpu / args.calls * 1e6
    result.process_cpu_us = process / args.calls * 1e6
    result.stall_us = stall / args.calls * 1e6
    result.loop_switches = (rt1.ru_nvcsw - rt0.ru_nvcsw) / args.calls
    result.process_switches = (ru1.ru_nvcsw - ru0.ru_nvcsw) / args.calls
    tx.close()
    rx.close()
    if cdrs is not None and store is not None:
        cdrs.close()
        s = cdrs.writer.stats
        result.batches, result.largest_batch = s.batches, s.largest_batch
        ended = store.db.execute("SELECT count(*) FROM calls WHERE end_epoch IS NOT NULL")
        result.rows = int(ended.fetchone()[0])
        if result.rows != args.calls or s.dropped or s.rejected or s.lost:
            raise SystemExit(f"CDRs missing: {result.rows} of {args.calls} rows, stats {s}")
        store.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=1_000.0, help="calls/s")
    parser.add_argument("--work-us", type=float, default=200.0, help="loop work per call event")
    parser.add_argument("--long", type=float, default=0.0, help="fraction of long calls")
    parser.add_argument("--hold", type=float, default=1.5, help="seconds a long call lasts")
    parser.add_argument("--modes", default="none,cdr", help="none, cdr, or both")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        uvloop = None  # type: ignore[assignment]
    spins = calibrate(args.work_us)
    print(
        f"cdr_write: {args.calls:,} calls at {args.rate:,.0f}/s, loop work {args.work_us:g} us "
        f"x 3 events/call, long calls {args.long:.0%}, {'uvloop' if uvloop else 'asyncio'}, "
        f"pid {os.getpid()}",
        flush=True,
    )
    for _ in range(args.repeat):
        for mode in args.modes.split(","):
            with tempfile.TemporaryDirectory(prefix="cdr-bench-") as tmp:
                coro = drive(mode, args, spins, Path(tmp))
                result = uvloop.run(coro) if uvloop else asyncio.run(coro)
            print(result.line(), flush=True)


if __name__ == "__main__":
    main()
