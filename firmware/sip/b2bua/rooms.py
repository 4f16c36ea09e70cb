"""Dial-in conference rooms: every caller of a room's number is answered by the box and
joins that room's mix (`firmware.media.conference.Conference`), hearing all the others.

A room exists while someone is in it. Each member's call looks to the rest of the
B2BUA like any answered call with one leg: its media anchor (`MemberAnchor`) is the
member's endpoint in the room, so BYE, session timers, CDRs and teardown need nothing
special. The codec is the caller's first of PCMA, PCMU, G.722 (the mix transcodes).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Hashable

from firmware.media.bridge import BridgeStats
from firmware.media.conference import Conference
from firmware.media.latch import Addr
from firmware.media.relay import FlowStats, RelayStats
from firmware.media.relay import Leg as Side

from ..sdp import SdpError, SessionDescription, media_codecs, parse_sdp

log = logging.getLogger(__name__)

MIXABLE = ("PCMA", "PCMU", "G722")


class RoomError(ValueError):
    """The caller's offer has no codec the conference can mix (488)."""


class MemberAnchor:
    """One member's endpoint in a room, behind the interface the B2BUA uses for media."""

    def __init__(self, rooms: ConferenceRooms, room: str, member: Hashable) -> None:
        self.rooms, self.room, self.member = rooms, room, member
        self.conference = rooms.rooms[room]

    def port(self, leg: Side) -> int:
        return self.conference.port(self.member)

    def set_remote(
        self, leg: Side, host: str | None, port: int, rtcp_port: int | None = None
    ) -> None:
        self.conference.set_remote(self.member, host, port)

    def remote(self, leg: Side) -> Addr | None:
        return self.conference.source(self.member)

    def stats(self) -> RelayStats:
        empty = FlowStats(0, 0, 0, 0, 0, 0)  # nothing relayed: the room terminates media
        quality = self.conference.quality(self.member)
        return BridgeStats(empty, empty, empty, empty, None, None, {"a": quality})

    def close(self) -> None:
        self.rooms.leave(self.room, self.member)


class ConferenceRooms:
    def __init__(self, address: str, ports: object) -> None:
        self.address = address
        self.ports = ports
        self.rooms: dict[str, Conference] = {}
        self._ids = itertools.count(1)

    async def join(
        self, room: str, offer: SessionDescription | None
    ) -> tuple[MemberAnchor, int, str]:
        """Add a member for this offer: (its anchor, the payload type and codec name)."""
        pt, name = _choose(offer)
        conference = self.rooms.get(room)
        if conference is None:
            conference = await Conference.open(self.address, self.ports)  # type: ignore[arg-type]
            self.rooms[room] = conference
            log.info("conference room opened", extra={"room": room})
        member = next(self._ids)
        await conference.add(member, name, payload_type=pt)
        return MemberAnchor(self, room, member), pt, name

    def leave(self, room: str, member: Hashable) -> None:
        conference = self.rooms.get(room)
        if conference is None:
            return
        conference.remove(member)
        if not conference.members:
            del self.rooms[room]
            conference.close()
            log.info("conference room closed", extra={"room": room})

    def size(self, room: str) -> int:
        conference = self.rooms.get(room)
        return len(conference.members) if conference is not None else 0


def _choose(offer: SessionDescription | None) -> tuple[int, str]:
    if offer is None or not offer.media:
        return 8, "PCMA"  # late offer: the box offers PCMA
    for codec in media_codecs(offer.media[0]):
        if codec.name.upper() in MIXABLE and codec.pt is not None:
            return codec.pt, codec.name.upper()
    raise RoomError("no codec the conference can mix (PCMA, PCMU, G.722)")


def answer_sdp(address: str, port: int, pt: int, name: str) -> SessionDescription:
    clock = 8000
    text = (
        f"v=0\r\no=skillepunkt 0 0 IN IP4 {address}\r\ns=-\r\nc=IN IP4 {address}\r\n"
        f"t=0 0\r\nm=audio {port} RTP/AVP {pt}\r\na=rtpmap:{pt} {name}/{clock}\r\n"
        "a=ptime:20\r\na=sendrecv\r\n"
    )
    try:
        return parse_sdp(text.encode())
    except SdpError as exc:  # pragma: no cover - the text above is ours
        raise RoomError(str(exc)) from exc


__all__ = ["ConferenceRooms", "MemberAnchor", "RoomError", "answer_sdp"]
