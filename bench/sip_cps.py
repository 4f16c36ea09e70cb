"""SIP call rate through the box, with a Kamailio stateful proxy measured in the same run.

A SIPp UAC calls a SIPp UAS through the target: INVITE - 200 - ACK - BYE - 200, no media,
no pause before the BYE (``bench/sip/uac.xml``, ``bench/sip/uas.xml``: the same two
scenarios for both targets, no 180). Through the box every call is two dialogs (the
B2BUA's legs A and B) plus an anchored media relay session (4 UDP ports); the UAC is
trusted as a trunk by its source address, the UAS registered as extension 201. Through
Kamailio (``tm``/``sl``/``rr``/``maxfwd``, 4 children, ``bench/sip/kamailio.cfg``) a call
is two stateful transactions and a record-routed dialog the proxy keeps no state for.

The rate steps up (x1.5) from ``--start`` calls/s; a step places ``rate x hold`` calls at
``rate`` calls/s and is *held* when every call succeeded at the UAC and at the UAS and
the run did not stretch (<= 5 % + 1 s over ``hold``). After the first failing step the
target is restarted (an overloaded box keeps calls whose ACK or BYE it dropped, with
their media ports) and two bisection steps run. Reported per target: the highest rate
held, the ratio box/Kamailio, the target's CPU per call (utime+stime of all its
processes and threads over the step and the work it left behind, net of its idle CPU;
for the box also its event loop thread alone), retransmissions, SIPp's mean setup time,
datagrams the kernel dropped at each socket, and for the box how far its CDRs lag.

Memory, on the box: per active call (RSS delta with ``--dialogs`` calls up at once), per
registered contact through the daemon (RSS delta when 1,999 more extensions register:
the configuration holds at most 2,000 users) and with 10,000 registrations in-process
(``Registrar`` + ``LocationService`` as the daemon wires them: tracemalloc, and RSS in a
second fresh process), how its RSS grows over the rate steps, and over a ``--soak`` of
calls at one rate with RSS sampled every 5 s (does it level off once the calls' 32 s of
transaction state is reached?).

Past its capacity the box refuses new INVITEs with 503 + Retry-After (overload control);
SIPp counts those calls as failed ("unexpected message"), so a step with 503s is not
held, but calls it admitted complete and no datagrams are lost.

``--profile`` adds a py-spy run of the box at its highest held rate (hot spots in the
output and in RESULTS.md).

Run: ``.venv/bin/python bench/sip_cps.py`` (about 10 minutes; writes bench/RESULTS.md),
or ``--quick`` for a smoke run of about 3 minutes (prints only). Every process it starts
(SIPp, Kamailio, the daemon) is stopped on exit, Ctrl-C, SIGTERM or failure. The machine
is shared and has 2 cores: compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = Path(__file__).resolve().parent / "sip"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from peers.box import Daemon, start_daemon, stop_daemon  # noqa: E402

COMMAND = ".venv/bin/python bench/sip_cps.py"  # + the options given
KAMAILIO_CHILDREN = 4
CLK_TCK = os.sysconf("SC_CLK_TCK")
UAS_EXTENSION = "201"
UAS_PASSWORD = "bench-201-secret"
REG_FIRST_EXTENSION = 30000  # extensions 30000.. registered for the memory figure
GOAL_CPS = 1000
SIPP_BUFFER = 4 << 20  # SIPp's socket buffers (its default, 64 KiB, drops bursts)
SIPP_MAX_CALLS = 15_000  # -l: SIPp wants open calls + sockets below the fd limit (20,000)
# The box's own default media range (4 ports a call: 2,500 calls up at once). Test daemons
# get a narrow random range each (so that several run side by side); a call-rate
# benchmark needs the real one.
RTP_RANGE = "10000-19999"


# -- small helpers -------------------------------------------------------------------------


def log(text: str) -> None:
    print(text, flush=True)


def free_udp_ports(count: int = 1) -> int:
    """The first of ``count`` consecutive UDP ports free on 127.0.0.1 (SIPp's ``-mp``
    binds the port and the ones above it)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count > 65535 or (base <= 19999 and base + count > 10000):
            continue  # keep clear of the box's RTP relay range
        held: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError("no free UDP ports on 127.0.0.1")


def stat_cpu_seconds(path: str) -> float:
    """utime + stime from a ``/proc/.../stat`` file, in seconds; 0 if it is gone."""
    try:
        text = Path(path).read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_cpu_seconds(pid: int) -> float:
    """CPU of one process, all its threads."""
    return stat_cpu_seconds(f"/proc/{pid}/stat")


def thread_cpu_seconds(pid: int, tid: int) -> float:
    """CPU of one thread of ``pid``."""
    return stat_cpu_seconds(f"/proc/{pid}/task/{tid}/stat")


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


def udp_drops(port: int) -> int | None:
    """Datagrams the kernel dropped (receive buffer full) at the UDP socket bound to
    ``port``; None while no socket is bound there."""
    found, total = False, 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 12 and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found, total = True, total + int(fields[12])
    return total if found else None


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def stop_process(proc: subprocess.Popen[Any], *, group: bool = False, grace: float = 10) -> None:
    """SIGTERM, then SIGKILL after ``grace`` s; ``group``: the process group it leads too."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(5)
    if group:  # forked workers (Kamailio's children) must not outlive their parent
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def fmt_rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:,.0f}/s"


def fmt_ms(ms: float) -> str:
    """SIPp's response times have 1 ms resolution."""
    return "-" if math.isnan(ms) else ("<1 ms" if ms < 1 else f"{ms:,.0f} ms")


def fmt_bytes(n: float) -> str:
    return f"{n / 1024:,.1f} KiB" if abs(n) >= 1024 else f"{n:,.0f} B"


# -- SIPp -----------------------------------------------------------------------------------


def sipp_duration_ms(text: str) -> float:
    """SIPp's ``HH:MM:SS:uuuuuu`` statistics durations, in ms."""
    try:
        h, m, s, us = (int(x) for x in text.split(":"))
    except ValueError:
        return math.nan
    return ((h * 60 + m) * 60 + s) * 1000 + us / 1000


