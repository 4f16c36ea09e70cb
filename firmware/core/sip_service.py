"""The "sip" service of the daemon: endpoint, registrar, location, B2BUA and CDRs wired up.

This is the transaction user of the endpoint: REGISTER goes to the registrar, OPTIONS
is answered, INVITEs and in-dialog requests go to the B2BUA. CDR steps are
group-committed by one writer thread (`firmware.core.cdr_writer`), so the event loop
never waits for the disk; their times are taken on the loop, when the step happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from firmware.config import ConfigChanged
from firmware.media.relay import RelayPorts
from firmware.media.relay_workers import RelayWorkerPool, default_workers
from firmware.sip.b2bua import B2BUA, Caller
from firmware.sip.digest import DigestAuthenticator
from firmware.sip.endpoint import EndpointConfig, SipEndpoint
from firmware.sip.location import LocationService
from firmware.sip.message import Request, Response
from firmware.sip.options import options_response
from firmware.sip.overload import OverloadConfig, OverloadGuard, watch_loop
from firmware.sip.peer import Peer
from firmware.sip.registrar import Registrar, UserDirectory
from firmware.system.certs import ensure_certificate, server_context

from .analog_bus import AnalogBinding, AnalogBindingQuery
from .causes import cause_for_sip_status
from .cdr import CallOp, CdrStore, EndOp, StartOp, disposition_for
from .cdr_writer import CdrWriter
from .features import FeatureStore
from .routing import ExtensionRouter

if TYPE_CHECKING:
    from firmware.app import App

log = logging.getLogger(__name__)

#: Released relay port pairs kept bound for the next calls, at most (see RelayPorts).
MAX_IDLE_PAIRS = 4096


@dataclass(slots=True)
class _Unwritten:
    """A call whose start is still held on the loop (see `CdrLog`)."""

    caller: Caller
    dialled: str
    start: float
    answer: float | None = None


class CdrLog:
    """B2BUA call events -> durable CDRs through a `CdrWriter` (group commit off the loop).

    Most calls are short next to a second, so a call's start is held on the loop for
    ``defer`` seconds: a call that ends meanwhile becomes one INSERT of the whole row
    (`CdrStore.record_call`) instead of an INSERT and two read-modify-UPDATEs; a longer
    one has its start (and answer) queued when ``defer`` is up, and its end when it
    ends. So a call is committed at most ``defer`` + one writer batch after it starts.
    A step the writer's queue cannot take is logged in full instead (drop-to-log), so
    overload never blocks the loop and never loses a CDR silently. Steps go to the writer
    as tuples (`firmware.core.cdr.Op`), the least the loop can build per step.
    """

    def __init__(
        self, store: CdrStore, writer: CdrWriter | None = None, *, defer: float = 1.0
    ) -> None:
        self.store = store
        self.writer = writer or CdrWriter(store)
        self.defer = defer
        self._answered: set[str] = set()
        self._unwritten: dict[str, _Unwritten] = {}  # by call id, oldest first
        self._timer: asyncio.TimerHandle | None = None
        self._last_at = 0.0

    def _now(self) -> float:
        """Wall-clock time of a step, never going backwards (an NTP step back would
        otherwise date an answer before its start, which the store refuses)."""
        self._last_at = max(time.time(), self._last_at)
        return self._last_at

    @property
    def backlog(self) -> int:
        return self.writer.backlog

    @staticmethod
    def _dropped(what: str, **fields: object) -> None:
        log.warning("CDR queue full: step logged, not stored", extra={"cdr": what, **fields})

    def started(self, call_id: str, caller: Caller, dialled: str) -> None:
        self._unwritten[call_id] = _Unwritten(caller, dialled, self._now())
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.defer, self._flush)

    def _flush(self, everything: bool = False) -> None:
        """Queue the starts (and answers) held ``defer`` seconds or more."""
        self._timer = None
        due = time.time() - self.defer
        unwritten = self._unwritten
        while unwritten:
            call_id, call = next(iter(unwritten.items()))
            if call.start > due and not everything:
                self._timer = asyncio.get_running_loop().call_later(call.start - due, self._flush)
                return
            del unwritten[call_id]
            self._write_start(call_id, call)
            if call.answer is not None:
                self._write_answer(call_id, call.answer)

    def _write_start(self, call_id: str, call: _Unwritten) -> None:
        caller, dialled, at = call.caller, call.dialled, call.start
        start: StartOp = (
            "start", call_id, "internal", caller.number, caller.display, dialled, "sip", "sip",
            at, None,
        )  # fmt: skip
        if not self.writer.submit(start):
            self._dropped("start", call_id=call_id, caller=caller.number, dialled=dialled, at=at)

    def _write_answer(self, call_id: str, at: float) -> None:
        if not self.writer.submit(("answer", call_id, at)):
            self._dropped("answer", call_id=call_id, at=at)

    def answered(self, call_id: str) -> None:
        self._answered.add(call_id)
        at = self._now()
        call = self._unwritten.get(call_id)
        if call is not None:
            call.answer = at
        else:
            self._write_answer(call_id, at)

    def ended(
        self, call_id: str, status: int | None, hangup_by: str, media: dict[str, object]
    ) -> None:
        answered = call_id in self._answered
        self._answered.discard(call_id)
        by = hangup_by if hangup_by in ("caller", "callee") else "box"
        abandoned = status == 487 and by == "caller"  # the caller hung up while it rang
        if answered or abandoned or status is None or status < 300:
            cause = 16
        else:
            cause = cause_for_sip_status(status)
        disposition = disposition_for(cause, answered=answered, hangup_by=by)
        at = self._now()
        call = self._unwritten.pop(call_id, None)
        step: CallOp | EndOp
        if call is not None:  # the whole call in one row
            caller = call.caller
            step = (
                "call", call_id, "internal", caller.number, caller.display, call.dialled, None,
                "sip", "sip", call.start, call.answer, at, disposition, by, cause, status,
                {"media": media},
            )  # fmt: skip
        else:
            step = ("end", call_id, at, disposition, by, cause, status, {"media": media})
        if not self.writer.submit(step):
            self._dropped(
                "end", call_id=call_id, disposition=str(disposition), hangup_by=by,
                cause=cause, status=status, media=media, at=at,
                start=call.start if call else None, answer=call.answer if call else None,
                caller=call.caller.number if call else None,
                dialled=call.dialled if call else None,
            )  # fmt: skip

    def close(self) -> None:
        """Queue every held start, write everything, stop the writer."""
        if self._timer is not None:
            self._timer.cancel()
        self._flush(everything=True)
        self.writer.close()


async def _start_media_workers(
    first: int, last: int, configured: int | None, max_idle: int
) -> RelayWorkerPool | None:
    """The relay worker processes ``sip.media_workers`` asks for (None: one per core but
    one), started; None when there are to be none, or when they cannot be had (then the
    SIP process relays every call itself, as with 0, and says why)."""
    workers = default_workers() if configured is None else int(configured)
    if workers <= 0:
        return None
    try:
        pool = RelayWorkerPool(first, last, workers, max_idle=max_idle)
        await pool.start()
    except Exception:
        log.exception("relay workers could not start: media stays in the SIP process")
        return None
    log.info("relay workers started", extra={"workers": workers, "pids": pool.pids()})
    return pool


class SipService:
    name = "sip"

    def __init__(self, app: App) -> None:
        self.app = app
        self.endpoint: SipEndpoint | None = None
        self.registrar: Registrar | None = None
        self.b2bua: B2BUA | None = None
        self.location: LocationService | None = None
        self.overload: OverloadGuard | None = None
        self.media_pool: RelayWorkerPool | None = None

    def gauges(self) -> list[tuple[str, str, float]]:
        """What /metrics shows of SIP: calls up and registered contacts."""
        b2bua, location = self.b2bua, self.location
        return [
            (
                "skillepunkt_sip_calls_active",
                "Calls through the B2BUA right now (ringing or answered).",
                float(b2bua.active_calls if b2bua is not None else 0),
            ),
            (
                "skillepunkt_sip_contacts",
                "Registered contacts in the location service.",
                float(len(location) if location is not None else 0),
            ),
            *self._media_gauges(),
        ]

    def _media_gauges(self) -> list[tuple[str, str, float]]:
        pool = self.media_pool
        if pool is None:
            return []
        return [
            (
                "skillepunkt_media_workers_up",
                "Relay worker processes up (sip.media_workers).",
                float(sum(load is not None for load in pool.loads())),
            ),
            (
                "skillepunkt_media_worker_restarts",
                "Relay worker processes restarted after dying since the service started.",
                float(pool.restarts),
            ),
        ]

    async def run(self, ready: Callable[[], None]) -> None:
        app = self.app
        hostname = app.store.section("system")["hostname"]
        location = self.location = LocationService.open(app.data_dir)
        cdrs = CdrStore.open(app.data_dir)
        cdrs.recover()
        cdr_log = CdrLog(cdrs)
        users = UserDirectory.from_store(app.store)
        algorithms = tuple(app.store.section("sip")["digest_algorithms"])
        authenticator = DigestAuthenticator(hostname, algorithms=algorithms)
        registrar = self.registrar = Registrar(location, authenticator, users.password_for)
        unfollow = registrar.follow(app.bus, users)
        cert, key = ensure_certificate(app.data_dir, hostname)
        ports = app.ports
        endpoint = self.endpoint = SipEndpoint(
            EndpointConfig(
                host=ports.host,
                udp_port=ports.sip,
                tcp_port=ports.sip,
                tls_port=ports.sip_tls,
                tls_context=server_context(cert, key),
            ),
            tu=self,
        )
        features = FeatureStore.open(app.data_dir)
        router = ExtensionRouter(users, location, authenticator, registrar.guard, features)
        router.set_trunks(app.store.section("trunks"))
        router.set_users(app.store.section("users"))
        router.set_conference_rooms(app.store.section("sip").get("conference_rooms", []))

        def trunks_changed(event: ConfigChanged) -> None:
            if "trunks" in event.sections:
                router.set_trunks(app.store.section("trunks"))
            if "users" in event.sections:
                router.set_users(app.store.section("users"))
            if "sip" in event.sections:
                router.set_conference_rooms(app.store.section("sip").get("conference_rooms", []))

        unfollow_trunks = app.bus.subscribe(ConfigChanged, trunks_changed)

        def analog_bound(event: AnalogBinding) -> None:  # the box's analog gateway (its ATA)
            router.set_internal("analog", event.host, event.port, event.extensions)

        unfollow_analog = app.bus.subscribe(AnalogBinding, analog_bound)
        bound = AnalogBindingQuery()
        app.bus.publish(bound)
        for binding in bound.answers:
            analog_bound(binding)
        # released media port pairs stay bound for the next calls (see RelayPorts): at
        # 1,000 calls/s about 1,000 pairs wait out their 0.5 s quarantine, and a pool
        # smaller than that binds fresh sockets for every call past it, which costs more
        # than the rest of the call. The idle pairs (2 sockets each) may take at most a
        # quarter of the file descriptors.
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        max_idle = MAX_IDLE_PAIRS
        if nofile != resource.RLIM_INFINITY:
            max_idle = min(MAX_IDLE_PAIRS, nofile // 8)
        sip_policy = app.store.section("sip")
        media_pool = self.media_pool = await _start_media_workers(
            ports.rtp_first, ports.rtp_last, sip_policy.get("media_workers"), max_idle
        )
        relay_ports = (
            media_pool.ports
            if media_pool is not None
            else RelayPorts(ports.rtp_first, ports.rtp_last, max_idle=max_idle)
        )
        relay_factory: dict[str, Any] = {}
        if media_pool is not None:
            relay_factory["open_relay"] = media_pool.open
        try:
            self.b2bua = B2BUA(
                endpoint,
                router,
                ports.host,
                relay_ports,
                cdr_log,
                session_expires=int(sip_policy.get("session_expires", 1800)),
                music_on_hold=bool(sip_policy.get("music_on_hold", True)),
                **relay_factory,
            )
        except BaseException:
            if media_pool is not None:
                await media_pool.close()
            raise
        guard_task: asyncio.Task[None] | None = None
        try:
            await endpoint.start()
            guard_task = asyncio.create_task(
                self._guard_overload(endpoint, cdr_log), name="sip-overload"
            )
            ready()
            while True:
                await asyncio.sleep(5)
                registrar.sweep()  # the CDR writer keeps the CDR heartbeat itself
                relay_ports.sweep(asyncio.get_running_loop().time())
        finally:
            if guard_task is not None:
                guard_task.cancel()
            unfollow()
            unfollow_trunks()
            unfollow_analog()
            await endpoint.close()
            if media_pool is not None:
                await media_pool.close()  # its own slice of pairs too
            relay_ports.close()
            cdr_log.close()
            cdrs.close()
            location.close()
            features.close()

    async def _guard_overload(self, endpoint: SipEndpoint, cdr_log: CdrLog) -> None:
        """Refuse new calls (503) while the box is behind: SIP datagrams queued in the
        kernel past 1/8 of the receive buffer (1 MiB of 8: ~800 datagrams, 160 ms of
        traffic at 1,000 calls/s -- more and retransmissions start adding load; less
        and a short CPU stall on a busy machine would already refuse calls), the CDR
        writer more than half its queue behind, or the loop lagging. Probed every
        50 ms, so admission follows the box's real capacity closely."""
        layer = endpoint.layer
        transport = endpoint.transport
        backlog = transport.receive_backlog()
        limits: dict[str, float] = {"cdr_backlog": cdr_log.writer.max_queue / 2}
        if backlog is not None:
            limits["udp_backlog"] = max(128 * 1024, backlog[1] / 8)
        self.overload = guard = OverloadGuard(
            OverloadConfig(retry_after=endpoint.config.retry_after), limits
        )

        def gauges() -> dict[str, float]:
            values = {"cdr_backlog": float(cdr_log.backlog)}
            queued = transport.receive_backlog()
            if queued is not None:
                values["udp_backlog"] = float(queued[0])
            return values

        def apply(shedding: bool) -> None:
            layer.shed_invites = shedding

        await watch_loop(guard, apply, gauges)

    # -- transaction user ---------------------------------------------------------------

    def on_request(self, txn: int, request: Request, peer: Peer) -> None:
        endpoint, b2bua, registrar = self.endpoint, self.b2bua, self.registrar
        assert endpoint is not None and b2bua is not None and registrar is not None
        method = request.method
        if request.to.tag is not None:
            if not b2bua.on_in_dialog(txn, request, peer):
                endpoint.respond(txn, request.make_response(481))
            return
        if method == "INVITE":
            b2bua.on_invite(txn, request, peer)
        elif method == "REGISTER":
            endpoint.respond(txn, registrar.handle(request, peer))
        elif method == "OPTIONS":
            endpoint.respond(txn, options_response(request))
        else:
            endpoint.respond(
                txn,
                request.make_response(
                    405,
                    to_tag="na",
                    headers=[
                        ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO")
                    ],
                ),
            )

    def on_ack(self, request: Request, peer: Peer) -> None:
        if self.b2bua is not None:
            self.b2bua.on_ack(request, peer)

    def on_cancel(self, invite_txn: int, cancel: Request, peer: Peer) -> None:
        if self.b2bua is not None and self.endpoint is not None:
            self.b2bua.on_cancel(invite_txn, cancel)
            self.endpoint.reply(invite_txn, 487)  # refused (False) when the B2BUA answered it

    def on_response(self, txn: int | None, response: Response, peer: Peer) -> None:
        if (
            self.b2bua is not None
            and 200 <= response.status < 300
            and response.cseq.method == "INVITE"
        ):
            self.b2bua.on_b_response_retransmitted(response)

    def on_failure(self, txn: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            log.debug("server transaction failed", extra={"txn": txn, "reason": reason})
