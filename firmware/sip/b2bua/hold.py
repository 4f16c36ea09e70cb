"""Music on hold: when a party puts the call on hold, the box answers the hold itself
and plays music to the held party, instead of passing the hold on (which would leave
the held party in silence, as a bare proxy does).

The holder's re-INVITE (or UPDATE) with ``sendonly``/``inactive`` (or the RFC 2543
``c=0.0.0.0``) is answered by the box with the matching direction, and a
`RelayInjector` takes the holder's place in the relay. When the holder resumes, the
injector stops, the relay takes the holder's address back and the box answers with
its earlier description: the held party never sees a re-INVITE. The held party must
be on G.711 (the box's player encodes PCMA/PCMU); otherwise the hold is passed on as
before. The music is a built-in melody until a file is configured (`DEFAULT_MUSIC`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from firmware.media.player import ToneSource

from ..message import Request
from ..sdp import (
    SdpError,
    direction,
    is_hold,
    parse_sdp,
    rtcp_address,
    rtp_address,
    set_direction,
)
from .call import Call, CallLeg
from .inject import ENCODERS, RelayInjector

if TYPE_CHECKING:
    from .core import B2BUA

log = logging.getLogger(__name__)

# a slow arpeggio (C major, A minor) at a comfortable level: recognisably "music on
# hold", never mistaken for a call-progress tone (those are single 425 Hz cadences)
DEFAULT_MUSIC = "523/400,659/400,784/400,659/400,440/400,523/400,659/400,523/400,0/400"
ANSWER_TO = {"sendonly": "recvonly", "inactive": "inactive", "sendrecv": "recvonly"}


class MusicOnHold:
    def __init__(self, b2bua: B2BUA, music: str = DEFAULT_MUSIC) -> None:
        self.b2bua = b2bua
        self.music = music
        self.playing: dict[str, tuple[CallLeg, RelayInjector]] = {}  # call id -> holder

    def wants(self, call: Call, leg: CallLeg, request: Request) -> bool:
        """A hold the box answers, or the resume of one it answered."""
        if request.method not in ("INVITE", "UPDATE") or len(call.legs) != 2:
            return False
        if not request.body or "sdp" not in str(request.content_type or ""):
            return False
        current = self.playing.get(call.id)
        if current is not None:
            return current[0] is leg
        try:
            sdp = parse_sdp(request.body)
        except SdpError:
            return False
        held = call.other(leg)
        return (
            bool(sdp.media)
            and is_hold(sdp, sdp.media[0])
            and held is not None
            and _g711(held.sent_sdp) is not None
        )

    async def handle(self, txn: int, call: Call, leg: CallLeg, request: Request) -> None:
        b2bua = self.b2bua
        try:
            sdp = parse_sdp(request.body)
        except SdpError:
            b2bua.endpoint.respond(txn, request.make_response(488))
            return
        holding = bool(sdp.media) and is_hold(sdp, sdp.media[0])
        current = self.playing.get(call.id)
        if holding and current is None:
            held = call.other(leg)
            pt = _g711(held.sent_sdp) if held is not None else None
            if pt is None:
                b2bua.endpoint.respond(txn, request.make_response(488))
                return
            injector = RelayInjector(call.relay, leg.side, b2bua.media_address, pt)
            await injector.play(ToneSource(self.music))
            self.playing[call.id] = (leg, injector)
            leg.remote_sdp = request.body
            answer = _with_direction(leg, ANSWER_TO.get(direction(sdp.media[0], sdp), "inactive"))
            log.info("music on hold", extra={"call": call.id, "holder": leg.number})
        elif not holding and current is not None:
            current[1].stop()
            del self.playing[call.id]
            rtp, rtcp = rtp_address(sdp, 0), rtcp_address(sdp, 0)
            if rtp is not None:  # the holder's address back in the relay
                call.relay.set_remote(leg.side, rtp[0], rtp[1], rtcp[1] if rtcp else None)
            leg.remote_sdp = request.body
            answer = _with_direction(leg, "sendrecv")
            log.info("resumed from hold", extra={"call": call.id})
        else:  # a hold refreshed while held: the same answer again
            answer = _with_direction(leg, ANSWER_TO.get(direction(sdp.media[0], sdp), "inactive"))
        headers = [
            ("Content-Type", "application/sdp"),
            ("Contact", b2bua.contact(leg.peer.transport)),
        ]
        response = request.make_response(200, headers=headers, body=answer)
        if request.method == "INVITE":
            b2bua.send_2xx(None, leg, txn, response)
        else:
            b2bua.endpoint.respond(txn, response)

    def stop(self, call: Call) -> None:
        current = self.playing.pop(call.id, None)
        if current is not None:
            current[1].stop()


def _with_direction(leg: CallLeg, value: str) -> bytes:
    """The box's last description toward the holder, with ``value`` as its direction."""
    sdp = parse_sdp(leg.sent_sdp)
    for media in sdp.media:
        set_direction(media, value)  # type: ignore[arg-type]
    leg.origin.stamp(sdp)
    return sdp.to_bytes()


def _g711(sdp_bytes: bytes) -> int | None:
    """The G.711 payload type the party receives (first one in the SDP sent to it)."""
    if not sdp_bytes:
        return None
    try:
        sdp = parse_sdp(sdp_bytes)
    except SdpError:
        return None
    if not sdp.media or not sdp.media[0].payload_types:
        return None
    pt = sdp.media[0].payload_types[0]
    return pt if pt in ENCODERS else None


__all__ = ["DEFAULT_MUSIC", "MusicOnHold"]