def read_sipp_stats(path: Path) -> dict[str, str]:
    """The newest complete row of a SIPp ``-trace_stat`` file, by column name."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    if len(lines) < 2:
        return {}
    header = lines[0].rstrip(";").split(";")
    for line in reversed(lines[1:]):
        row = line.rstrip(";").split(";")
        if len(row) == len(header):
            return dict(zip(header, row, strict=True))
    return {}


def stat_int(stats: dict[str, str], key: str) -> int:
    try:
        return int(stats.get(key, "0") or 0)
    except ValueError:
        return 0


# SIPp error log events: an aborted call and why, a message for a call already over
_SIPP_EVENT = re.compile(
    r"Aborting call on (unexpected message|UDP retransmission timeout|[a-zA-Z ]+?)"
    r"(?: for|:| while)"
    r"|Dead call \S+ \(([^)]*)\)"
    r"|(Call-Id '\S+' timed out|Timeout on[^\n]*)"
)


@dataclass
class Sipp:
    """Starts SIPp instances toward one target, all on 127.0.0.1, files under ``work``."""

    work: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)  # run name -> SIPp's pid
    extra_uac: tuple[str, ...] = ()  # more SIPp options for the UAC (debugging)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        out = (self.work / f"{name}.out").open("wb")
        proc = subprocess.Popen(
            ["sipp", "-i", "127.0.0.1", "-nostdin", "-trace_err", "-trace_stat", "-fd", "1",
             "-stf", str(self.work / f"{name}.csv"), "-buff_size", str(SIPP_BUFFER), *args],
            cwd=self.work, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        out.close()
        self.processes.append(proc)
        self.pids[name] = proc.pid
        return proc

    def stats(self, name: str) -> dict[str, str]:
        return read_sipp_stats(self.work / f"{name}.csv")

    def error_text(self, name: str) -> str:
        """SIPp's error log of the run named ``name`` (SCENARIO_PID_errors.log), or its
        screen output."""
        pid = self.pids.get(name)
        logs = list(self.work.glob(f"*_{pid}_errors.log")) if pid else []
        text = "".join(p.read_text(errors="replace") for p in logs)
        if not text:
            with contextlib.suppress(OSError):
                text = (self.work / f"{name}.out").read_text(errors="replace")
        return text

    def errors(self, name: str, limit: int = 1500) -> str:
        """The start of that error log (for exceptions)."""
        return self.error_text(name)[:limit]

    def failure_summary(self, name: str, top: int = 3) -> str:
        """Why calls of the run named ``name`` failed, most frequent first."""
        reasons: Counter[str] = Counter()
        for m in _SIPP_EVENT.finditer(self.error_text(name)):
            if m.group(2) is not None:  # a message for a call already over: not a failure
                reasons[f"late message for a call already over ({m.group(2)})"] += 1
            else:
                reasons[" ".join((m.group(1) or m.group(3)).split())] += 1
        return "; ".join(f"{n:,} x {why}" for why, n in reasons.most_common(top))

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        stop_process(proc, grace=3)
        if proc in self.processes:
            self.processes.remove(proc)

    def stop_all(self) -> None:
        for proc in self.processes:
            stop_process(proc, grace=3)
        self.processes.clear()

    def register(
        self, name: str, target_port: int, local_port: int, users: list[tuple[str, str]], rate: int
    ) -> dict[str, str]:
        """REGISTER ``users`` ((extension, password), digest auth) from ``local_port``."""
        csv = self.work / f"{name}-users.csv"
        csv.write_text(
            "SEQUENTIAL\n"
            + "".join(
                f"{ext};[authentication username={ext} password={pw}];\n" for ext, pw in users
            )
        )
        proc = self.start(
            name, f"127.0.0.1:{target_port}", "-sf", str(SCENARIOS / "register.xml"),
            "-inf", str(csv), "-p", str(local_port), "-mp", str(free_udp_ports(4)),
            "-m", str(len(users)), "-r", str(rate), "-l", str(max(rate, 10)),
            "-timeout", "60s", "-recv_timeout", "10000",
        )  # fmt: skip
        rc = proc.wait(90)
        stats = self.stats(name)
        if rc != 0 or stat_int(stats, "SuccessfulCall(C)") != len(users):
            raise RuntimeError(f"registration failed (sipp rc={rc}): {self.errors(name)}")
        return stats

    def start_uas(self, name: str, port: int) -> subprocess.Popen[bytes]:
        proc = self.start(
            name, "-sf", str(SCENARIOS / "uas.xml"), "-p", str(port),
            "-mp", str(free_udp_ports(4)), "-recv_timeout", "15000", "-timeout", "3600s",
        )  # fmt: skip
        time.sleep(0.3)
        if proc.poll() is not None:
            raise RuntimeError(f"SIPp UAS did not start: {self.errors(name)}")
        return proc

    def start_uac(
        self,
        name: str,
        target_port: int,
        local_port: int,
        *,
        rate: int,
        calls: int,
        limit: int,
        duration_ms: int,
        timeout_s: int,
    ) -> subprocess.Popen[bytes]:
        return self.start(
            name, f"127.0.0.1:{target_port}", "-sf", str(SCENARIOS / "uac.xml"),
            "-s", UAS_EXTENSION, "-p", str(local_port), "-mp", str(free_udp_ports(4)),
            "-r", str(rate), "-rp", "1000", "-m", str(calls), "-l", str(limit),
            "-d", str(duration_ms), "-timeout", f"{timeout_s}s", "-recv_timeout", "10000",
            *self.extra_uac,
        )  # fmt: skip


# -- targets --------------------------------------------------------------------------------


@dataclass
class Step:
    """One rate step against one target."""

    target: str
    rate: int
    hold: float
    calls: int
    ok: int = 0
    failed: int = 0
    uas_failed: int = 0
    retransmissions: int = 0  # by the UAC and the UAS (a lost or late message)
    elapsed: float = 0.0
    cpu_s: float = 0.0  # the target's CPU over the step and its tail, net of idle CPU
    loop_cpu_s: float = math.nan  # of that, the main thread's (the box's event loop)
    setup_ms: float = math.nan
    rc: int = 0
    note: str = ""
    # the box writes a CDR per call on a worker thread: how far behind it was when the
    # last call ended, and how long it took to catch up (None: not within the wait)
    cdr_behind: int | None = None
    cdr_drain_s: float | None = None
    # datagrams dropped by the kernel (receive buffer full) at the target's SIP socket,
    # and at the SIPp UAS's and UAC's (the load generators)
    drops: tuple[int, int, int] = (0, 0, 0)

    @property
    def held(self) -> bool:
        return (
            self.rc == 0
            and self.failed == 0
            and self.uas_failed == 0
            and self.ok == self.calls
            and self.elapsed <= self.hold * 1.05 + 1.0
        )

    @property
    def cpu_us_per_call(self) -> float:
        return self.cpu_s / self.calls * 1e6 if self.calls else math.nan

    @property
    def loop_us_per_call(self) -> float:
        return self.loop_cpu_s / self.calls * 1e6 if self.calls else math.nan

    def line(self) -> str:
        verdict = "held" if self.held else f"NOT held ({self.note or 'see counts'})"
        loop = "" if math.isnan(self.loop_cpu_s) else f" ({self.loop_us_per_call:,.0f} in the loop)"
        drops = ""
        if any(self.drops):
            drops = ", UDP drops target/UAS/UAC {}/{}/{}".format(*self.drops)
        cdr = ""
        if self.cdr_behind:
            drained = ">30 s" if self.cdr_drain_s is None else f"{self.cdr_drain_s:.1f} s"
            cdr = f", {self.cdr_behind:,} CDRs open at the end (all closed: {drained})"
        return (
            f"[{self.target}] {self.rate:>5,} calls/s x {self.hold:g} s: "
            f"{self.ok:,}/{self.calls:,} ok, {self.failed} failed (UAS {self.uas_failed}), "
            f"{self.retransmissions} retransmissions, {self.elapsed:5.1f} s, "
            f"setup {fmt_ms(self.setup_ms)}, {self.cpu_us_per_call:,.0f} us CPU/call{loop}{cdr}{drops} "
            f"-> {verdict}"
        )


@dataclass
class Target:
    """A system under test: where the UAC sends, whose CPU counts, and its UAS."""

    name: str
    port: int
    root_pid: int
    sipp: Sipp
    uas_name: str
    uas_port: int
    idle_cpu: float = 0.0  # CPU seconds per second when no call runs
    idle_loop_cpu: float = 0.0  # of which the main thread's
    single_loop: bool = False  # one event loop thread: report its share of the CPU
    records: Callable[[], int | None] | None = None  # calls with a complete CDR so far
    steps: list[Step] = field(default_factory=list)
    search_note: str = ""
    profile: list[str] = field(default_factory=list)  # py-spy hot spots (--profile)
    # a fresh instance after a failed step: an overloaded target keeps what the overload
    # left (the box: calls whose ACK or BYE was dropped, with their relay ports), which
    # would fail the next, lower step for reasons of its own
    restart: Callable[[], None] | None = None
    failed_since_restart: bool = False
    _uas_failed_seen: int = 0

    def pids(self) -> list[int]:
        return process_tree(self.root_pid)

    def cpu(self) -> float:
        return sum(proc_cpu_seconds(pid) for pid in self.pids())

    def loop_cpu(self) -> float:
        """CPU of the root process's main thread (the box's asyncio loop)."""
        return thread_cpu_seconds(self.root_pid, self.root_pid)

    def measure_idle(self, seconds: float = 2.0) -> float:
        before, loop_before, began = self.cpu(), self.loop_cpu(), time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - began
        self.idle_cpu = (self.cpu() - before) / elapsed
        self.idle_loop_cpu = (self.loop_cpu() - loop_before) / elapsed
        return self.idle_cpu

    def settle(self, max_wait: float = 30.0, records_goal: int | None = None) -> float | None:
        """Wait until the target's CPU is back near idle (deferred work done) and, with
        ``records_goal``, its CDR count reached it; returns when that count was reached
        (seconds from now; None if it was not within ``max_wait``)."""
        began = time.monotonic()
        deadline = began + max_wait
        last = self.cpu()
        reached: float | None = None
        while time.monotonic() < deadline:
            if reached is None and (records_goal is None or self.count_records() >= records_goal):
                reached = time.monotonic() - began
            time.sleep(0.5)
            now = self.cpu()
            idle = (now - last) / 0.5 <= self.idle_cpu + 0.03
            last = now
            if idle and reached is not None:
                break
        return reached

    def count_records(self) -> int:
        count = self.records() if self.records is not None else None
        return -1 if count is None else count

    def uas_failures(self) -> int:
        return stat_int(self.sipp.stats(self.uas_name), "FailedCall(C)")

    @property
    def best(self) -> Step | None:
        held = [s for s in self.steps if s.held]
        return max(held, key=lambda s: s.rate) if held else None

    def run_step(self, rate: int, hold: float, uac_port: int, *, tag: str = "") -> Step:
        """Place ``rate x hold`` calls at ``rate`` calls/s; count, time and cost them."""
        calls = max(1, round(rate * hold))
        name = f"uac-{self.name}-{rate}{tag}"
        step = Step(self.name, rate, hold, calls)
        uas_before = self.uas_failures()
        uas_retrans_before = stat_int(self.sipp.stats(self.uas_name), "Retransmissions(C)")
        records_before = self.count_records() if self.records is not None else None
        drops_before = (udp_drops(self.port) or 0, udp_drops(self.uas_port) or 0)
        uac_drops = 0
        cpu_before, loop_before = self.cpu(), self.loop_cpu()
        began = time.monotonic()
        proc = self.sipp.start_uac(
            name, self.port, uac_port, rate=rate, calls=calls,
            limit=min(SIPP_MAX_CALLS, max(200, rate * 10)),
            duration_ms=0, timeout_s=int(hold + 40),
        )  # fmt: skip
        while proc.poll() is None:  # the UAC's socket goes with it: read its drops now
            if time.monotonic() - began > hold + 60:
                stop_process(proc, grace=2)
                step.note = "SIPp did not finish"
                break
            uac_drops = max(uac_drops, udp_drops(uac_port) or 0)
            time.sleep(0.25)
        step.rc = proc.returncode if proc.returncode is not None else -1
        step.elapsed = time.monotonic() - began
        step.drops = (
            (udp_drops(self.port) or 0) - drops_before[0],
            (udp_drops(self.uas_port) or 0) - drops_before[1],
            uac_drops,
        )
        goal = None
        if records_before is not None and records_before >= 0:
            ended = self.sipp.stats(name)
            # calls refused (503 under overload) have no CDR: count the successful ones
            goal = records_before + stat_int(ended, "SuccessfulCall(C)")
            step.cdr_behind = max(0, goal - self.count_records())
        # a failed step may leave calls the target never ends: do not wait long for them
        step.cdr_drain_s = self.settle(10.0 if step.rc else 30.0, records_goal=goal)
        wall = time.monotonic() - began
        step.cpu_s = max(0.0, self.cpu() - cpu_before - self.idle_cpu * wall)
        if self.single_loop:
            step.loop_cpu_s = max(0.0, self.loop_cpu() - loop_before - self.idle_loop_cpu * wall)
        time.sleep(1.2)  # the UAS's statistics file is rewritten every second
        stats = self.sipp.stats(name)
        step.ok = stat_int(stats, "SuccessfulCall(C)")
        step.failed = stat_int(stats, "FailedCall(C)")
        step.retransmissions = stat_int(stats, "Retransmissions(C)") + max(
            0, stat_int(self.sipp.stats(self.uas_name), "Retransmissions(C)") - uas_retrans_before
        )
        step.setup_ms = sipp_duration_ms(stats.get("ResponseTimesetup(C)", ""))
        step.uas_failed = max(0, self.uas_failures() - uas_before)
        if not step.note:
            if step.failed or step.uas_failed or step.ok != calls:
                why = [self.sipp.failure_summary(name), self.sipp.failure_summary(self.uas_name)]
                detail = " / UAS: ".join(w for w in why if w)
                step.note = f"failed calls: {detail}" if detail else "failed calls"
            elif step.elapsed > hold * 1.05 + 1.0:
                step.note = f"rate not held: {calls:,} calls took {step.elapsed:.1f} s"
        self.steps.append(step)
        self.failed_since_restart |= not step.held
        return step

    def fresh(self) -> None:
        """Restart the target if a step failed since it started."""
        if self.failed_since_restart and self.restart is not None:
            log(f"  restarting {self.name} (the failed step left it loaded)")
            self.restart()
            self.failed_since_restart = False


def next_rate(rate: int, factor: float) -> int:
    """``rate x factor`` rounded to 2 significant digits (readable steps)."""
    raw = rate * factor
    unit = 10 ** max(0, int(math.log10(raw)) - 1)
    return max(rate + 1, int(round(raw / unit) * unit))


def search(target: Target, args: argparse.Namespace, uac_port: int, deadline: float) -> Step | None:
    """Step the rate up until a step fails; then bisect ``args.bisect`` times."""
    step_cost = args.hold + 15  # the step, its settling, a restart
    rate, failed_rate = args.start, None
    steps = 0
    while rate <= args.max_rate and steps < args.max_steps:
        if time.monotonic() + step_cost > deadline:
            target.search_note = f"search cut by the time budget at {rate:,} calls/s"
            break
        step = target.run_step(rate, args.hold, uac_port)
        steps += 1
        log("  " + step.line())
        if not step.held:
            failed_rate = rate
            break
        rate = next_rate(rate, args.factor)
    else:
        if failed_rate is None:
            target.search_note = (
                f"stopped at the step limit ({args.max_steps} steps, --max-rate {args.max_rate:,})"
            )
    best = target.best
    for _ in range(args.bisect if failed_rate is not None else 0):
        low = best.rate if best else 0
        assert failed_rate is not None
        mid = (
            int(round(math.sqrt(max(low, 1) * failed_rate) / 10) * 10) if low else failed_rate // 2
        )
        if not low < mid < failed_rate or time.monotonic() + step_cost + 15 > deadline:
            break
        target.fresh()
        step = target.run_step(mid, args.hold, uac_port, tag="b")
        log("  " + step.line())
        if step.held:
            best = step
        else:
            failed_rate = mid
    if best is None and not target.search_note:
        target.search_note = f"no rate held (lowest tried {args.start:,} calls/s)"
    return target.best


# -- the box ----------------------------------------------------------------------------


def box_config(uac_port: int, extra_users: int) -> str:
    lines = [
        "users:",
        f'  - {{extension: "{UAS_EXTENSION}", name: Bench UAS, sip_password: "{UAS_PASSWORD}"}}',
    ]
    for i in range(extra_users):
        ext = REG_FIRST_EXTENSION + i
        lines.append(
            f'  - {{extension: "{ext}", name: Bench {ext}, sip_password: "bench-{ext}-pw"}}'
        )
    lines += [
        "trunks:",
        f"  - {{name: bench, host: 127.0.0.1, port: {uac_port}, registration: false}}",
        "sip: {digest_algorithms: [MD5]}",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class BoxMemory:
    """The daemon's resident memory (VmRSS) at the moments that matter."""

    calls_held: int = 0
    rss_idle: int = 0  # before the calls are placed
    rss_held: int = 0  # with ``calls_held`` calls up
    rss_after: int = 0  # once they ended
    registrations: int = 0
    rss_before_reg: int = 0
    rss_after_reg: int = 0
    rss_before_steps: int = 0  # the rate steps: how RSS moves over many calls
    rss_end: int = 0
    calls_in_steps: int = 0
    # --soak: RSS sampled while calls run at one rate for a long time, and after
    soak_rate: int = 0
    soak_seconds: float = 0.0
    soak_calls: int = 0
    soak_failed: int = 0
    soak_samples: list[tuple[float, int]] = field(default_factory=list)  # (s, RSS bytes)
    soak_after: int = 0  # RSS 40 s after the last call (its transactions are gone)

    def soak_growth(self, start: float, end: float) -> float:
        """RSS growth per call between the samples nearest ``start`` and ``end`` (s)."""
        samples = self.soak_samples
        if len(samples) < 2 or not self.soak_rate:
            return math.nan
        a = min(samples, key=lambda x: abs(x[0] - start))
        b = min(samples, key=lambda x: abs(x[0] - end))
        calls = (b[0] - a[0]) * self.soak_rate
        return (b[1] - a[1]) / calls if calls > 0 else math.nan

    @property
    def per_call(self) -> float:
        return (self.rss_held - self.rss_idle) / self.calls_held if self.calls_held else math.nan

    @property
    def per_registration(self) -> float:
        if not self.registrations:
            return math.nan
        return (self.rss_after_reg - self.rss_before_reg) / self.registrations

    @property
    def growth_per_call(self) -> float:
        if not self.calls_in_steps:
            return math.nan
        return (self.rss_end - self.rss_before_steps) / self.calls_in_steps


