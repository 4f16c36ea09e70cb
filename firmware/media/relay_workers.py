"""The RTP relay's forwarding in worker processes, behind `RelaySession`'s interface.

Why: one Python event loop forwards a packet for about the CPU rtpengine's userspace
path takes, but a loop that also carries SIP signalling delays packets too often at a
few hundred calls (bench/RESULTS.md, "Media relay": every failing step failed on jitter,
never on loss). So the SIP process keeps the signalling side of each relayed call and
N worker processes, each its own (uv)loop running plain `RelaySession`s, carry the
packets. Packets never cross a process boundary; only commands do.

- `RelayWorkerPool` (started by the SIP service) spawns the workers
  (``python -m firmware.media.relay_workers``), one Unix stream socket each, and hands
  each new call to the least-loaded live worker. ``pool.open(address, allocator)`` has
  the shape of ``RelaySession.open``, so the B2BUA takes it as its relay factory.
- `RemoteRelaySession` is what the B2BUA holds: ``port``, ``ports``, ``set_remote``,
  ``remote``, ``source``, ``stats``, ``close``, ``wait_closed`` as on `RelaySession`.
  ``set_remote`` checks its arguments here (so bad input raises at once, as in-process)
  and sends the command; the one connection per worker keeps commands in order.
- Ports: each worker owns a disjoint slice of the media range and runs its own
  `RelayPorts` pool on it (so released pairs stay bound for the next call, in the
  process that uses them), and the SIP process keeps the first slice for the media it
  still anchors itself (`MediaBridge`, `Conference`, and relay calls while no worker is
  up). The alternative, the SIP process allocating and passing port numbers, would need
  a release round-trip per call and could not keep sockets pooled across calls.
- Counters: ``stats()`` is synchronous and the B2BUA calls it at call end, so it must
  not wait. Each worker pushes the counters of the sessions that changed once a second
  (`DEFAULT_STATS_INTERVAL`) and the final ones in its answer to ``close``; ``stats()``
  and ``source()`` decode the latest of these, so before ``close`` they may be up to a
  second old (at 50 packets/s, <= 50 packets per direction short in a CDR).
- A worker that dies (or stops answering for ``request_timeout`` seconds, then it is
  killed) takes its calls' media with it: their sessions turn closed, commands in
  flight fail with `WorkerUnavailableError`, and the pool logs it and starts the worker
  again (backing off when it keeps dying). Nothing waits on a dead worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import ipaddress
import logging
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware.media.latch import Addr
from firmware.media.ports import PortAllocator, PortsExhaustedError
from firmware.media.relay import (
    DEFAULT_RELATCH_AFTER,
    DSCP_EF,
    Leg,
    RelayPorts,
    RelaySession,
    RelayStats,
    remote_addresses,
)
from firmware.media.relay_protocol import (
    EMPTY_STATS,
    MAX_FRAME,
    SNAPSHOT,
    Close,
    Closed,
    Done,
    Failed,
    FailureKind,
    FrameDecoder,
    Message,
    Open,
    Opened,
    ProtocolError,
    Ready,
    Response,
    SetRemote,
    Snapshots,
    decode_snapshot,
    encode,
    encode_snapshot,
    snapshot_session,
)

log = logging.getLogger(__name__)

#: Seconds between two pushes of changed counters from a worker.
DEFAULT_STATS_INTERVAL = 1.0
#: Seconds a worker may take to answer a command before it is deemed hung and killed.
DEFAULT_REQUEST_TIMEOUT = 5.0
#: Seconds a (re)started worker may take to say it is ready.
START_TIMEOUT = 30.0
#: Commands in flight per worker past which opening a call fails (a stuck worker must
#: not make the SIP process queue without bound).
MAX_PENDING = 4096
#: Waits before restarting a worker that died, growing while it keeps dying soon after
#: a start; a worker that ran a minute starts over at the first.
RESTART_DELAYS = (0.2, 1.0, 2.0, 5.0, 10.0)
STABLE_AFTER = 60.0
#: How often the pool's own pooled pairs and each worker's are swept (`RelayPorts.sweep`).
SWEEP_EVERY = 5.0
_MODULE = "firmware.media.relay_workers"


class WorkerUnavailableError(ConnectionError):
    """The worker carrying a command died, hung or was stopped before answering."""


#: Fewer cores than this: no workers by default. Measured on a 2-core box
#: (bench/RESULTS.md, "Media relay"): one worker cost more CPU per packet than relaying
#: in the SIP process and held fewer calls, since the SIP process still needs a core.
MIN_CORES_FOR_WORKERS = 4


def default_workers(cores: int | None = None) -> int:
    """Workers for a box with ``cores`` CPUs (this machine's by default): one per core
    but one, which the SIP process itself needs (signalling, bridged and transcoded
    calls, conferences) — on boxes with at least `MIN_CORES_FOR_WORKERS` cores; below
    that a worker only adds a hop."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    return max(0, cores - 1) if cores >= MIN_CORES_FOR_WORKERS else 0


def split_range(first: int, last: int, parts: int) -> list[tuple[int, int]]:
    """``first..last`` cut into ``parts`` disjoint slices of whole even/odd pairs, in
    order (the last one takes what does not divide evenly). ValueError when a slice
    would hold fewer than two pairs (one relay call)."""
    start = first + (first & 1)
    pairs = (last + 1 - start) // 2
    if parts < 1 or pairs // parts < 2:
        raise ValueError(
            f"port range {first}-{last} ({max(pairs, 0)} pairs) is too small for {parts} parts"
        )
    share = pairs // parts
    slices = []
    for i in range(parts):
        lo = start + 2 * share * i
        hi = start + 2 * (share * (i + 1) if i < parts - 1 else pairs) - 1
        slices.append((lo, hi))
    return slices


def _failure(reply: Failed) -> Exception:
    if reply.kind is FailureKind.EXHAUSTED:
        return PortsExhaustedError(reply.message)
    if reply.kind is FailureKind.OS:
        return OSError(reply.errno or errno.EIO, reply.message)
    if reply.kind is FailureKind.VALUE:
        return ValueError(reply.message)
    return WorkerUnavailableError(reply.message)


# =========================================================================== SIP side


class RemoteRelaySession:
    """A relay call whose packets a worker forwards; the signalling side of `RelaySession`.

    Made by `RelayWorkerPool.open`. Commands go to the worker in order and return at
    once; their answers are checked in the background (a failure is logged).
    """

    def __init__(
        self, link: _WorkerLink, session: int, address: str, ports: tuple[int, int]
    ) -> None:
        ip = ipaddress.ip_address(address)
        self.address = address
        self.family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        self.worker = link.index
        self._own = ip.compressed
        self._link = link
        self._id = session
        self._ports = {Leg.A: ports[0], Leg.B: ports[1]}
        self._remote: dict[Leg, tuple[Addr | None, Addr | None]] = {
            Leg.A: (None, None),
            Leg.B: (None, None),
        }
        self.snapshot: bytes | None = None  # latest SNAPSHOT record from the worker
        self._closing = False
        self._ended = False
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # ------------------------------------------------------------------ signalling side

    def port(self, leg: Leg) -> int:
        """The RTP port to advertise to ``leg`` (its RTCP port is this + 1)."""
        return self._ports[Leg(leg)]

    @property
    def ports(self) -> tuple[int, int]:
        return self._ports[Leg.A], self._ports[Leg.B]

    def set_remote(
        self, leg: Leg, host: str | None, port: int, rtcp_port: int | None = None
    ) -> None:
        """As `RelaySession.set_remote`: checked here, applied by the worker."""
        leg = Leg(leg)
        rtp, rtcp = self._addresses(host, port, rtcp_port)
        if (rtp, rtcp) == self._remote[leg]:
            return
        self._remote[leg] = (rtp, rtcp)
        link = self._link
        if self._closing or not link.alive:
            return
        command = SetRemote(
            link.new_request(),
            self._id,
            0 if leg is Leg.A else 1,
            None if rtp is None else rtp[0],
            0 if rtp is None else rtp[1],
            None if rtcp is None else rtcp[1],
        )
        link.send(command).add_done_callback(_log_failure)

    def _addresses(
        self, host: str | None, port: int, rtcp_port: int | None
    ) -> tuple[Addr | None, Addr | None]:
        return remote_addresses(host, port, rtcp_port, self.family, self._own, self._ports)

    def remote(self, leg: Leg) -> Addr | None:
        """The RTP address ``leg``'s SDP announced (None until set)."""
        return self._remote[Leg(leg)][0]

    def source(self, leg: Leg) -> Addr | None:
        """Where ``leg``'s RTP is latched, as of the worker's last report."""
        stats = self.stats()
        return stats.source_a if Leg(leg) is Leg.A else stats.source_b

    def stats(self) -> RelayStats:
        """The worker's latest counters (final ones once `wait_closed` returned)."""
        return EMPTY_STATS if self.snapshot is None else decode_snapshot(self.snapshot)

    # ------------------------------------------------------------------ lifetime

    @property
    def closed(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop relaying; the worker sends the final counters back."""
        if self._closing:
            return
        self._closing = True
        link = self._link
        link.sessions.pop(self._id, None)
        if self._ended or not link.alive:
            self._end(None)
            return
        link.send(Close(link.new_request(), self._id)).add_done_callback(self._close_answered)

    def _close_answered(self, future: asyncio.Future[Response | RemoteRelaySession]) -> None:
        reply = None if future.cancelled() else future.exception() or future.result()
        if isinstance(reply, Closed):
            self._end(reply.snapshot)
            return
        if isinstance(reply, Failed):
            log.warning("relay worker could not close a session", extra={"error": reply.message})
        self._end(None)

    def _end(self, snapshot: bytes | None) -> None:
        """The worker is done with this session (closed it, or died)."""
        self._ended = self._closing = True
        if snapshot is not None:
            self.snapshot = snapshot
        if not self._closed.done():
            self._closed.set_result(None)

    async def wait_closed(self) -> None:
        """Until the worker closed the session (or died)."""
        await asyncio.shield(self._closed)

    async def __aenter__(self) -> RemoteRelaySession:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
        await self.wait_closed()


def _log_failure(future: asyncio.Future[Response | RemoteRelaySession]) -> None:
    if future.cancelled():
        return
    exc = future.exception()
    reply = future.result() if exc is None else None
    if exc is not None and not isinstance(exc, WorkerUnavailableError):
        log.warning("relay worker command failed", extra={"error": str(exc)})
    elif isinstance(reply, Failed):
        log.warning("relay worker refused a command", extra={"error": reply.message})


class _WorkerLink(asyncio.Protocol):
    """The SIP side of one worker's socket: requests out, answers and counters in."""

    def __init__(self, index: int, timeout: float) -> None:
        self.index = index
        self.timeout = timeout
        self.decoder = FrameDecoder()
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.ready: asyncio.Future[Ready] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.alive = False
        # by request id, oldest first: (deadline, answer, the command)
        self.pending: dict[int, tuple[float, asyncio.Future[Response | RemoteRelaySession], Any]]
        self.pending = {}
        self.sessions: dict[int, RemoteRelaySession] = {}
        self._request = 0

    def new_request(self) -> int:
        self._request = self._request % 0xFFFF_FFFF + 1
        return self._request

    def send(
        self, command: Open | SetRemote | Close
    ) -> asyncio.Future[Response | RemoteRelaySession]:
        future: asyncio.Future[Response | RemoteRelaySession] = self.loop.create_future()
        if not self.alive or self.transport is None:
            future.set_exception(WorkerUnavailableError(f"relay worker {self.index} is down"))
            return future
        self.pending[command.request] = (self.loop.time() + self.timeout, future, command)
        self.transport.write(encode(command))
        return future

    def overdue(self, now: float) -> bool:
        """Whether the oldest command has waited past its deadline."""
        for deadline, _, _ in self.pending.values():
            return now > deadline
        return False

    # ------------------------------------------------------------------ asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.decoder.feed(data)
        except ProtocolError:
            log.exception("relay worker sent garbage: dropping it", extra={"worker": self.index})
            if self.transport is not None:
                self.transport.abort()
            return
        for message in messages:
            self._receive(message)

    def _receive(self, message: Message) -> None:
        if isinstance(message, Snapshots):
            records, size, sessions = message.records, SNAPSHOT.size, self.sessions
            for at in range(0, len(records), size):
                session = sessions.get(snapshot_session(records, at))
                if session is not None:
                    session.snapshot = records[at : at + size]
            return
        if isinstance(message, Ready):
            self.alive = True
            if not self.ready.done():
                self.ready.set_result(message)
            return
        if not isinstance(message, Opened | Done | Closed | Failed):
            log.error("relay worker sent a command", extra={"worker": self.index})
            return
        entry = self.pending.pop(message.request, None)
        if entry is None:
            return  # answered after its caller gave up
        _, future, command = entry
        answer: Response | RemoteRelaySession = message
        if isinstance(message, Opened) and isinstance(command, Open):
            session = RemoteRelaySession(
                self, message.session, command.address, (message.port_a, message.port_b)
            )
            if future.done():  # the caller was cancelled meanwhile: nobody owns the call
                session.close()
                return
            self.sessions[message.session] = session  # before any counters for it arrive
            answer = session
        if not future.done():
            future.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        self.transport = None
        pending, self.pending = self.pending, {}
        down = WorkerUnavailableError(f"relay worker {self.index} went away")
        for _, future, _ in pending.values():
            if not future.done():
                future.set_exception(down)
                future.exception()  # retrieved: nobody may be waiting for it
        sessions, self.sessions = self.sessions, {}
        for session in sessions.values():
            session._end(None)
        if not self.ready.done():
            self.ready.set_exception(down)
            self.ready.exception()
        if not self.lost.done():
            self.lost.set_result(None)


@dataclass
class _Slot:
    """One worker position: its port slice, and the process filling it now."""

    index: int
    first: int
    last: int
    process: asyncio.subprocess.Process | None = None
    link: _WorkerLink | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class RelayWorkerPool:
    """N relay worker processes and the round of calls between them.

    ``first..last`` is the whole media port range: the SIP process keeps the first of
    ``workers + 1`` equal slices as `ports` (for the media it anchors itself) and each
    worker gets one of the others. `start` before use, `close` at shutdown (it stops
    every worker; a worker also exits on its own when the SIP process goes away).
    """

    def __init__(
        self,
        first: int,
        last: int,
        workers: int,
        *,
        max_idle: int = 1024,
        stats_interval: float = DEFAULT_STATS_INTERVAL,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        if workers < 1:
            raise ValueError("a relay worker pool needs at least one worker")
        slices = split_range(first, last, workers + 1)
        self.ports = RelayPorts(*slices[0], max_idle=max_idle)
        self.max_idle = max_idle
        self.stats_interval = stats_interval
        self.request_timeout = request_timeout
        self.restarts = 0  # workers started again after dying
        self._slots = [_Slot(i, lo, hi) for i, (lo, hi) in enumerate(slices[1:])]
        self._closing = False
        self._watch: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ calls

    async def open(
        self,
        address: str,
        allocator: PortAllocator | None = None,
        *,
        relatch_after: float = DEFAULT_RELATCH_AFTER,
        dscp: int | None = DSCP_EF,
    ) -> RemoteRelaySession | RelaySession:
        """A relay session for a new call (``RelaySession.open``'s shape), in the
        least-loaded live worker; in this process (from ``allocator``, else `ports`)
        when no worker is up. Raises as `RelaySession.open` does."""
        ipaddress.ip_address(address)  # ValueError for a name, before any worker sees it
        link = self._least_loaded()
        if link is None:
            if not self._closing:
                log.warning("no relay worker up: relaying this call in the SIP process")
            return await RelaySession.open(
                address, allocator or self.ports, relatch_after=relatch_after, dscp=dscp
            )
        if len(link.pending) >= MAX_PENDING:
            raise WorkerUnavailableError(f"relay worker {link.index} has {MAX_PENDING} commands")
        answer = await asyncio.wait_for(
            link.send(Open(link.new_request(), address, relatch_after, dscp)),
            2 * self.request_timeout,  # the watchdog kills it at 1x: this is a backstop
        )
        if isinstance(answer, RemoteRelaySession):
            return answer
        if isinstance(answer, Failed):
            raise _failure(answer)
        raise WorkerUnavailableError(f"relay worker answered an open with {answer!r}")

    def _least_loaded(self) -> _WorkerLink | None:
        best: _WorkerLink | None = None
        for slot in self._slots:
            link = slot.link
            if (
                link is not None
                and link.alive
                and (best is None or len(link.sessions) < len(best.sessions))
            ):
                best = link
        return best

    @property
    def workers(self) -> int:
        return len(self._slots)

    def loads(self) -> list[int | None]:
        """Calls per worker (None: that worker is down)."""
        return [
            len(s.link.sessions) if s.link is not None and s.link.alive else None
            for s in self._slots
        ]

    def pids(self) -> list[int | None]:
        return [
            s.process.pid if s.process is not None and s.process.returncode is None else None
            for s in self._slots
        ]

    def sweep(self, now: float) -> int:
        """Sweep the SIP process's own pooled pairs (workers sweep theirs)."""
        return self.ports.sweep(now)

    # ------------------------------------------------------------------ workers

    async def start(self) -> None:
        """Start every worker and wait until each is ready (bounded)."""
        try:
            await asyncio.gather(*(self._spawn(slot) for slot in self._slots))
        except BaseException:
            await self.close()
            raise
        for slot in self._slots:
            slot.task = asyncio.create_task(
                self._supervise(slot), name=f"relay-worker-{slot.index}"
            )
        self._watch = asyncio.create_task(self._watchdog(), name="relay-workers-watchdog")

    async def _spawn(self, slot: _Slot) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        root = str(Path(__file__).resolve().parent.parent.parent)
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": root if not path else f"{root}{os.pathsep}{path}"}
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                _MODULE,
                "--fd", str(theirs.fileno()),
                "--first", str(slot.first),
                "--last", str(slot.last),
                "--max-idle", str(self.max_idle),
                "--interval", str(self.stats_interval),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # a terminal's Ctrl-C is for the SIP process to handle
                env=env,
            )  # fmt: skip
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        slot.process = process
        link = _WorkerLink(slot.index, self.request_timeout)
        try:
            await loop.create_unix_connection(lambda: link, sock=ours)
            ready = await asyncio.wait_for(asyncio.shield(link.ready), START_TIMEOUT)
        except BaseException:
            ours.close()
            _kill(process)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(process.wait(), 5)
            raise
        slot.link = link
        log.info(
            "relay worker up",
            extra={"worker": slot.index, "pid": ready.pid, "ports": f"{ready.first}-{ready.last}"},
        )

    async def _supervise(self, slot: _Slot) -> None:
        """Wait for the worker to end; unless the pool is closing, log it and start it
        again (backing off while it keeps dying)."""
        loop = asyncio.get_running_loop()
        crashes, started = 0, loop.time()
        while True:
            process, link = slot.process, slot.link
            if process is not None:
                code = await process.wait()
                if link is not None and link.transport is not None:
                    link.transport.abort()  # its sessions end now, not at EOF
                if self._closing:
                    return
                lost = len(link.sessions) if link is not None else 0
                log.error(
                    "relay worker died: its calls lost their media; restarting it",
                    extra={"worker": slot.index, "pid": process.pid, "exit": code, "calls": lost},
                )
                if link is not None:
                    link.connection_lost(None)
            slot.process = slot.link = None
            if loop.time() - started >= STABLE_AFTER:
                crashes = 0
            await asyncio.sleep(RESTART_DELAYS[min(crashes, len(RESTART_DELAYS) - 1)])
            crashes += 1
            if self._closing:
                return
            started = loop.time()
            try:
                await self._spawn(slot)
            except Exception:
                log.exception("relay worker failed to start", extra={"worker": slot.index})
                continue
            self.restarts += 1

    async def _watchdog(self) -> None:
        """Kill a worker whose oldest command is overdue (its supervisor restarts it),
        and sweep the SIP process's pooled pairs."""
        loop = asyncio.get_running_loop()
        tick = min(1.0, self.request_timeout / 4)
        last_sweep = loop.time()
        while not self._closing:
            await asyncio.sleep(tick)
            now = loop.time()
            for slot in self._slots:
                if slot.link is not None and slot.process is not None and slot.link.overdue(now):
                    log.error(
                        "relay worker stopped answering: killing it",
                        extra={"worker": slot.index, "pid": slot.process.pid},
                    )
                    _kill(slot.process)
            if now - last_sweep >= SWEEP_EVERY:
                last_sweep = now
                self.ports.sweep(now)

    async def close(self) -> None:
        """Stop every worker (their calls' media ends) and close the pooled pairs."""
        self._closing = True
        tasks = [t for t in (self._watch, *(s.task for s in self._slots)) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for slot in self._slots:
            if slot.link is not None and slot.link.transport is not None:
                slot.link.transport.close()  # EOF: the worker closes its sessions and exits
        for slot in self._slots:
            process = slot.process
            if process is None:
                continue
            try:
                await asyncio.wait_for(process.wait(), 3)
            except TimeoutError:
                _kill(process)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 5)
            if slot.link is not None:
                slot.link.connection_lost(None)
            slot.process = slot.link = None
        self.ports.close()

    async def __aenter__(self) -> RelayWorkerPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()


# =========================================================================== worker side


class _Server(asyncio.Protocol):
    """A worker's end of the socket: runs the sessions the SIP process asks for."""

    def __init__(self, ports: PortAllocator, interval: float) -> None:
        self.ports = ports
        self.interval = interval
        self.decoder = FrameDecoder()
        self.transport: asyncio.Transport | None = None
        self.sessions: dict[int, RelaySession] = {}
        self.reported: dict[int, bytes] = {}  # last record sent per session
        self.done = asyncio.get_running_loop().create_future()
        self._next = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send(Ready(os.getpid(), self.ports.first, self.ports.last))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.done.done():
            self.done.set_result(None)

    def send(self, message: Message) -> None:
        if self.transport is not None:
            self.transport.write(encode(message))

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.decoder.feed(data)
        except ProtocolError:
            log.exception("relay worker: garbage from the SIP process")
            if self.transport is not None:
                self.transport.abort()
            return
        for message in messages:
            if isinstance(message, Open):
                self._spawn(self._open(message))
            elif isinstance(message, SetRemote):
                self._set_remote(message)
            elif isinstance(message, Close):
                self._spawn(self._close(message))
            else:
                log.error("relay worker: unexpected message", extra={"message": repr(message)})

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open(self, command: Open) -> None:
        try:
            session = await RelaySession.open(
                command.address, self.ports, relatch_after=command.relatch_after, dscp=command.dscp
            )
        except PortsExhaustedError as exc:
            self.send(Failed(command.request, FailureKind.EXHAUSTED, str(exc)))
            return
        except OSError as exc:
            self.send(Failed(command.request, FailureKind.OS, str(exc), exc.errno or 0))
            return
        except ValueError as exc:
            self.send(Failed(command.request, FailureKind.VALUE, str(exc)))
            return
        except Exception as exc:
            log.exception("relay worker: opening a session failed")
            self.send(Failed(command.request, FailureKind.INTERNAL, repr(exc)))
            return
        self._next = self._next % 0xFFFF_FFFF + 1
        while self._next in self.sessions:
            self._next = self._next % 0xFFFF_FFFF + 1
        self.sessions[self._next] = session
        self.send(Opened(command.request, self._next, *session.ports))

    def _set_remote(self, command: SetRemote) -> None:
        session = self.sessions.get(command.session)
        if session is None:
            self.send(Failed(command.request, FailureKind.UNKNOWN_SESSION, "no such session"))
            return
        try:
            leg = Leg.A if command.leg == 0 else Leg.B
            session.set_remote(leg, command.host, command.port, command.rtcp_port)
        except ValueError as exc:
            self.send(Failed(command.request, FailureKind.VALUE, str(exc)))
            return
        self.send(Done(command.request))

    async def _close(self, command: Close) -> None:
        """Close the session, then answer: `Closed` leaves only once its sockets are
        closed (or pooled), so the SIP side's ``wait_closed`` means the ports are free."""
        session = self.sessions.pop(command.session, None)
        self.reported.pop(command.session, None)
        if session is None:
            self.send(Failed(command.request, FailureKind.UNKNOWN_SESSION, "no such session"))
            return
        final = encode_snapshot(command.session, session.stats())  # pooling zeroes them
        session.close()
        await session.wait_closed()
        self.send(Closed(command.request, command.session, final))

    def push(self) -> None:
        """Send the counters of every session that changed since the last push."""
        reported, changed = self.reported, []
        for sid, session in self.sessions.items():
            record = encode_snapshot(sid, session.stats())
            if reported.get(sid) != record:
                reported[sid] = record
                changed.append(record)
        per_frame = (MAX_FRAME - 64) // SNAPSHOT.size
        for at in range(0, len(changed), per_frame):
            self.send(Snapshots(b"".join(changed[at : at + per_frame])))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last_sweep = loop.time()
        while not self.done.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.done), self.interval)
            self.push()
            now = loop.time()
            if now - last_sweep >= SWEEP_EVERY and isinstance(self.ports, RelayPorts):
                last_sweep = now
                self.ports.sweep(now)
        for session in self.sessions.values():
            session.close()
        for session in self.sessions.values():
            await session.wait_closed()
        if isinstance(self.ports, RelayPorts):
            self.ports.close()


