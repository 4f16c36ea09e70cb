"""Calls the box answers itself: feature codes (``*21*202#`` ...) hear a short tone.

The confirmation is three short 1,400 Hz beeps, an error the three rising tones of
the special information tone (950/1,400/1,800 Hz, ITU-T E.180 §2.6 — the same in every
country profile), then the box hangs up. The tone is played into the call's relay
from its callee side, as if a phone were there, so latching, counters and the CDR's
media figures work as for any call.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

import numpy as np

from firmware.media.player import BufferSource
from firmware.media.relay import Leg as Side

from ..sdp import SdpError, parse_sdp
from .call import Call
from .inject import RelayInjector
from .plan import LocalAnswer

if TYPE_CHECKING:
    from .core import B2BUA

log = logging.getLogger(__name__)

RATE = 8000
# (frequency Hz, duration ms) segments; 0 Hz is silence
CONFIRM = [(1400, 100), (0, 100), (1400, 100), (0, 100), (1400, 100), (0, 400)]
ERROR = [(950, 330), (1400, 330), (1800, 330), (0, 500)]
REPEATS = 2
CODECS = {8: "PCMA", 0: "PCMU"}


def tone_samples(segments: list[tuple[int, int]], level_dbm0: float = -13.0) -> np.ndarray:
    """int16 samples of ``segments`` at ``level_dbm0`` (3.14 dBm0 = full-scale sine)."""
    amplitude = 32767 * 10 ** ((level_dbm0 - 3.14) / 20)
    parts = []
    for freq, ms in segments:
        n = RATE * ms // 1000
        t = np.arange(n) / RATE
        parts.append(amplitude * np.sin(2 * np.pi * freq * t) if freq else np.zeros(n))
    return np.concatenate(parts).astype(np.int16)


class LocalAnswerer:
    def __init__(self, b2bua: B2BUA) -> None:
        self.b2bua = b2bua

    async def answer(self, call: Call, plan: LocalAnswer) -> None:
        b2bua = self.b2bua
        log.info("feature code answered locally", extra={"call": call.id, "text": plan.text})
        pt = _choose_payload(call.a_invite.body)
        if pt is None:
            b2bua._finish_a(call, 488)
            b2bua._end(call, 488, "box")
            return
        injector = RelayInjector(call.relay, Side.B, b2bua.media_address, pt)
        samples = tone_samples(CONFIRM if plan.ok else ERROR)
        await injector.play(BufferSource(np.tile(samples, REPEATS)))
        try:
            body = _sdp(b2bua.media_address, call.relay.port(Side.A), pt, call)
            ok = b2bua._respond_a(call, 200, body)
            call.answered = True
            if b2bua.call_log is not None:
                b2bua.call_log.answered(call.id)
            b2bua.confirm_a(call, ok)
            await injector.done()
        finally:
            injector.stop()
        if not call.ended:
            b2bua._hang_up(call, "box", exclude=None)


def _choose_payload(offer: bytes) -> int | None:
    """PCMA if the caller offered it, else PCMU; any G.711 when it made no offer."""
    if not offer:
        return 8
    with contextlib.suppress(SdpError):
        sdp = parse_sdp(offer)
        if sdp.media:
            offered = sdp.media[0].payload_types
            for pt in (8, 0):
                if pt in offered:
                    return pt
    return None


def _sdp(address: str, port: int, pt: int, call: Call) -> bytes:
    name = CODECS[pt]
    text = (
        f"v=0\r\no=skillepunkt 0 0 IN IP4 {address}\r\ns=-\r\nc=IN IP4 {address}\r\n"
        f"t=0 0\r\nm=audio {port} RTP/AVP {pt}\r\na=rtpmap:{pt} {name}/8000\r\n"
        "a=ptime:20\r\na=sendonly\r\n"
    )
    sdp = parse_sdp(text.encode())
    call.caller_leg.origin.stamp(sdp)
    return sdp.to_bytes()