def hold_calls(target: Target, daemon: Daemon, n: int, uac_port: int, memory: BoxMemory) -> None:
    """Hold ``n`` calls up through the box at once; the daemon's RSS before and at the peak.

    The calls ramp up at <= 250/s and are all up for >= 8 s; RSS is taken when the UAC
    and the UAS both count ``n`` calls up, plus 1.5 s (the last ACKs are in). Within a
    call's first 32 s its INVITE transactions are still kept (RFC 6026 timers L/M), so
    this is the cost of a young call, the one that matters at a high call rate.
    """
    pid = daemon.proc.pid
    memory.rss_idle = rss_bytes(pid)
    rate = min(250, n)
    ramp = n / rate
    duration_ms = int((ramp + 8) * 1000)
    name = f"uac-hold-{n}"
    proc = target.sipp.start_uac(
        name, target.port, uac_port, rate=rate, calls=n, limit=n, duration_ms=duration_ms,
        timeout_s=int(ramp * 2 + duration_ms / 1000 + 30),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + ramp + 6
        current = 0
        while time.monotonic() < deadline:
            time.sleep(0.5)
            current = stat_int(target.sipp.stats(name), "CurrentCall")
            uas_up = stat_int(target.sipp.stats(target.uas_name), "CurrentCall")
            if current >= n and uas_up >= n:
                break
        time.sleep(1.5)
        memory.rss_held = rss_bytes(pid)
        memory.calls_held = current
        if current < n:
            log(f"  warning: only {current} of {n} calls were up when RSS was taken")
        rc = proc.wait(duration_ms / 1000 + ramp + 40)
    finally:
        stop_process(proc, grace=2)
    failed = stat_int(target.sipp.stats(name), "FailedCall(C)")
    target.settle()
    memory.rss_after = rss_bytes(pid)
    log(
        f"  {memory.calls_held:,} calls up at once: daemon RSS {memory.rss_idle / 2**20:.1f} -> "
        f"{memory.rss_held / 2**20:.1f} MiB = {fmt_bytes(memory.per_call)} per call; "
        f"{memory.rss_after / 2**20:.1f} MiB once they ended (sipp rc={rc}, {failed} failed)"
    )


def register_many(target: Target, daemon: Daemon, n: int, memory: BoxMemory) -> None:
    """Register ``n`` more extensions through the box; RSS delta per binding, taken right
    after the last 200 (their REGISTER transactions, kept 32 s, are still counted: an
    upper bound; the in-process figure is the exact one)."""
    pid = daemon.proc.pid
    users = [
        (str(REG_FIRST_EXTENSION + i), f"bench-{REG_FIRST_EXTENSION + i}-pw") for i in range(n)
    ]
    memory.rss_before_reg = rss_bytes(pid)
    target.sipp.register("register-many", daemon.sip_port, free_udp_ports(), users, rate=250)
    time.sleep(1.0)
    memory.rss_after_reg = rss_bytes(pid)
    memory.registrations = n
    log(
        f"  {n:,} more extensions registered through the daemon: RSS "
        f"{memory.rss_before_reg / 2**20:.1f} -> {memory.rss_after_reg / 2**20:.1f} MiB = "
        f"{fmt_bytes(memory.per_registration)} per contact (upper bound)"
    )


def soak(target: Target, daemon: Daemon, rate: int, seconds: float, uac_port: int,
         memory: BoxMemory) -> None:  # fmt: skip
    """Calls at ``rate`` for ``seconds`` with the daemon's RSS sampled every 5 s, then
    once more 40 s after the last call: does the RSS level off (a leak or fragmentation
    would keep it climbing), and is it given back once the calls' state is gone?"""
    pid = daemon.proc.pid
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    began = time.monotonic()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.monotonic() - began, rss_bytes(pid)))
            stop.wait(5.0)

    log(f"  soak: {rate:,} calls/s for {seconds:g} s, daemon RSS sampled every 5 s ...")
    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    sampler.start()
    try:
        step = target.run_step(rate, seconds, uac_port, tag="soak")
        target.steps.remove(step)
    finally:
        stop.set()
        sampler.join(10)
    log("  (soak, not counted) " + step.line())
    time.sleep(40)  # 64*T1 = 32 s: the last calls' transactions are gone
    memory.soak_after = rss_bytes(pid)
    memory.soak_rate, memory.soak_seconds = rate, seconds
    memory.soak_calls, memory.soak_failed = step.ok, step.failed + step.uas_failed
    memory.soak_samples = [(t, r) for t, r in samples if t <= seconds + 1]
    marks = ", ".join(f"{t:.0f} s {r / 2**20:.0f}" for t, r in memory.soak_samples[::4])
    log(f"  soak RSS (MiB): {marks}; 40 s after the last call {memory.soak_after / 2**20:.0f}")


