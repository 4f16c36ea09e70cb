"""Concurrent G.711 calls relayed through the box's media relay, with rtpengine in the same run.

Load: ``bench/media/rtpgen.c`` (compiled here with gcc), a small C generator: two UDP
sockets per call on 127.0.0.1 (phone A, phone B), each sending 50 RTP packets/s of 172
bytes (20 ms of G.711) for ``--seconds``, the sends of all sockets spread evenly over
each 20 ms; latency from the kernel's receive timestamp, jitter as RFC 3550's
D = |transit(i) - transit(i-1)|, loss as sent - received after a 1 s drain. It is
measured first with no relay at all (each phone sends straight to the other: the
kernel's loopback is the reflector), which gives its own capacity and jitter floor.

Targets, one after the other, each stepping the number of concurrent calls up until
loss exceeds 0.1% or the jitter p99 exceeds 5 ms:

- ``loopback``: no relay (the generator's own figures).
- ``box``: ``firmware.media.relay.RelaySession`` (the pass-through path ordinary calls
  take) in a process of its own under uvloop (``bench/media/relay_server.py``): the
  "before", every packet forwarded by the process that owns the sessions.
- ``box-wN``: ``firmware.media.relay_workers.RelayWorkerPool`` with N worker processes:
  the server process plays the SIP service and opens every call with ``pool.open``
  (``RemoteRelaySession``: commands over a Unix socket), the workers forward. The
  "after"; its CPU counts the server and its workers.
- ``box-Nw`` (not run by default): N independent relay_server processes, each with a
  share of the calls (the sharding experiment that preceded the pool).
- ``rtpengine``: Debian's rtpengine 10.5, userspace forwarding (``--table=-1``), 2
  threads; sessions set up over its NG protocol (``bench/media/ng.py``) as a proxy would:
  offer with phone A's SDP, answer with phone B's.
- ``transcode``: ``firmware.media.bridge.MediaBridge`` with leg A PCMA and leg B PCMU
  (every packet decoded and re-encoded), same process layout as ``box``.

CPU per call is the target process's utime+stime (all threads) over the step divided by
calls and seconds (1.0 would be a whole core per call); CPU per packet divides by the
packets it forwarded. Added latency is the target's latency minus the loopback's at the
same load. The machine is shared and has 2 cores (the generator takes a share of them):
compare the ratios.

Run: ``.venv/bin/python bench/media_relay.py`` (about 10 minutes; writes the section
"Media relay" of bench/RESULTS.md), ``--quick`` for a short smoke run (prints only).
Every process it starts is stopped on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent / "media"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
sys.path.insert(0, str(HERE))

from ng import NgClient, audio_sdp, sdp_port  # noqa: E402

COMMAND = ".venv/bin/python bench/media_relay.py"
SECTION = "## Media relay: `bench/media_relay.py`"
PPS = 50
LOSS_LIMIT = 0.1  # percent
JITTER_LIMIT_US = 5000
GOAL_CALLS = 1000
FIRST_PORT, LAST_PORT = 24_000, 31_999  # below Linux's ephemeral range (32768+)
# The pool keeps an equal slice for the SIP process's own media (bridges, conferences),
# which the bench leaves unused: a wider range gives its workers as many pairs as `box`.
POOL_FIRST = 12_000
NG_PORT = 22_223
LEVELS = [100, 250, 500, 750, 1000, 1250, 1500, 2000]
TRANSCODE_LEVELS = [25, 50, 100, 150, 200, 300, 400, 500, 750, 1000]
CLK_TCK = os.sysconf("SC_CLK_TCK")
NEXT_STEP = [
    "Reading it: one Python process under uvloop forwards a packet for about the CPU"
    " rtpengine's userspace path takes, so per core the two carry the same load; what gives"
    " out first is tail latency: packets waiting for a busy or descheduled process on 2"
    " cores shared with the generator and the other engineers' jobs. The worker pool"
    " (`box-wN`) is how the firmware now relays: the SIP process keeps each call's"
    " signalling side (`RemoteRelaySession`: `open`/`set_remote`/`close` are one small"
    " command each over a Unix socket, counters come back once a second and with the"
    " close) and N worker processes, each its own uvloop and slice of the port range,"
    " forward; packets never cross a process boundary. On the box that takes media off"
    " the loop that parses SIP (sip.media_workers, default one per core but one); in"
    " this bench the server process has no SIP to do, so `box` vs `box-w1` isolates the"
    " cost of the split (the command round-trips, the counter pushes) and `box-w2` what a"
    " second forwarding process buys when there is a second core to run it. On 2 shared"
    " cores with the generator taking its share, that is little: the ceiling moves with"
    " the machine's background load more than with the process layout. A C path (a"
    " cffi-loaded forwarder on recvmmsg/sendmmsg, or kernel forwarding as rtpengine's"
    " module does) would cut the per-packet CPU behind the same `RemoteRelaySession`.",
]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class Step:
    target: str
    calls: int
    sent: int
    received: int
    lat_p50: int  # us
    lat_p99: int
    jit_p99: int
    lag_p99: int  # generator's lateness against its schedule
    cpu: float | None  # target CPU seconds over the step
    gen_cpu: float
    seconds: float
    bad: int = 0  # datagrams that were not the generator's (stray traffic on a shared host)
    note: str = ""
    retry: bool = False  # the second try of a level

    @property
    def loss(self) -> float:
        return 100.0 * max(0, self.sent - self.received) / self.sent if self.sent else 100.0

    @property
    def held(self) -> bool:
        return (
            self.sent > 0
            and self.loss <= LOSS_LIMIT
            and self.jit_p99 <= JITTER_LIMIT_US
            and not self.note
        )

    @property
    def cpu_per_call(self) -> float | None:
        """CPU seconds per call-second (a fraction of one core per call)."""
        return None if self.cpu is None else self.cpu / self.seconds / self.calls

    @property
    def us_per_packet(self) -> float | None:
        return None if self.cpu is None or not self.received else self.cpu * 1e6 / self.received

    def line(self) -> str:
        cpu = ""
        if self.cpu is not None:
            cpu = (
                f", target CPU {100 * self.cpu / self.seconds:.0f}% of a core"
                f" ({1e6 * (self.cpu_per_call or 0):.0f} us/call-s,"
                f" {self.us_per_packet or 0:.1f} us/packet)"
            )
        verdict = "held" if self.held else "NOT held"
        note = f" [{self.note}]" if self.note else ""
        note += " (retry)" if self.retry else ""
        note += f" ({self.bad} stray datagrams ignored)" if self.bad else ""
        return (
            f"[{self.target:9}] {self.calls:5,} calls: sent {self.sent:,}, loss {self.loss:.3f}%,"
            f" latency p50/p99 {self.lat_p50}/{self.lat_p99} us, jitter p99 {self.jit_p99} us,"
            f" generator lag p99 {self.lag_p99} us, generator CPU {self.gen_cpu:.1f} s{cpu}"
            f" -> {verdict}{note}"
        )


class Target(Protocol):
    name: str
    pts: tuple[int, int]  # payload types phone A and phone B send

    def setup(self, phones: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
        """Sessions for ``phones`` (A port, B port); -> where each phone socket sends
        (A0, B0, A1, B1, ...) and the PIDs whose CPU to count."""
        ...

    def teardown(self) -> str:
        """End the sessions; a note when something was off."""
        ...


class Loopback:
    name = "loopback"
    pts = (8, 8)

    def setup(self, phones: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
        return [port for a, b in phones for port in (b, a)], []

    def teardown(self) -> str:
        return ""


class BoxRelay:
    """relay_server.py processes: RelaySession (relay) or MediaBridge (transcode).

    With ``workers`` > 1 the calls are shared out between that many server processes,
    each with its own slice of the port range: what a relay whose forwarding runs in
    worker processes (one event loop per core) would do.
    """

    def __init__(self, mode: str, workers: int = 1, pool: int = 0) -> None:
        self.mode = mode
        self.workers = workers
        self.pool = pool  # > 0: one server process with a RelayWorkerPool of that many
        base = "box" if mode == "relay" else "transcode"
        self.name = base if workers == 1 else f"{base}-{workers}w"
        if pool:
            self.name = f"box-w{pool}"
        self.pts = (8, 8) if mode == "relay" else (8, 0)
        self.procs: list[subprocess.Popen[str]] = []

    def setup(self, phones: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
        span = (LAST_PORT - FIRST_PORT + 1) // self.workers
        shares = [phones[w :: self.workers] for w in range(self.workers)]
        for w in range(self.workers):
            first = FIRST_PORT + w * span
            args = [self.mode, str(first), str(first + span - 1)]
            if self.pool:
                args = ["pool", str(POOL_FIRST), str(LAST_PORT), str(self.pool)]
            proc = subprocess.Popen(
                [sys.executable, str(HERE / "relay_server.py"), *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                text=True,
            )
            self.procs.append(proc)
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(shares[w]) + "\n")
            proc.stdin.flush()
        ports: list[list[list[int]]] = []
        pids: list[int] = []
        for proc in self.procs:
            answer = json.loads(_readline(proc, 120))
            if not isinstance(answer, dict) or "ports" not in answer:
                raise RuntimeError(f"relay server could not open its sessions: {answer}")
            ports.append(answer["ports"])
            pids += answer["pids"]
        dests: list[int] = []
        for i in range(len(phones)):
            dests += ports[i % self.workers][i // self.workers]
        return dests, pids

    def teardown(self) -> str:
        procs, self.procs = self.procs, []
        notes = []
        for proc in procs:
            try:
                assert proc.stdin is not None
                proc.stdin.write("quit\n")
                proc.stdin.close()
                proc.wait(timeout=60)
            finally:
                _stop(proc)
            if proc.returncode != 0:
                notes.append(f"relay server exited {proc.returncode}")
        return "; ".join(notes)


class Rtpengine:
    name = "rtpengine"
    pts = (8, 8)

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.ng: NgClient | None = None
        self.calls: list[tuple[str, str]] = []
        self.step = 0

    def start(self) -> None:
        binary = shutil.which("rtpengine")
        if binary is None:
            raise RuntimeError("rtpengine not installed (Debian rtpengine-daemon)")
        log = open(self.workdir / "rtpengine.log", "wb")  # noqa: SIM115 (lives with the process)
        self.proc = subprocess.Popen(
            [
                binary,
                "--config-file=none",
                "--table=-1",
                "--interface=lo/127.0.0.1",
                f"--listen-ng=127.0.0.1:{NG_PORT}",
                f"--port-min={FIRST_PORT}",
                f"--port-max={LAST_PORT}",
                "--delete-delay=0",
                "--num-threads=2",
                "--foreground",
                "--log-stderr",
                "--log-level=4",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.ng = NgClient(("127.0.0.1", NG_PORT), timeout=0.5, retries=2)
        deadline = time.monotonic() + 15
        while True:
            try:
                self.ng.ping()
                return
            except Exception:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(
                        "rtpengine did not answer ping; see " + str(self.workdir / "rtpengine.log")
                    ) from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.ng is not None:
            self.ng.close()
            self.ng = None
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None

    def setup(self, phones: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
        assert self.ng is not None and self.proc is not None
        self.ng.timeout = 2.0
        self.step += 1
        dests: list[int] = []
        for i, (a, b) in enumerate(phones):
            call_id, from_tag = f"bench-{self.step}-{i}", f"a{i}"
            self.calls.append((call_id, from_tag))
            toward_b = sdp_port(self.ng.offer(call_id, from_tag, audio_sdp(a, 2 * i)))
            toward_a = sdp_port(self.ng.answer(call_id, from_tag, f"b{i}", audio_sdp(b, 2 * i + 1)))
            dests += [toward_a, toward_b]
        return dests, [self.proc.pid]

    def teardown(self) -> str:
        assert self.ng is not None
        failed = 0
        for call_id, from_tag in self.calls:
            try:
                self.ng.delete(call_id, from_tag)
            except Exception:
                failed += 1
        self.calls = []
        return f"{failed} deletes failed" if failed else ""


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    """One stdout line of ``proc``, or RuntimeError after ``timeout`` seconds."""
    assert proc.stdout is not None
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise RuntimeError(f"{proc.args!r}: no output within {timeout} s")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"{proc.args!r} ended (exit {proc.wait()})")
    return line


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def compile_generator(workdir: Path) -> Path:
    binary = workdir / "rtpgen"
    subprocess.run(
        ["gcc", "-O2", "-Wall", "-o", str(binary), str(HERE / "rtpgen.c")],
        check=True,
    )
    return binary


def run_step(generator: Path, target: Target, calls: int, seconds: float) -> Step:
    gen = subprocess.Popen(
        [str(generator), str(calls), str(seconds), str(PPS), *map(str, target.pts)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    note = ""
    try:
        ports = [int(p) for p in _readline(gen, 30).split()]
        phones = [(ports[i], ports[i + 1]) for i in range(0, len(ports), 2)]
        try:
            dests, pids = target.setup(phones)
            assert gen.stdin is not None
            cpu0 = sum(cpu_seconds(pid) for pid in pids)
            gen.stdin.write(" ".join(map(str, dests)) + "\n")
            gen.stdin.close()
            result = json.loads(_readline(gen, seconds + 60))
            cpu = sum(cpu_seconds(pid) for pid in pids) - cpu0 if pids else None
        finally:
            note = target.teardown()
        gen.wait(timeout=10)
    finally:
        _stop(gen)
    return Step(
        target.name,
        calls,
        result["sent"],
        result["received"],
        result["lat_p50_us"],
        result["lat_p99_us"],
        result["jit_p99_us"],
        result["lag_p99_us"],
        cpu,
        result["cpu_s"],
        seconds,
        result["bad"],
        note,
    )


def sweep(
    generator: Path,
    targets: list[tuple[Target, list[int]]],
    seconds: float,
    log: list[str],
) -> dict[str, list[Step]]:
    """Step every target up its levels, interleaved (at each level every target still
    in the race takes its turn, so they meet the same background load). A failing step
    is run once more; a target leaves the race when the retry fails too."""
    results: dict[str, list[Step]] = {t.name: [] for t, _ in targets}
    alive = list(targets)
    for calls in sorted({n for _, levels in targets for n in levels}):
        for entry in list(alive):
            target, levels = entry
            if calls not in levels:
                continue
            step = None
            for attempt in range(2):
                step = run_step(generator, target, calls, seconds)
                step.retry = attempt > 0
                results[target.name].append(step)
                log.append(step.line())
                print(step.line(), flush=True)
                time.sleep(1.0)
                if step.held:
                    break
            if step is None or not step.held or calls == max(levels):
                alive.remove(entry)
    return results


def best(steps: list[Step]) -> Step | None:
    held = [s for s in steps if s.held]
    return max(held, key=lambda s: s.calls) if held else None


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="media-relay-bench-") as tmp:
        yield Path(tmp)


def commit() -> str:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="traffic per step")
    parser.add_argument("--quick", action="store_true", help="short smoke run, prints only")
    parser.add_argument("--levels", help="comma-separated call counts (default: the full steps)")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument(
        "--targets",
        default="loopback,box,box-w1,box-w2,rtpengine,transcode",
        help="comma-separated: loopback, box, box-w<N> (RelayWorkerPool of N workers),"
        " box-<N>w (N independent relay processes), rtpengine, transcode",
    )
    args = parser.parse_args()
    levels, transcode_levels, seconds = LEVELS, TRANSCODE_LEVELS, args.seconds
    if args.quick:
        levels, transcode_levels, seconds = [50, 200], [25, 50], 3.0
    if args.levels:
        levels = transcode_levels = [int(n) for n in args.levels.split(",")]
    wanted = args.targets.split(",")
    started = time.monotonic()
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    log: list[str] = []
    results: dict[str, list[Step]] = {}
    with workdir() as tmp:
        generator = compile_generator(tmp)
        rtpengine = Rtpengine(tmp)
        try:
            if "loopback" in wanted:
                results.update(sweep(generator, [(Loopback(), levels)], seconds, log))
            cap = best(results.get("loopback", []))
            race: list[tuple[Target, list[int]]] = []
            for name in wanted:
                target: Target
                if name == "loopback":
                    continue
                if name == "box":
                    target = BoxRelay("relay")
                elif name.startswith("box-w"):
                    target = BoxRelay("relay", pool=int(name[5:]))
                elif name.startswith("box-") and name.endswith("w"):
                    target = BoxRelay("relay", int(name[4:-1]))
                elif name == "transcode":
                    target = BoxRelay("transcode")
                elif name == "rtpengine":
                    rtpengine.start()
                    target = rtpengine
                else:
                    parser.error(f"unknown target {name}")
                chosen = transcode_levels if name == "transcode" else levels
                if cap is not None:
                    chosen = [n for n in chosen if n <= cap.calls] or chosen[:1]
                race.append((target, chosen))
            results.update(sweep(generator, race, seconds, log))
        finally:
            rtpengine.stop()
    text = report(results, log, when, time.monotonic() - started, seconds)
    print()
    print(text)
    if not args.quick and not args.no_write:
        write_section(text)
    return 0


def report(
    results: dict[str, list[Step]], log: list[str], when: str, took: float, seconds: float
) -> str:
    loop = best(results.get("loopback", []))
    rows = []
    for name, steps in results.items():
        top = best(steps)
        failing = steps[-1] if steps and not steps[-1].held else None
        added50 = added99 = None
        if top is not None and loop is not None and name != "loopback":
            base = next((s for s in results["loopback"] if s.calls == top.calls), loop)
            added50, added99 = top.lat_p50 - base.lat_p50, top.lat_p99 - base.lat_p99
        fail_text = "-"
        if failing is not None:
            fail_text = (
                f"{failing.calls:,}: loss {failing.loss:.2f}%, jitter p99 {failing.jit_p99:,} us"
            )
        elif steps:
            fail_text = f"none up to {steps[-1].calls:,} (last level tried)"
        rows.append(
            f"| {name} | {top.calls if top else 0:,} | "
            f"{fmt(top.cpu_per_call * 1e6 if top and top.cpu_per_call else None, ',.0f')} | "
            f"{fmt(top.us_per_packet if top else None, '.1f')} | "
            f"{fmt(top.lat_p50 if top else None, ',')} / {fmt(top.lat_p99 if top else None, ',')}"
            f" | {fmt(added50, ',')} / {fmt(added99, ',')} | "
            f"{fmt(top.jit_p99 if top else None, ',')} | {fail_text} |"
        )
    box, anchor = best(results.get("box", [])), best(results.get("rtpengine", []))
    transcode = best(results.get("transcode", []))
    lines = [
        SECTION,
        "",
        f"Measured {when} (local time) on this 2-core machine ({platform.processor() or 'x86_64'};"
        f" shared and noisy: compare the ratios), in {took / 60:.1f} min.",
        "",
        f"Command: `{COMMAND}`; firmware measured: commit {commit()}.",
        "",
        f"Load: `bench/media/rtpgen.c` (C, compiled by the bench), 2 sockets per call on"
        f" 127.0.0.1, {PPS} RTP packets/s per direction per call (172 bytes), {seconds:g} s per"
        " step, sends spread evenly over each 20 ms. A step is held when loss <= 0.1% and the"
        " jitter p99 (RFC 3550 D between consecutive packets of a flow, from kernel receive"
        " timestamps) <= 5 ms. `loopback` is the generator alone (phones send straight to each"
        " other): its capacity caps the levels tried on the targets. `box`: `RelaySession` in"
        " its own uvloop process (`bench/media/relay_server.py`): the before. `box-wN`: the"
        " after, `RelayWorkerPool` with N worker processes (`firmware/media/relay_workers.py`):"
        " the server process plays the SIP service and opens each call with `pool.open`"
        " (commands over a Unix socket), the workers forward; its CPU counts the server and"
        " the workers. `rtpengine`: 10.5 userspace"
        " (`--table=-1`, 2 threads), sessions set up over NG (`bench/media/ng.py`);"
        " `transcode`: `MediaBridge` leg A PCMA, leg B PCMU. CPU per call: the target"
        " process's utime+stime over the step / calls / seconds (us of CPU per second of"
        " call); added latency: minus the loopback's at the same load.",
        "",
        "| target | max calls held | CPU us per call-second | CPU us per packet"
        " | latency p50 / p99 us | added p50 / p99 us | jitter p99 us | first failing step |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    relays = {
        name: best(steps)
        for name, steps in results.items()
        if name == "box" or name.startswith("box-")
    }
    if anchor is not None:
        for name, top in relays.items():
            if top is None:
                continue
            lines.append(
                f"{name}/rtpengine: {top.calls / anchor.calls:.2f} of the anchor's concurrent"
                f" calls ({top.calls:,} vs {anchor.calls:,})"
                + (
                    f"; CPU per packet {top.us_per_packet:.1f} us vs"
                    f" {anchor.us_per_packet:.1f} us"
                    f" ({top.us_per_packet / anchor.us_per_packet:.2f}x)."
                    if top.us_per_packet and anchor.us_per_packet
                    else "."
                )
            )
    pools = {name: top for name, top in relays.items() if name.startswith("box-w")}
    for name, top in pools.items():
        lines.append(
            f"Before/after ({name}: forwarding in {name[5:]} RelayWorkerPool worker"
            f" process(es)): box {box.calls if box else 0:,} -> {name}"
            f" {top.calls if top else 0:,} calls held."
        )
    held = [(top.calls, name) for name, top in relays.items() if top is not None]
    if held:
        most, who = max(held)
        lines.append(
            f"Goal >= {GOAL_CALLS:,} concurrent relayed calls: "
            + (
                f"met by {who} ({most:,})."
                if most >= GOAL_CALLS
                else f"NOT met (best {who}, {most:,})."
            )
        )
    last_failed = [steps[-1] for steps in results.values() if steps and not steps[-1].held]
    if last_failed and all(s.loss <= LOSS_LIMIT for s in last_failed):
        lines.append(
            "Every failing step failed on jitter, none on loss"
            f" (worst loss {max(s.loss for s in last_failed):.3f}%): the limit is how long packets"
            " wait for a busy or descheduled process on 2 shared cores, not packets dropped."
        )
    if transcode is not None:
        lines.append(
            f"Transcoding (MediaBridge PCMA<->PCMU): {transcode.calls:,} calls held,"
            f" {transcode.us_per_packet or 0:.1f} us CPU per packet."
        )
    lines += ["", *NEXT_STEP, "", "Every step:", "", "```", *log, "```", ""]
    return "\n".join(lines)


def write_section(text: str) -> None:
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    start = current.find(SECTION)
    if start < 0:
        new = current.rstrip("\n") + "\n\n" + text
    else:
        following = re.search(r"^## ", current[start + len(SECTION) :], re.MULTILINE)
        end = len(current) if following is None else start + len(SECTION) + following.start()
        new = current[:start] + text + ("\n" + current[end:] if following else "")
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(new.rstrip("\n") + "\n")
    tmp.replace(RESULTS)


if __name__ == "__main__":
    sys.exit(main())
