"""The "analog" service: the gateway's ports, driven by their chips, as a SIP user agent.

At start it numbers the ports (`plan_ports`), opens each FXS/FXO chip's driver on the
board's SPI and GPIO lines with a `PortRunner`, joins them to channels and timeslots
(`PortLeg`), and starts its own `UserAgent` on 127.0.0.1 (OS-chosen port unless
configured). It announces that address and the FXS extensions on the event bus
(`AnalogBinding`); the SIP service routes those extensions to it and trusts calls
from it by source address, so analog ports get forwarding, transfers and CDRs like
IP phones. Each call has one RTP socket (`RtpChannel`) from setup to release.

An FXS port has two call slots (``PortLeg.slots``): hook flash holds the first call
(the UA's re-INVITE sendonly; the box plays music to the held party) and dials a
consultation call in the second; hanging up transfers by REFER (with Replaces when the
consultation was answered) and the NOTIFY outcome (`on_transfer`) releases both calls
or rings the phone back (the channel's documented behaviour, ``FxsChannel``).

On the sim board the service also puts the chip models on the board and plugs a
virtual phone into every FXS line and a PSTN line into every FXO line (once per
process: they outlive service restarts), which the sim REST endpoints drive.

Its state is read through the bus too: publish an `AnalogStatusQuery` and read
``result`` (ports, calls and the in-use counters the leak tests assert on).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from drivers.analog_events import AnalogEvent, PortRunner
from drivers.daa_si3050 import DaaSi3050
from drivers.slic_si3215 import SlicSi3215
from firmware.config import ConfigChanged
from firmware.dsp import CountryProfile, load_profile
from firmware.sip.peer import Peer
from firmware.sip.ua import UaCall, UserAgent

from .analog_bus import AnalogBinding, AnalogBindingQuery, AnalogStatusQuery
from .analog_gateway import PortLeg, PortPlan, plan_ports
from .analog_media import MediaError, RtpChannel, remote_rtp, session_sdp
from .causes import cause_for_sip_status, sip_status_for_cause
from .channels import FxoChannel, FxsChannel
from .dialplan import DialPlan

if TYPE_CHECKING:
    from firmware.app import App

log = logging.getLogger(__name__)


@dataclass
class LegCall:
    """What the SIP side holds for a port's current call."""

    rtp: RtpChannel
    ua: UaCall | None = None