def run_box(
    args: argparse.Namespace, work: Path, stack: contextlib.ExitStack, deadline: float
) -> tuple[Target, BoxMemory]:
    """Start the daemon, register the UAS, measure memory, then step the call rate."""
    uac_port, uas_port = free_udp_ports(), free_udp_ports()
    config = box_config(uac_port, args.registrations_daemon)
    sipp = Sipp(work)
    stack.callback(sipp.stop_all)
    target = Target("box", 0, 0, sipp, "", uas_port, single_loop=True)
    instances: list[tuple[Daemon, subprocess.Popen[bytes] | None]] = []

    def bring_up() -> Daemon:
        """A fresh daemon with extension 201 registered from the UAS's port, and the UAS."""
        if instances:
            old, uas = instances[-1]
            if uas is not None:
                sipp.stop(uas)
            stop_box(old)
        n = len(instances) + 1
        home = work / f"box-{n}"
        home.mkdir()
        daemon = start_daemon(home, config, rtp_ports=RTP_RANGE)
        stack.callback(stop_box, daemon)
        instances.append((daemon, None))
        daemon.wait_healthy(120)
        target.port, target.root_pid = daemon.sip_port, daemon.proc.pid
        target.records = lambda: ended_cdrs(daemon.data / "cdr.db")
        idle = target.measure_idle(2.0 if n == 1 else 1.0)
        log(
            f"  daemon pid {daemon.proc.pid}, SIP on udp 127.0.0.1:{daemon.sip_port}, "
            f"idle CPU {idle * 100:.1f}%, RSS {rss_bytes(daemon.proc.pid) / 2**20:.1f} MiB"
        )
        sipp.register(
            f"register-201-{n}", daemon.sip_port, uas_port, [(UAS_EXTENSION, UAS_PASSWORD)], 1
        )
        target.uas_name = f"uas-box-{n}"
        instances[-1] = (daemon, sipp.start_uas(target.uas_name, uas_port))
        # a few calls first (lazy imports, caches); few, since each call's state lingers 32 s
        warm = target.run_step(5, 1.0, uac_port, tag=f"w{n}")
        target.steps.remove(warm)
        if not warm.held:
            raise RuntimeError(f"the box failed the warm-up calls: {warm.line()}")
        return daemon

    log(f"box: starting the daemon ({args.registrations_daemon + 1:,} users configured) ...")
    daemon = bring_up()
    memory = BoxMemory()
    if args.registrations_daemon:
        register_many(target, daemon, args.registrations_daemon, memory)
    if args.dialogs:
        hold_calls(target, daemon, args.dialogs, uac_port, memory)
    memory.rss_before_steps = rss_bytes(daemon.proc.pid)

    def restart() -> None:
        if not memory.calls_in_steps:  # the growth is measured on the first daemon
            memory.rss_end = rss_bytes(target.root_pid)
            memory.calls_in_steps = sum(s.calls for s in target.steps)
        bring_up()

    target.restart = restart
    search(target, args, uac_port, deadline)
    if not memory.calls_in_steps:
        memory.rss_end = rss_bytes(target.root_pid)
        memory.calls_in_steps = sum(s.calls for s in target.steps)
    log(
        f"  daemon RSS over the rate steps: {memory.rss_before_steps / 2**20:.1f} -> "
        f"{memory.rss_end / 2**20:.1f} MiB after {memory.calls_in_steps:,} calls"
    )
    if args.soak:
        target.fresh()
        best = target.best
        rate = args.soak_rate or (max(100, round(best.rate * 0.6, -1)) if best else args.start)
        soak(target, instances[-1][0], int(rate), args.soak, uac_port, memory)
    if args.profile:
        target.fresh()
        profile_box(target, instances[-1][0], args, uac_port, work)
    check_alive(instances[-1][0])
    return target, memory