async def _serve(fd: int, first: int, last: int, max_idle: int, interval: float) -> None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=fd)
    # No pooling (max_idle 0): a plain allocator, not a RelayPorts that pools nothing.
    # RelaySession.wait_closed waits only for the pairs the session closes itself; a pair
    # it hands to a RelayPorts is "pooled" to it at once, even when the pool (max_idle
    # 0) then closes it, so the Closed answer would overtake the sockets' closing.
    ports: PortAllocator = (
        RelayPorts(first, last, max_idle=max_idle) if max_idle > 0 else PortAllocator(first, last)
    )
    server = _Server(ports, interval)
    await loop.create_unix_connection(lambda: server, sock=sock)
    # What the imports built lives as long as the process: out of the collector's sight,
    # an occasional full collection no longer walks it while packets wait.
    gc.collect()
    gc.freeze()
    await server.run()


def main(argv: list[str] | None = None) -> int:
    """A worker process (started by `RelayWorkerPool`, not by hand)."""
    parser = argparse.ArgumentParser(description="RTP relay worker of the SIP service")
    parser.add_argument("--fd", type=int, required=True, help="the socket to the SIP process")
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--last", type=int, required=True)
    parser.add_argument("--max-idle", type=int, default=1024)
    parser.add_argument("--interval", type=float, default=DEFAULT_STATS_INTERVAL)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="relay worker %(process)d: %(message)s")
    runner: Callable[..., None] = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    runner(_serve(args.fd, args.first, args.last, args.max_idle, args.interval))
    return 0


if __name__ == "__main__":
    sys.exit(main())