class AnalogService:
    name = "analog"

    def __init__(self, app: App, *, sip_host: str | None = None, ua_port: int = 0) -> None:
        self.app = app
        self.sip_host = sip_host or app.ports.host
        self.ua_port = ua_port
        self.legs: dict[str, PortLeg] = {}
        self.plans: dict[str, PortPlan] = {}
        self.ua: UserAgent | None = None
        self.profile: CountryProfile = load_profile(self._country())
        self.stats = {
            "calls_placed": 0,
            "calls_received": 0,
            "calls_refused": 0,
            "holds": 0,
            "transfers": 0,
            "transfers_failed": 0,
        }
        self.devices: dict[str, object] = {}
        attach = getattr(app.board, "attach_chips", None)
        if callable(attach):  # the sim board: chip models and virtual devices
            self._attach_sim(attach)

    def _country(self) -> str:
        system = self.app.store.section("system")
        country = system.get("country", "DK") if isinstance(system, dict) else "DK"
        return str(country).lower()

    def _attach_sim(self, attach: Callable[[], dict[str, object]]) -> None:
        from board.sim.devices import AnalogPhone, PstnLine

        for name, chip in attach().items():
            line = getattr(chip, "line")  # noqa: B009 - models of two classes
            device = AnalogPhone(line, self.profile) if name.startswith("fxs") else None
            device_or_line: object = device or PstnLine(line, self.profile)
            self.app.board.attach_virtual(name, device_or_line)  # type: ignore[attr-defined]
            self.devices[name] = device_or_line

    # --- running --------------------------------------------------------------------------

    async def run(self, ready: Callable[[], None]) -> None:
        app = self.app
        board: Any = app.board
        definition = getattr(board, "definition", None)
        devices = [
            d
            for d in (definition.devices if definition is not None else ())
            if d.kind.value in ("fxs", "fxo")
        ]
        taken, configured, disabled = self._config()
        devices = [d for d in devices if d.name not in disabled]
        names = [d.name for d in devices]
        self.plans = {p.name: p for p in plan_ports(names, configured, taken)}
        extensions = [p.extension for p in self.plans.values() if p.extension]
        dialplan = DialPlan([*taken, *extensions])
        loop = asyncio.get_running_loop()
        ua = self.ua = UserAgent(
            self, Peer("udp", self.sip_host, app.ports.sip), host=self.sip_host, port=self.ua_port
        )
        runners: list[PortRunner] = []
        pending: list[tuple[FxsChannel | FxoChannel, SlicSi3215 | DaaSi3050, int]] = []
        opened: list[Any] = []
        unsubscribe: list[Callable[[], None]] = []
        try:
            await ua.start()
            for dev in devices:
                plan = self.plans[dev.name]
                spi = board.open_spi(dev.bus, mode=3 if dev.kind.value == "fxs" else 0)
                irq = board.open_gpio(dev.irq_line, "in", edge="falling")
                reset = board.open_gpio(dev.reset_line, "high")
                opened += [spi, irq, reset]
                slot = dev.timeslots[0]
                driver: SlicSi3215 | DaaSi3050
                channel: FxsChannel | FxoChannel
                if dev.kind.value == "fxs":
                    driver = SlicSi3215(
                        spi, loop.time, port=dev.name, timeslot=slot, irq=irq, reset=reset
                    )
                    channel = FxsChannel(
                        dev.name, plan.extension or "", self.profile, dialplan, loop.time
                    )
                else:
                    driver = DaaSi3050(
                        spi, loop.time, port=dev.name, timeslot=slot, irq=irq, reset=reset
                    )
                    channel = FxoChannel(dev.name, plan.destination or "", self.profile, loop.time)
                pending.append((channel, driver, slot))
                runners.append(PortRunner(driver, irq, functools.partial(self._on_event, dev.name)))
            bus = app.bus
            unsubscribe.append(bus.subscribe(AnalogBindingQuery, self._answer_binding))
            unsubscribe.append(bus.subscribe(AnalogStatusQuery, self._answer_status))
            unsubscribe.append(bus.subscribe(ConfigChanged, self._on_config))
            async with asyncio.TaskGroup() as tg:
                started = [asyncio.Event() for _ in runners]
                for runner, event in zip(runners, started, strict=True):
                    tg.create_task(runner.run(event.set), name=runner.name)
                for event in started:
                    await event.wait()
                for channel, driver, slot in pending:  # a driver takes orders once initialised
                    self.legs[channel.port] = PortLeg(
                        channel, driver, board.pcm.firmware, slot, self.profile, self
                    )
                bus.publish(self.binding())
                log.info(
                    "analog gateway ready",
                    extra={"sip": f"{ua.address[0]}:{ua.address[1]}", "ports": len(self.legs)},
                )
                ready()
        finally:
            for stop in unsubscribe:
                stop()
            with contextlib.suppress(Exception):
                app.bus.publish(AnalogBinding(self.sip_host, 0, ()))
            for leg in self.legs.values():
                for slot in range(len(leg.slots)):
                    self._release(leg, slot)
                leg.close()
            self.legs.clear()
            await ua.close()
            for handle in reversed(opened):
                with contextlib.suppress(Exception):
                    handle.close()

    def gauges(self) -> list[tuple[str, str, float]]:
        """What /metrics shows of the analog ports: what is in use right now."""
        in_use = self.describe()["in_use"]
        helps = {
            "channels": "Analog ports not idle (dialling, ringing, in a call, tones).",
            "calls": "Calls of the analog gateway's SIP user agent.",
            "rtp_ports": "RTP sockets open for analog calls.",
            "timeslots": "PCM timeslots carrying call audio, tones or signalling.",
        }
        return [
            (f"skillepunkt_analog_{key}_in_use", text, float(in_use[key]))
            for key, text in helps.items()
        ]

    def _on_config(self, event: ConfigChanged) -> None:
        """Users, queues or ports changed: renumber the ports in place and tell the SIP
        service (a port's call in progress goes on)."""
        if not {"users", "queues", "ports"} & set(event.sections) or not self.legs:
            return
        taken, configured, _ = self._config()
        plans = plan_ports(list(self.legs), configured, taken)
        self.plans = {p.name: p for p in plans}
        extensions = [p.extension for p in plans if p.extension]
        dialplan = DialPlan([*taken, *extensions])
        for plan in plans:
            channel = self.legs[plan.name].channel
            if isinstance(channel, FxsChannel):
                channel.extension = plan.extension or ""
                channel.dialplan = dialplan
            else:
                channel.destination = plan.destination or ""
        self.app.bus.publish(self.binding())
        log.info("analog ports renumbered", extra={"extensions": ",".join(extensions)})

    def _config(
        self,
    ) -> tuple[list[str], dict[str, tuple[str | None, str | None]], set[str]]:
        """(numbers users and queues have, per-port (extension, destination), disabled ports)."""
        store = self.app.store
        taken = [str(u["extension"]) for u in store.section("users") if u.get("extension")]
        taken += [str(q["extension"]) for q in store.section("queues") if q.get("extension")]
        ports = store.section("ports")
        disabled = {str(p["name"]) for p in ports if not p.get("enabled", True)}
        configured = {
            str(p["name"]): (p.get("extension"), p.get("destination"))
            for p in ports
            if str(p["name"]) not in disabled
        }
        return taken, configured, disabled

    def _on_event(self, name: str, event: AnalogEvent) -> None:
        leg = self.legs.get(name)
        if leg is not None:
            leg.on_event(event)

    def binding(self) -> AnalogBinding:
        assert self.ua is not None
        host, port = self.ua.address
        extensions = tuple(p.extension for p in self.plans.values() if p.extension)
        return AnalogBinding(host, port, extensions)

    def _answer_binding(self, query: AnalogBindingQuery) -> None:
        if self.ua is not None and self.legs:
            query.answers.append(self.binding())

    def _answer_status(self, query: AnalogStatusQuery) -> None:
        query.result = self.describe()

    def describe(self) -> dict[str, Any]:
        legs = self.legs.values()
        rtp = [c.rtp for leg in legs for c in leg.slots if isinstance(c, LegCall)]
        ua = self.ua
        return {
            "sip": f"{ua.address[0]}:{ua.address[1]}" if ua is not None else None,
            "ports": {
                name: {
                    **leg.describe(),
                    "extension": self.plans[name].extension,
                    "destination": self.plans[name].destination,
                    "rtp": c.rtp.describe() if (c := _call(leg, 0)) is not None else None,
                    "calls": [
                        {**c.rtp.describe(), "held": c.ua.held if c.ua is not None else False}
                        if isinstance(c, LegCall)
                        else None
                        for c in leg.slots
                    ],
                }
                for name, leg in self.legs.items()
            },
            "in_use": {
                "channels": sum(leg.channel.state.value != "idle" for leg in legs),
                "calls": ua.active if ua is not None else 0,
                "rtp_ports": sum(r.is_open for r in rtp),
                "timeslots": sum(leg.timeslot_busy for leg in legs),
            },
            "stats": dict(self.stats),
        }

    # --- CallControl (the port legs' SIP side) -------------------------------------------------

    def place_call(self, leg: PortLeg, number: str, caller: str | None, slot: int = 0) -> None:
        ua = self.ua
        if ua is None or leg.slots[slot] is not None:
            self._failed(leg, 34, slot)
            return
        try:
            rtp = RtpChannel(self.sip_host)
        except OSError:
            log.exception("%s: no RTP socket for a call", leg.name)
            self._failed(leg, 47, slot)  # resource unavailable
            return
        call = LegCall(rtp)
        leg.slots[slot] = call
        sdp = session_sdp(self.sip_host, rtp.port, rtp.port)
        try:
            call.ua = ua.invite(number, caller, sdp, context=leg)
        except ValueError:
            self._release(leg, slot)
            self._failed(leg, 28, slot)
            return
        self.stats["calls_placed"] += 1

    def answer_call(self, leg: PortLeg) -> None:
        call = _call(leg, 0)
        if call is None or call.ua is None or self.ua is None:
            return
        try:
            self.ua.answer(call.ua, session_sdp(self.sip_host, call.rtp.port, call.rtp.port))
        except ValueError as exc:
            log.warning("%s: answer failed: %s", leg.name, exc)
            self._release(leg, 0)
            self._ended(leg, 41, 0)

    def clear_call(self, leg: PortLeg, cause: int, slot: int = 0) -> None:
        call = _call(leg, slot)
        if call is not None and call.ua is not None and self.ua is not None:
            self.ua.hangup(call.ua, sip_status_for_cause(cause))
        self._release(leg, slot)

    def media(self, leg: PortLeg, connected: bool, slot: int = 0) -> None:
        call = _call(leg, slot)
        if connected and call is not None:
            leg.media_in = call.rtp.media_in
            leg.media_out = call.rtp.media_out
        else:
            leg.media_in = leg.media_out = None

    def hold(self, leg: PortLeg, slot: int) -> None:
        call = _call(leg, slot)
        if call is None or call.ua is None or self.ua is None:
            return
        try:
            self.ua.hold(call.ua)
            self.stats["holds"] += 1
        except ValueError as exc:
            log.warning("%s: hold failed: %s", leg.name, exc)

    def resume(self, leg: PortLeg, slot: int) -> None:
        call = _call(leg, slot)
        if call is None or call.ua is None or self.ua is None:
            return
        try:
            self.ua.resume(call.ua)
        except ValueError as exc:
            log.warning("%s: resume failed: %s", leg.name, exc)

    def transfer(self, leg: PortLeg, slot: int, number: str, replaces: int | None) -> None:
        """REFER the held call: with Replaces naming the consultation (attended), or
        blind to ``number``; the NOTIFY outcome comes back in `on_transfer`."""
        held = _call(leg, slot)
        other = _call(leg, replaces) if replaces is not None else None
        try:
            if held is None or held.ua is None or self.ua is None:
                raise ValueError("no call to transfer")
            if replaces is not None and (other is None or other.ua is None):
                raise ValueError("no consultation call to replace")
            self.ua.refer(held.ua, number, other.ua if other is not None else None)
        except ValueError as exc:
            log.warning("%s: transfer failed: %s", leg.name, exc)
            if isinstance(leg.channel, FxsChannel):
                leg.channel.transfer_result(False)
                leg.run_actions()
            return
        log.info("%s: transfer to %s (%s)", leg.name, number, "attended" if other else "blind")

    def _release(self, leg: PortLeg, slot: int = 0) -> None:
        call = leg.slots[slot]
        leg.slots[slot] = None
        if isinstance(call, LegCall):
            if leg.media_in == call.rtp.media_in:
                leg.media_in = leg.media_out = None
            call.rtp.close()

    def _failed(self, leg: PortLeg, cause: int, slot: int = 0) -> None:
        channel = leg.channel
        if isinstance(channel, FxsChannel):
            channel.remote_failed(cause, slot)
        else:
            channel.remote_failed(cause)
        leg.run_actions()

    def _ended(self, leg: PortLeg, cause: int = 16, slot: int = 0) -> None:
        channel = leg.channel
        if isinstance(channel, FxsChannel):
            channel.remote_hangup(cause, slot)
        else:
            channel.remote_hangup(cause)
        leg.run_actions()

    # --- UaListener ---------------------------------------------------------------------------

    def _leg_of(self, call: UaCall) -> tuple[PortLeg, int] | None:
        leg = call.context
        if isinstance(leg, PortLeg):
            for slot, held in enumerate(leg.slots):
                if isinstance(held, LegCall) and held.ua is call:
                    return leg, slot
        return None

    def on_incoming(self, call: UaCall) -> int | None:
        self.stats["calls_received"] += 1
        leg = next(
            (
                self.legs[name]
                for name, plan in self.plans.items()
                if plan.extension == call.number and name in self.legs
            ),
            None,
        )
        if leg is None:
            self.stats["calls_refused"] += 1
            return 404
        if any(leg.slots) or not isinstance(leg.channel, FxsChannel):
            self.stats["calls_refused"] += 1
            return 486
        try:
            remote = remote_rtp(call.remote_sdp)
        except MediaError as exc:
            log.info("%s: refused an offer: %s", leg.name, exc)
            self.stats["calls_refused"] += 1
            return 488
        if not leg.channel.incoming(call.caller, call.display):
            self.stats["calls_refused"] += 1
            return 486
        try:
            rtp = RtpChannel(self.sip_host)
        except OSError:
            log.exception("%s: no RTP socket for a call", leg.name)
            leg.channel.remote_hangup(47)
            leg.run_actions()
            return 503
        rtp.remote = remote
        leg.slots[0] = LegCall(rtp, call)
        call.context = leg
        leg.run_actions()
        return None

    def on_progress(self, call: UaCall, status: int, sdp: bytes) -> None:
        found = self._leg_of(call)
        if found is None:
            return
        leg, slot = found
        channel = leg.channel
        if not isinstance(channel, FxsChannel):
            return
        early = status == 183 and sdp
        if early and self._set_remote(leg, slot, sdp):
            channel.remote_early_media(slot)
        else:
            channel.remote_ringing(slot)
        leg.run_actions()

    def on_answered(self, call: UaCall, sdp: bytes) -> None:
        found = self._leg_of(call)
        if found is None:
            if self.ua is not None:
                self.ua.hangup(call)
            return
        leg, slot = found
        if not self._set_remote(leg, slot, sdp):
            self.ua.hangup(call) if self.ua is not None else None
            self._release(leg, slot)
            self._ended(leg, 65, slot)  # bearer capability not implemented
            return
        channel = leg.channel
        if isinstance(channel, FxsChannel):
            channel.remote_answered(slot)
        else:
            channel.remote_answered()
        leg.run_actions()

    def on_failed(self, call: UaCall, status: int) -> None:
        found = self._leg_of(call)
        if found is None:
            return
        leg, slot = found
        self._release(leg, slot)
        self._failed(leg, cause_for_sip_status(status), slot)

    def on_ended(self, call: UaCall) -> None:
        found = self._leg_of(call)
        if found is None:
            return
        leg, slot = found
        self._release(leg, slot)
        self._ended(leg, 16, slot)

    def on_transfer(self, call: UaCall, status: int) -> None:
        found = self._leg_of(call)
        if found is None:
            return
        leg, _slot = found
        channel = leg.channel
        if not isinstance(channel, FxsChannel):
            return
        ok = 200 <= status < 300
        self.stats["transfers" if ok else "transfers_failed"] += 1
        log.info("%s: transfer %s (%d)", leg.name, "done" if ok else "failed", status)
        channel.transfer_result(ok)
        leg.run_actions()

    def _set_remote(self, leg: PortLeg, slot: int, sdp: bytes) -> bool:
        call = _call(leg, slot)
        if call is None:
            return False
        try:
            call.rtp.remote = remote_rtp(sdp)
        except MediaError as exc:
            log.info("%s: unusable SDP answer: %s", leg.name, exc)
            return False
        return True


def _call(leg: PortLeg, slot: int) -> LegCall | None:
    call = leg.slots[slot]
    return call if isinstance(call, LegCall) else None


__all__ = [
    "AnalogBinding",
    "AnalogBindingQuery",
    "AnalogService",
    "AnalogStatusQuery",
    "LegCall",
]