def ended_cdrs(path: Path) -> int | None:
    """Calls with a complete CDR in the box's database (read-only; None if unreadable)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            return int(
                db.execute("SELECT count(*) FROM calls WHERE end_epoch IS NOT NULL").fetchone()[0]
            )
        finally:
            db.close()
    except sqlite3.Error:
        return None


def stop_box(daemon: Daemon) -> None:
    """SIGTERM (a clean shutdown), SIGKILL if it hangs."""
    with contextlib.suppress(Exception):
        daemon.stop(15)
    stop_daemon(daemon)


def check_alive(daemon: Daemon) -> None:
    if daemon.proc.poll() is not None:
        raise RuntimeError(f"the daemon exited: {daemon.log.read_text()[-2000:]}")


def profile_box(
    target: Target, daemon: Daemon, args: argparse.Namespace, uac_port: int, work: Path
) -> None:
    """One more step at the highest held rate (else the lowest tried) under py-spy,
    native frames included (so the garbage collector and syscalls show); the hot spots
    go to ``target.profile``. Sampling pauses the daemon briefly: the step is not counted."""
    best = target.best
    rate = best.rate if best else min((s.rate for s in target.steps), default=args.start)
    raw = work / "box-profile.txt"
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:  # the figures measured so far must not be lost for want of a profiler
        target.profile = ["not profiled: py-spy not found (pip install py-spy)"]
        log("  " + target.profile[0])
        return
    seconds = int(args.hold)
    log(f"  profiling the daemon with py-spy at {rate:,} calls/s for {seconds} s -> {raw}")
    prof = subprocess.Popen(
        [spy, "record", "--pid", str(daemon.proc.pid), "--duration", str(seconds), "--rate",
         "100", "--format", "raw", "--output", str(raw), "--native", "--threads"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        step = target.run_step(rate, args.hold, uac_port, tag="p")
        log("  (profiled, not counted) " + step.line())
        target.steps.remove(step)
        prof.wait(seconds + 30)
    finally:
        stop_process(prof, grace=5)
    target.profile = [f"py-spy at {rate:,} calls/s for {seconds} s (100 Hz, native frames)"]
    target.profile += hot_spots(raw)
    for line in target.profile:
        log("    " + line)


def hot_spots(raw: Path, top: int = 12) -> list[str]:
    """Where the daemon's threads spend their samples, from py-spy's collapsed stacks
    (``--threads``: the first frame names the thread). For the main thread (the event
    loop, the one that caps the call rate): self time by leaf frame (native ones
    included), self time by the Python function that was running (native time charged
    to it), and inclusive time by firmware frame (the call site's line)."""
    per_thread: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    python: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    with contextlib.suppress(OSError):
        for line in raw.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            thread, *frames = [f.replace(str(ROOT) + "/", "") for f in stack.split(";")]
            name = thread.split(": ", 1)[-1]
            per_thread[name] += count
            if name != "MainThread" or not frames:
                continue
            leaf[_function(frames[-1])] += count
            py_frames = [f for f in frames if ".py:" in f or "(<" in f]
            if py_frames:
                python[_function(py_frames[-1])] += count
            for frame in set(frames):
                if "firmware/" in frame:
                    inclusive[frame] += count
    main = per_thread.get("MainThread", 0)
    if not main:
        return ["(no samples of the main thread)"]
    threads = ", ".join(f"{name} {n}" for name, n in per_thread.most_common(6))
    out = [f"samples of active threads: {threads}", "main thread, self time (leaf frame):"]
    out += [f"{n / main * 100:5.1f}%  {frame}" for frame, n in leaf.most_common(top)]
    out.append("main thread, self time by Python function (native time included):")
    out += [f"{n / main * 100:5.1f}%  {frame}" for frame, n in python.most_common(top)]
    out.append("main thread, inclusive time (firmware frames):")
    out += [f"{n / main * 100:5.1f}%  {frame}" for frame, n in inclusive.most_common(top + 8)]
    return out


def _function(frame: str) -> str:
    """``name (file:line)`` -> ``name (file)``."""
    function, _, where = frame.partition(" (")
    return f"{function} ({where.rsplit(':', 1)[0].rstrip(')')})"


# -- Kamailio -----------------------------------------------------------------------------


def run_kamailio(
    args: argparse.Namespace, work: Path, stack: contextlib.ExitStack, deadline: float
) -> Target:
    """Start Kamailio and the UAS behind it, then step the call rate."""
    uac_port, uas_port, port = free_udp_ports(), free_udp_ports(), free_udp_ports()
    home = work / "kamailio"
    (home / "run").mkdir(parents=True)
    cfg = home / "kamailio.cfg"
    cfg.write_text(
        (SCENARIOS / "kamailio.cfg")
        .read_text()
        .replace("@CHILDREN@", str(KAMAILIO_CHILDREN))
        .replace("@PORT@", str(port))
        .replace("@UAS_PORT@", str(uas_port))
    )
    sipp = Sipp(home)
    stack.callback(sipp.stop_all)
    target = Target("kamailio", port, 0, sipp, "uas-kamailio", uas_port)
    procs: list[subprocess.Popen[bytes]] = []

    def bring_up() -> None:
        if procs:
            stop_process(procs[-1], group=True)
        with (home / "kamailio.log").open("ab") as out:
            proc = subprocess.Popen(
                # 1 GiB of shared memory: tm keeps each transaction ~5 s after it completes,
                # ~15 KB each: 3,500 calls/s hold ~500 MB (the 64 MB default fails at ~1,000/s)
                ["kamailio", "-f", str(cfg), "-DD", "-E", "-m", "1024", "-M", "16",
                 "-Y", str(home / "run")],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        procs.append(proc)
        stack.callback(stop_process, proc, group=True)
        wait_udp_bound(port, proc, home / "kamailio.log")
        time.sleep(1.0)  # children forked
        target.root_pid = proc.pid
        idle = target.measure_idle(2.0 if len(procs) == 1 else 1.0)
        log(
            f"  kamailio pid {proc.pid} ({len(target.pids())} processes), idle CPU {idle * 100:.1f}%"
        )

    log(f"kamailio: {KAMAILIO_CHILDREN} children on udp 127.0.0.1:{port}, UAS on {uas_port}")
    bring_up()
    sipp.start_uas(target.uas_name, uas_port)
    warm = target.run_step(min(100, args.start), 2.0, uac_port, tag="w")
    target.steps.remove(warm)
    if not warm.held:
        raise RuntimeError(f"kamailio failed the warm-up calls: {warm.line()}")
    target.restart = bring_up
    search(target, args, uac_port, deadline)
    if procs[-1].poll() is not None:
        raise RuntimeError(f"kamailio exited: {(home / 'kamailio.log').read_text()[-2000:]}")
    return target


def wait_udp_bound(port: int, proc: subprocess.Popen[bytes], logfile: Path) -> None:
    """Until something listens on udp 127.0.0.1:``port`` (a bind there fails)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kamailio exited: {logfile.read_text()[-2000:]}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return
        time.sleep(0.1)
    raise RuntimeError("kamailio did not open its port")


# -- registrations in-process (10,000) --------------------------------------------------------


def measure_registrations(n: int, mode: str) -> dict[str, float]:
    """Register ``n`` phones straight into ``Registrar`` + ``LocationService`` (as the
    daemon wires them: SQLite file, MD5 digest) and return the memory they took.

    ``mode`` "heap": tracemalloc's traced Python heap; "rss": VmRSS (SQLite's page cache
    and allocator overhead included; run in a fresh process without tracemalloc).
    """
    import tracemalloc

    from firmware.sip import Request, parse_message
    from firmware.sip.digest import DigestAuthenticator, response_digest
    from firmware.sip.location import DB_NAME, LocationService
    from firmware.sip.peer import Peer
    from firmware.sip.registrar import Registrar

    realm = "skillepunkt"
    now = [1_800_000_000.0]

    def clock() -> float:
        return now[0]

    with tempfile.TemporaryDirectory(prefix="bench-reg-") as tmp:
        location = LocationService(Path(tmp) / DB_NAME, clock=clock)
        auth = DigestAuthenticator(realm, clock=clock, algorithms=("MD5",))
        passwords = {str(20000 + i): f"pw-{20000 + i}-secret" for i in range(n)}
        registrar = Registrar(location, auth, passwords.get, clock=clock)
        nonce = auth.new_nonce()
        wire: list[bytes] = []
        peers = [f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in range(n)]
        for i in range(n):
            ext, ip, nc = str(20000 + i), peers[i], f"{i + 1:08x}"
            digest = response_digest(
                "MD5", ext, realm, passwords[ext], "REGISTER", "sip:pbx.local", nonce, nc,
                "8a3f0c11", "auth",
            )  # fmt: skip
            wire.append(
                (
                    f"REGISTER sip:pbx.local SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP {ip}:5060;branch=z9hG4bK-{i}-a8b2c;rport\r\n"
                    f"Max-Forwards: 70\r\n"
                    f'From: "Phone {ext}" <sip:{ext}@pbx.local>;tag=f{i:08x}\r\n'
                    f"To: <sip:{ext}@pbx.local>\r\n"
                    f"Call-ID: 0_{i:010d}-4c7a9e1b@{ip}\r\n"
                    f"CSeq: 1 REGISTER\r\n"
                    f'Contact: <sip:{ext}@{ip}:5060;transport=udp>;+sip.instance="<urn:uuid:'
                    f'00000000-0000-1000-8000-{i:012x}>";reg-id=1\r\n'
                    f"Expires: 3600\r\n"
                    f"User-Agent: Yealink SIP-T54W 96.86.0.100\r\n"
                    f'Authorization: Digest username="{ext}", realm="{realm}", nonce="{nonce}", '
                    f'uri="sip:pbx.local", response="{digest}", algorithm=MD5, qop=auth, '
                    f'nc={nc}, cnonce="8a3f0c11"\r\n'
                    f"Content-Length: 0\r\n\r\n"
                ).encode()
            )
        gc.collect()
        if mode == "heap":
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
        else:
            before = rss_bytes(os.getpid())
        began = time.perf_counter()
        for i, data in enumerate(wire):
            request = parse_message(data)
            assert isinstance(request, Request)
            registrar.handle(request, Peer("udp", peers[i], 5060)).to_bytes()
        elapsed = time.perf_counter() - began
        gc.collect()
        after = tracemalloc.get_traced_memory()[0] if mode == "heap" else rss_bytes(os.getpid())
        if mode == "heap":
            tracemalloc.stop()
        registered = len(location)
        location.close()
    if registered != n:
        raise RuntimeError(f"only {registered} of {n} registered: {registrar.stats}")
    return {
        "n": n,
        "bytes": after - before,
        "per_contact": (after - before) / n,
        "rate": n / elapsed,
    }


def registrations_in_process(n: int) -> dict[str, dict[str, float]]:
    """``measure_registrations`` in two fresh interpreters (heap, then RSS)."""
    out = {}
    for mode in ("heap", "rss"):
        done = subprocess.run(
            [sys.executable, __file__, "--registrations-in-process", str(n), "--mode", mode],
            capture_output=True, text=True, timeout=300, cwd=ROOT,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"registration measurement failed: {done.stderr[-2000:]}")
        out[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


# -- report ---------------------------------------------------------------------------------


@dataclass
class Report:
    """Everything measured, as the console table and as bench/RESULTS.md."""

    box: Target | None
    kamailio: Target | None
    memory: BoxMemory | None
    registrations: dict[str, dict[str, float]] | None
    args: argparse.Namespace
    started: datetime.datetime
    argv: list[str] = field(default_factory=list)
    source: str = ""
    seconds: float = 0.0

    def head(self) -> tuple[str, ...]:
        return (
            "target", f"max rate held {self.args.hold:g} s, 0 failed", "box/kamailio",
            "CPU us/call", "loop us/call", "retrans", "mean setup", "first failing step",
        )  # fmt: skip

    def targets(self) -> list[Target]:
        return [t for t in (self.box, self.kamailio) if t is not None]

    def summary_rows(self) -> list[tuple[str, ...]]:
        anchor = self.kamailio.best if self.kamailio else None
        rows: list[tuple[str, ...]] = []
        for target in self.targets():
            best = target.best
            ratio = "-"
            if best is not None and anchor is not None:
                ratio = f"{best.rate / anchor.rate:.2f}"
            failing = [s for s in target.steps if not s.held]
            first_fail = "-"
            if failing:
                low = min(failing, key=lambda s: s.rate)
                why = (
                    f"{low.failed + low.uas_failed:,} failed"
                    if low.failed or low.uas_failed or low.ok != low.calls
                    else f"{low.calls:,} calls took {low.elapsed:.1f} s"
                )
                first_fail = f"{low.rate:,}/s: {why}"
                target_drops, uas_drops, uac_drops = low.drops
                if uas_drops + uac_drops and not target_drops:
                    first_fail += " (datagrams dropped at SIPp, not at the target)"
                elif target_drops:
                    first_fail += f" ({target_drops:,} datagrams dropped at the target)"
            elif target.search_note:
                first_fail = target.search_note
            rows.append(
                (
                    target.name,
                    fmt_rate(best.rate if best else None),
                    ratio,
                    f"{best.cpu_us_per_call:,.0f}" if best else "-",
                    f"{best.loop_us_per_call:,.0f}"
                    if best and not math.isnan(best.loop_cpu_s)
                    else "-",
                    f"{best.retransmissions:,}" if best else "-",
                    fmt_ms(best.setup_ms) if best else "-",
                    first_fail,
                )
            )
        return rows

    def findings(self) -> list[str]:
        """The sentences under the table: ratio, CPU, goal."""
        out = []
        box = self.box.best if self.box else None
        kam = self.kamailio.best if self.kamailio else None
        if box and kam:
            out.append(
                f"box/Kamailio: {box.rate / kam.rate:.2f} of the anchor's call rate; CPU per "
                f"call {box.cpu_us_per_call:,.0f} us vs. {kam.cpu_us_per_call:,.0f} us "
                f"({box.cpu_us_per_call / kam.cpu_us_per_call:.1f}x)."
            )
        if self.box is not None:
            if box is not None and not math.isnan(box.loop_cpu_s):
                out.append(
                    f"The box's event loop thread used {box.loop_us_per_call:,.0f} us per call: "
                    f"one core caps it near {1e6 / box.loop_us_per_call:,.0f} calls/s."
                )
            behind = [s for s in self.box.steps if s.held and s.cdr_behind]
            if behind:
                worst = max(behind, key=lambda s: s.cdr_behind or 0)
                after = (
                    "not all within 30 s"
                    if worst.cdr_drain_s is None
                    else f"all after {worst.cdr_drain_s:.1f} s"
                )
                out.append(
                    f"CDRs lag the calls: when the last call of the {worst.rate:,}/s step ended, "
                    f"{worst.cdr_behind:,} calls had no closed CDR yet (closed: {after})."
                )
            rate = box.rate if box else 0
            verdict = "met" if rate >= GOAL_CPS else "NOT met"
            out.append(f"Goal >= {GOAL_CPS:,} calls/s through the box: {verdict}.")
        return out

    def memory_rows(self) -> list[tuple[str, str, str]]:
        rows = []
        m = self.memory
        if m is not None and m.calls_held:
            rows.append(
                (
                    "per active call (box)",
                    fmt_bytes(m.per_call),
                    f"daemon RSS delta with {m.calls_held:,} calls up at once "
                    f"({m.rss_idle / 2**20:.0f} -> {m.rss_held / 2**20:.0f} MiB); a call is two "
                    f"dialogs (so {fmt_bytes(m.per_call / 2)} per dialog), a media relay "
                    f"session with its 4 UDP sockets, and its transactions (kept 32 s); "
                    f"{m.rss_after / 2**20:.0f} MiB once they had ended",
                )
            )
        if m is not None and m.registrations:
            rows.append(
                (
                    "per registered contact (daemon)",
                    fmt_bytes(m.per_registration),
                    f"daemon RSS delta right after {m.registrations:,} more extensions "
                    f"registered over SIPp (the configuration allows 2,000 users); includes "
                    f"their REGISTER transactions (kept 32 s): an upper bound",
                )
            )
        if self.registrations:
            heap, rss = self.registrations["heap"], self.registrations["rss"]
            rows.append(
                (
                    f"per registered contact ({heap['n']:,.0f} held, in-process)",
                    fmt_bytes(heap["per_contact"]),
                    f"Registrar + LocationService (SQLite file) as the daemon wires them, in a "
                    f"fresh process: Python heap by tracemalloc; RSS "
                    f"{fmt_bytes(rss['per_contact'])} per contact in another fresh process "
                    f"(SQLite page cache included); {heap['rate']:,.0f} REGISTERs/s",
                )
            )
        if m is not None and m.calls_in_steps:
            rows.append(
                (
                    "RSS growth over the rate steps (box)",
                    f"{fmt_bytes(m.growth_per_call)} per call",
                    f"daemon RSS {m.rss_before_steps / 2**20:.0f} -> {m.rss_end / 2**20:.0f} MiB "
                    f"over {m.calls_in_steps:,} short calls, still resident after them",
                )
            )
        if m is not None and m.soak_samples:
            third = m.soak_seconds / 3
            first = m.soak_growth(0.0, third)
            last = m.soak_growth(2 * third, m.soak_seconds)
            start, peak = m.soak_samples[0][1], max(r for _, r in m.soak_samples)
            end = m.soak_samples[-1][1]
            rows.append(
                (
                    f"RSS over a {m.soak_seconds:g} s soak at {m.soak_rate:,} calls/s (box)",
                    f"{fmt_bytes(first)} per call in the first third, {fmt_bytes(last)} "
                    f"in the last",
                    f"daemon RSS {start / 2**20:.0f} -> {end / 2**20:.0f} MiB (peak "
                    f"{peak / 2**20:.0f}) over {m.soak_calls:,} calls ({m.soak_failed:,} "
                    f"failed), {m.soak_after / 2**20:.0f} MiB 40 s after the last; calls keep "
                    f"their transactions 32 s, so RSS should climb for ~32 s and then level",
                )
            )
        return rows

    def text(self) -> str:
        lines = [table(self.head(), self.summary_rows()), ""]
        lines += self.findings()
        mem = self.memory_rows()
        if mem:
            lines.append("")
            lines += [f"memory {what}: {figure}  ({how})" for what, figure, how in mem]
        return "\n".join(lines)

    def markdown(self) -> str:
        out = [
            "# Benchmark results",
            "",
            "## SIP call rate: `bench/sip_cps.py`",
            "",
            f"Measured {self.started:%Y-%m-%d %H:%M} (local time) on this {os.cpu_count()}-core "
            f"machine ({cpu_model()}; shared and noisy: compare the ratios), in "
            f"{self.seconds / 60:.1f} min.",
            "",
            f"Command: `{' '.join([COMMAND, *self.argv])}`; firmware measured: {self.source}.",
            "",
            "SIPp 3.6.1 UAC -> target -> SIPp UAS, INVITE-200-ACK-BYE-200, no media, no pause "
            "before the BYE, UDP on 127.0.0.1, the same scenarios for both targets "
            "(`bench/sip/uac.xml`, `bench/sip/uas.xml`: no 180). The box: `skillepunkt run "
            "--board sim` (full media port range), the UAC trusted as a trunk by its source "
            "address, the UAS registered as extension 201; each call is two dialogs and a "
            "media relay session (SDP offered and answered, no RTP sent). The anchor: "
            f"Kamailio 5.6 stateful proxy (tm, sl, rr, maxfwd, {KAMAILIO_CHILDREN} children, "
            "`bench/sip/kamailio.cfg`). A rate is held when "
            f"{self.args.hold:g} s of calls at that rate all succeed at the UAC and the UAS "
            f"and finish on time (<= {self.args.hold * 1.05 + 1:g} s); steps x"
            f"{self.args.factor:g}, then {self.args.bisect} bisection step(s); after a failed "
            "step the target is restarted (an overloaded box keeps the calls whose ACK or "
            "BYE it dropped, with their media ports). CPU per call: the target's "
            "utime+stime (all processes and threads) over the step and the work it left "
            "behind, net of its idle CPU; loop: the box's main thread (the asyncio event "
            "loop) alone. Retransmissions: by the UAC and the UAS. SIPp's setup times have "
            "1 ms resolution. The UAC checks that the 200 it takes for the BYE's answers the "
            "BYE: SIPp matches responses by Call-ID only, and would otherwise count a "
            "retransmitted 200 for the INVITE (the target had not processed the ACK and BYE) "
            "as a success; that shows as 'regexp match failure at index 9' in the step notes. "
            "The UAS accepts the ACK after the BYE (a proxy's workers may reorder them) but "
            "requires it.",
            "",
            "| " + " | ".join(self.head()) + " |",
            "|" + "---|" * len(self.head()),
        ]
        out += ["| " + " | ".join(row) + " |" for row in self.summary_rows()]
        out.append("")
        out += self.findings()
        out += ["", "Every step:", "", "```"]
        for target in self.targets():
            out += [s.line() for s in target.steps]
        out += ["```", ""]
        mem = self.memory_rows()
        if mem:
            out += ["Memory:", "", "| what | figure | how |", "|---|---|---|"]
            out += [f"| {a} | {b} | {c} |" for a, b, c in mem]
            out.append("")
        for target in self.targets():
            if target.profile:
                out += [f"Profile of the {target.name} (`--profile`):", "", "```"]
                out += target.profile
                out += ["```", ""]
        return "\n".join(out)


def table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows]
    )


def source_state() -> str:
    """The commit measured, and whether firmware/ had uncommitted changes
    (``BENCH_SOURCE`` names it when the bench runs from an export of a commit)."""
    if os.environ.get("BENCH_SOURCE"):
        return os.environ["BENCH_SOURCE"]
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "firmware"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.splitlines()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown revision"
    return f"commit {head}" + (
        f" + {len(dirty)} uncommitted file(s) under firmware/" if dirty else ""
    )


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def write_results(report: Report) -> None:
    """Replace this benchmark's section of bench/RESULTS.md (other sections are kept)."""
    section = report.markdown()
    marker = "## SIP call rate: `bench/sip_cps.py`"
    body = section.split("\n", 2)[2]  # without the file title
    if RESULTS.exists():
        text = RESULTS.read_text()
        if marker in text:
            start = text.index(marker)
            end = text.find("\n## ", start + len(marker))
            text = text[:start] + body.rstrip() + "\n" + (text[end:] if end != -1 else "")
        else:
            text = text.rstrip() + "\n\n" + body
    else:
        text = section
    RESULTS.write_text(text.rstrip() + "\n")


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="a short smoke run (prints only)")
    p.add_argument("--targets", default="box,kamailio", help="comma-separated: box, kamailio")
    p.add_argument("--hold", type=float, default=20.0, help="seconds each rate must hold")
    p.add_argument("--start", type=int, default=200, help="first rate, calls/s")
    p.add_argument("--factor", type=float, default=1.5, help="rate multiplier between steps")
    p.add_argument("--max-rate", type=int, default=10_000, help="highest rate tried")
    p.add_argument("--max-steps", type=int, default=12, help="most steps per target")
    p.add_argument("--bisect", type=int, default=2, help="bisection steps after a failure")
    p.add_argument("--budget", type=float, default=720, help="seconds for everything")
    p.add_argument("--dialogs", type=int, default=1000, help="calls held for memory (0: skip)")
    p.add_argument(
        "--registrations-daemon",
        type=int,
        default=1999,
        help="extensions registered through the daemon for memory (0: skip; <= 1999)",
    )
    p.add_argument(
        "--registrations", type=int, default=10_000, help="in-process registrations (0: skip)"
    )
    p.add_argument(
        "--soak", type=float, default=150.0, help="seconds of calls with RSS sampled (0: skip)"
    )
    p.add_argument("--soak-rate", type=int, default=0, help="soak rate (0: 60%% of the best)")
    p.add_argument("--profile", action="store_true", help="py-spy the box at its highest held rate")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--no-results", action="store_true", help="do not write bench/RESULTS.md")
    p.add_argument("--registrations-in-process", type=int, help=argparse.SUPPRESS)
    p.add_argument("--mode", default="heap", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:  # shorter defaults; options given explicitly still win
        p.set_defaults(
            hold=5.0, start=200, factor=2.0, max_steps=3, bisect=0, budget=240, dialogs=200,
            registrations_daemon=200, registrations=1000, no_results=True, soak=0,
        )  # fmt: skip
        args = p.parse_args(argv)
    args.registrations_daemon = max(0, min(args.registrations_daemon, 1999))
    return args


def raise_fd_limit() -> None:
    """Every call holds 4 relay sockets in the daemon: let it (and SIPp) open plenty."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def preflight() -> None:
    missing = [tool for tool in ("sipp", "kamailio") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"missing: {', '.join(missing)} (Debian packages sip-tester, kamailio)")


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so every process started gets stopped."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = {
        s: signal.signal(s, handler)
        for s in (signal.SIGTERM, signal.SIGHUP)
        if signal.getsignal(s) is not signal.SIG_IGN  # nohup stays nohup
    }
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.registrations_in_process:
        print(json.dumps(measure_registrations(args.registrations_in_process, args.mode)))
        return 0
    preflight()
    raise_fd_limit()
    targets = {t.strip() for t in args.targets.split(",") if t.strip()}
    t0 = time.monotonic()
    soak_time = args.soak + 45 if args.soak and "box" in targets else 0.0
    deadline = t0 + args.budget + soak_time  # the soak comes on top of the budget
    work = Path(tempfile.mkdtemp(prefix="bench-sip-cps-"))
    report = Report(None, None, None, None, args, datetime.datetime.now())
    report.argv = list(sys.argv[1:] if argv is None else argv)
    report.source = source_state()
    log(
        f"bench/sip_cps.py: hold {args.hold:g} s per step, budget {args.budget:g} s, work dir {work}"
    )
    try:
        with terminate_on_sigterm():
            if args.registrations:
                log(f"registrar: {args.registrations:,} registrations in-process ...")
                report.registrations = registrations_in_process(args.registrations)
            if "box" in targets:
                # the rest of the budget, less Kamailio's share (its steps are shorter)
                share = 0.5 if "kamailio" in targets else 1.0
                box_deadline = (
                    time.monotonic() + (deadline - soak_time - time.monotonic() - 20) * share
                )
                with contextlib.ExitStack() as stack:
                    report.box, report.memory = run_box(args, work, stack, box_deadline)
            if "kamailio" in targets:
                with contextlib.ExitStack() as stack:
                    report.kamailio = run_kamailio(args, work, stack, deadline - 15)
    except KeyboardInterrupt:
        log("interrupted: every process started was stopped")
        return 130
    finally:
        if args.keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report.seconds = time.monotonic() - t0
    log("")
    log(report.text())
    if not args.no_results:
        write_results(report)
        log(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
