"""The analog gateway: FXS/FXO ports as SIP endpoints of the box's own B2BUA (a built-in ATA).

This module holds the port side of the gateway: numbering, and one ``PortLeg`` per
port that joins a driver (events in, ring/seize/polarity out), a channel state
machine (``firmware.core.channels``) and the port's PCM timeslot (tones, caller ID and
DTMF generated onto it, its audio fed to the channel, call audio to and from the SIP
side through ``media_in``/``media_out``). Call control goes out through the
``CallControl`` protocol, which the SIP user agent (``firmware.sip.ua``) implements.

Numbering with no port configuration (documented default):

* ``fxsN`` rings extension ``100 + N`` (fxs1 = 101 ... fxs8 = 108) unless that number
  is already a user's, a queue's or another port's; then ``8100 + N`` (fxs1 = 8101),
  and if that too is taken the port has no extension (it can still dial out).
  ``ports[].extension`` overrides the default.
* ``fxoN`` rings ``ports[].destination`` or, by default, the first FXS port that has
  an extension (fxs1 = 101 out of the box).

Audio on the timeslot is A-law both ways, 20 ms frames, as on the RTP side (PCMA):
call audio is never transcoded, only tones and signalling are synthesized here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np

from drivers.analog_events import (
    AnalogEvent,
    Disconnect,
    HookFlash,
    OffHook,
    OnHook,
    PolarityReversal,
    RingingEnded,
    RingStart,
)
from firmware.core.channels import (
    Action,
    AnswerCall,
    ClearCall,
    FxoChannel,
    FxsChannel,
    Hold,
    Media,
    OffHookWarning,
    PlaceCall,
    PlayTone,
    Release,
    Resume,
    Seize,
    SendCallerId,
    SendDigits,
    StartRing,
    StopRing,
    Transfer,
)
from firmware.dsp import CallerIdSender, CountryProfile, DtmfSender, ToneGenerator
from firmware.media.codecs.g711 import alaw_decode, alaw_encode

log = logging.getLogger(__name__)

FRAME = 160
SILENCE = alaw_encode(np.zeros(FRAME, dtype=np.int16))
SILENT_SAMPLES = alaw_decode(SILENCE)  # SILENCE decoded once (channels must not change it)
SILENT_SAMPLES.flags.writeable = False
DEFAULT_BASE = 100
FALLBACK_BASE = 8100


# --- numbering ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortPlan:
    name: str
    kind: str  # "fxs" | "fxo"
    extension: str | None  # fxs: the number that rings it
    destination: str | None  # fxo: where its incoming calls go


def plan_ports(
    ports: Iterable[str],
    configured: dict[str, tuple[str | None, str | None]],
    taken: Iterable[str],
) -> list[PortPlan]:
    """Numbers for ``ports`` (fxsN/fxoN names) under the documented default rule.

    ``configured`` maps a port name to its (extension, destination) from the config;
    ``taken`` are the numbers users and queues already have.
    """
    names = sorted(ports, key=_port_order)
    used = set(taken) | {ext for ext, _ in configured.values() if ext}
    plans: list[PortPlan] = []
    for name in names:
        kind = name.rstrip("0123456789")
        ext, dest = configured.get(name, (None, None))
        if kind == "fxs" and ext is None:
            n = int(name[3:])
            for candidate in (str(DEFAULT_BASE + n), str(FALLBACK_BASE + n)):
                if candidate not in used:
                    ext = candidate
                    used.add(ext)
                    break
        plans.append(PortPlan(name, kind, ext if kind == "fxs" else None, dest))
    first = next((p.extension for p in plans if p.kind == "fxs" and p.extension), None)
    return [
        PortPlan(p.name, p.kind, p.extension, p.destination or first) if p.kind == "fxo" else p
        for p in plans
    ]


def _port_order(name: str) -> tuple[str, int]:
    kind = name.rstrip("0123456789")
    return kind, int(name[len(kind) :] or 0)


# --- what the SIP side provides -------------------------------------------------------------


class CallControl(Protocol):
    """The SIP user agent's side of a leg (implemented by the gateway's UA).

    ``slot`` is the port's call slot (0 or 1, see ``FxsChannel``); an answered call is
    always slot 0 (a port only takes a call when idle).
    """

    def place_call(self, leg: PortLeg, number: str, caller: str | None, slot: int) -> None: ...

    def answer_call(self, leg: PortLeg) -> None: ...

    def clear_call(self, leg: PortLeg, cause: int, slot: int) -> None: ...

    def media(self, leg: PortLeg, connected: bool, slot: int) -> None: ...

    def hold(self, leg: PortLeg, slot: int) -> None: ...

    def resume(self, leg: PortLeg, slot: int) -> None: ...

    def transfer(self, leg: PortLeg, slot: int, number: str, replaces: int | None) -> None: ...


class SlicLike(Protocol):
    def ring(self, cadence_ms: Sequence[float] | None = None) -> None: ...

    def stop_ring(self) -> None: ...

    def set_onhook_transmission(self, enabled: bool) -> None: ...


class DaaLike(Protocol):
    def seize(self) -> None: ...

    def release(self) -> None: ...

    def set_caller_id_capture(self, enabled: bool) -> None: ...


class PcmSide(Protocol):
    def write(self, slot: int, frame: bytes) -> None: ...

    def subscribe(self, slot: int, callback: Callable[[int, bytes], None]) -> None: ...

    def unsubscribe(self, slot: int, callback: Callable[[int, bytes], None]) -> None: ...


# --- one port -----------------------------------------------------------------------------------


class PortLeg:
    """One analog port: driver events and timeslot frames in, channel actions carried out.

    Each PCM tick (``_on_frame``) the leg feeds the port's audio to the channel, runs
    the channel's timers and writes one frame back: caller ID or DTMF being sent, else
    the current tone, else call audio from ``media_in`` while media is connected.
    """

    def __init__(
        self,
        channel: FxsChannel | FxoChannel,
        driver: SlicLike | DaaLike,
        pcm: PcmSide,
        slot: int,
        profile: CountryProfile,
        calls: CallControl,
    ) -> None:
        self.channel = channel
        self.name = channel.port
        self.driver = driver
        self.pcm = pcm
        self.slot = slot
        self.profile = profile
        self.calls = calls
        self.media_connected = False
        self.media_in: Callable[[], bytes | None] | None = None  # next RTP frame (A-law)
        self.media_out: Callable[[bytes], None] | None = None  # frame for RTP (A-law)
        self.slots: list[object | None] = [None, None]  # the SIP side's handle per call slot
        self._tone: ToneGenerator | None = None
        self._signal: list[np.ndarray] = []  # caller ID / DTMF samples to send, in order
        self._cid_pending = False
        self.frames = 0
        pcm.subscribe(slot, self._on_frame)
        fxs = isinstance(channel, FxsChannel)
        self._slic = cast(SlicLike, driver) if fxs else None
        self._daa = None if fxs else cast(DaaLike, driver)
        if self._daa is not None:
            self._daa.set_caller_id_capture(True)

    @property
    def fxs(self) -> bool:
        return isinstance(self.channel, FxsChannel)

    # --- inputs -----------------------------------------------------------------------------

    def on_event(self, event: AnalogEvent) -> None:
        ch = self.channel
        if isinstance(ch, FxsChannel):
            if isinstance(event, OffHook):
                ch.off_hook()
            elif isinstance(event, OnHook):
                ch.on_hook()
            elif isinstance(event, HookFlash):
                ch.hook_flash()
        else:
            if isinstance(event, RingStart):
                ch.ring_start()
            elif isinstance(event, RingingEnded):
                ch.ringing_ended()
            elif isinstance(event, PolarityReversal):
                ch.polarity_reversal(event.reversed)
            elif isinstance(event, Disconnect):
                ch.disconnect()
        self.run_actions()

    def _on_frame(self, _slot: int, frame: bytes) -> None:
        self.frames += 1
        if frame == SILENCE:  # an idle line: no decoding, caller-ID reception may skip it
            self.channel.quiet(SILENT_SAMPLES)
        else:
            self.channel.audio(alaw_decode(frame))
        if self.media_connected and self.media_out is not None:
            self.media_out(frame)
        self.channel.poll()
        self.run_actions()
        self.pcm.write(self.slot, self._next_frame())

    def _next_frame(self) -> bytes:
        if self._signal:
            out = np.zeros(FRAME, dtype=np.int16)
            filled = 0
            while filled < FRAME and self._signal:
                chunk = self._signal[0]
                take = min(FRAME - filled, len(chunk))
                out[filled : filled + take] = chunk[:take]
                filled += take
                if take == len(chunk):
                    self._signal.pop(0)
                else:
                    self._signal[0] = chunk[take:]
            if not self._signal and self._cid_pending:
                self._cid_pending = False
                if isinstance(self.channel, FxsChannel):
                    self.channel.caller_id_sent()
            return alaw_encode(out)
        if self._tone is not None:
            return alaw_encode(self._tone.read())
        if self.media_connected and self.media_in is not None:
            frame = self.media_in()
            if frame is not None:
                return frame
        return SILENCE

    # --- actions ----------------------------------------------------------------------------

    def run_actions(self) -> None:
        for action in self.channel.take_actions():
            try:
                self._perform(action)
            except Exception:
                log.exception("%s: %s failed", self.name, action)

    def _perform(self, action: Action) -> None:
        if isinstance(action, PlayTone):
            self._set_tone(action.name)
        elif isinstance(action, StartRing) and self._slic is not None:
            self._slic.ring(action.cadence_ms)
        elif isinstance(action, StopRing) and self._slic is not None:
            self._slic.stop_ring()
            self._slic.set_onhook_transmission(False)
        elif isinstance(action, SendCallerId) and self._slic is not None:
            self._slic.set_onhook_transmission(True)
            self._signal.append(self._cid_audio(action.number, action.name))
            self._cid_pending = True
        elif isinstance(action, SendDigits):
            d = self.profile.dtmf
            with DtmfSender(
                level_dbm0=round(d.level_dbm0),
                twist_db=round(d.twist_db),
                on_ms=d.on_ms,
                off_ms=d.off_ms,
            ) as tx:
                self._signal.append(tx.generate(action.digits))
        elif isinstance(action, Seize) and self._daa is not None:
            self._daa.seize()
        elif isinstance(action, Release) and self._daa is not None:
            self._daa.release()
            self._signal.clear()
        elif isinstance(action, Media):
            self.media_connected = action.connected
            self.calls.media(self, action.connected, action.call)
        elif isinstance(action, PlaceCall):
            self.calls.place_call(self, action.number, action.caller, action.call)
        elif isinstance(action, AnswerCall):
            self.calls.answer_call(self)
        elif isinstance(action, ClearCall):
            self.calls.clear_call(self, action.cause, action.call)
        elif isinstance(action, Hold):
            self.calls.hold(self, action.call)
        elif isinstance(action, Resume):
            self.calls.resume(self, action.call)
        elif isinstance(action, Transfer):
            self.calls.transfer(self, action.call, action.number, action.replaces)
        elif isinstance(action, OffHookWarning):
            # No howler in the profiles: repeat the congestion tone (box choice).
            self._set_tone("congestion")

    def _set_tone(self, name: str | None) -> None:
        if self._tone is not None:
            self._tone.close()
            self._tone = None
        if name is not None:
            self._tone = ToneGenerator(self.profile.tone(name))

    def _cid_audio(self, number: str, name: str | None) -> np.ndarray:
        cid = self.profile.caller_id
        sender = CallerIdSender(
            cid.method,
            dtmf_end=cid.dtmf_end,
            dtmf_on_ms=cid.dtmf_on_ms,
            dtmf_off_ms=cid.dtmf_off_ms,
        )
        return sender.generate(number, name)

    @property
    def in_use(self) -> bool:
        """A call, a tone or signalling is active on the port (its timeslot is busy)."""
        return (
            self.channel.state.value != "idle"
            or self.media_connected
            or bool(self._signal)
            or any(call is not None for call in self.slots)
        )

    @property
    def timeslot_busy(self) -> bool:
        """Something is being sent on the timeslot: call audio, a tone or signalling."""
        return self.media_connected or self._tone is not None or bool(self._signal)

    def close(self) -> None:
        self.pcm.unsubscribe(self.slot, self._on_frame)
        self._set_tone(None)
        self.channel.close()

    def describe(self) -> dict[str, object]:
        return {
            **self.channel.describe(),
            "timeslot": self.slot,
            "media": self.media_connected,
            "in_use": self.in_use,
        }
