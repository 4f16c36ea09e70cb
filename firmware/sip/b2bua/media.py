"""Which media path a call takes, and what the box offers and answers for it.

Most calls need nothing but address rewriting: both phones speak G.711 and plain RTP,
and the callee picks from the caller's own codecs. Those go through the pass-through
`RelaySession` (the fast path). A call whose caller offers SRTP (SDES, RFC 4568) goes
through a `MediaBridge` from the start, so the box can terminate SRTP on the caller's
leg. A caller offering only one of PCMA/PCMU (a carrier's PCMA-only trunk, say) starts
on the relay too, with the other law added to the offer to the callee; only if the
callee answers with a codec the caller did not offer does the bridge take the relay's
sockets over (`MediaBridge.adopt`) and transcode. So:

* toward the callee the box offers plain RTP with the caller's codecs, plus whichever
  of PCMA/PCMU was missing (it can transcode between them and G.722);
* toward the caller it answers with the callee's codec when the caller offered it
  (pass-through), else with the caller's first codec the box can transcode, keeping
  telephone-event when the caller offered it (the bridge converts to or from in-band
  DTMF), and with the box's own ``a=crypto`` when the caller's leg is SRTP.

These functions are pure: SDP in, SDP and bridge settings out.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from firmware.media.sdes import SdesDecision, SrtpPolicy, Verdict, answer_offer, format_crypto

from ..sdp import Attribute, Media, SessionDescription, media_codecs

G711 = {"PCMA": 8, "PCMU": 0}
TRANSCODABLE = ("PCMA", "PCMU", "G722")


class MediaRefused(ValueError):
    """The caller's media cannot be served (488): ``reason`` says why."""


@dataclass(frozen=True)
class LegSettings:
    """What one leg negotiated, for `MediaBridge.configure`."""

    codec: str
    payload_type: int
    ptime: int
    event_pt: int | None


@dataclass
class MediaPlan:
    bridge: bool = False  # a MediaBridge from the start (SRTP on the caller's leg)
    srtp: SdesDecision | None = None  # the decision for the caller's offer
    offered: list[str] | None = None  # the caller's codec names, in its order
    widen: bool = False  # the callee is offered the G.711 law the caller lacks

    @property
    def shapes_sdp(self) -> bool:
        """Whether the box edits the offer to the callee and its answer to the caller."""
        return self.bridge or self.widen

    @property
    def secure(self) -> bool:
        return self.srtp is not None and self.srtp.verdict is Verdict.SRTP


def plan_for_offer(sdp: SessionDescription | None, policy: SrtpPolicy) -> MediaPlan:
    """The plan for a caller's offer (None: a late offer, which takes the relay)."""
    if sdp is None or not sdp.media:
        return MediaPlan()
    media = sdp.media[0]
    crypto = media.values("crypto")
    decision = answer_offer(policy, media.proto, crypto) if crypto else _plain(policy, media.proto)
    if decision.verdict is Verdict.REFUSE:
        raise MediaRefused(decision.reason)
    names = [c.name.upper() for c in media_codecs(media)]
    bridge = decision.verdict is Verdict.SRTP
    return MediaPlan(bridge, decision, names, widen=not bridge and not set(G711) <= set(names))


@functools.lru_cache(maxsize=64)
def _plain(policy: SrtpPolicy, proto: str) -> SdesDecision:
    """`answer_offer` for an offer without ``a=crypto``: it depends on nothing else, and
    nearly every call is one (the decision is immutable, so calls share it)."""
    return answer_offer(policy, proto, ())


def offer_to_callee(plan: MediaPlan, sdp: SessionDescription) -> None:
    """In place: plain RTP toward the callee, with both G.711 laws offered."""
    if not plan.shapes_sdp or not sdp.media:
        return
    media = sdp.media[0]
    media.remove("crypto")
    media.proto = "RTP/AVP"
    present = {c.name.upper() for c in media_codecs(media)}
    for name, pt in G711.items():
        if name not in present and str(pt) not in media.formats:
            _insert_codec(media, pt, name)


def answer_to_caller(
    plan: MediaPlan, caller_offer: SessionDescription, answer: SessionDescription
) -> tuple[LegSettings, LegSettings]:
    """In place: turn the callee's (anchored) answer into the box's answer to the caller.
    Returns the caller's and the callee's leg settings."""
    callee = _settings(answer.media[0])
    offered = caller_offer.media[0]
    media = answer.media[0]
    # the callee's codec if the caller offered it, else the first the box transcodes
    match = transcodable = None
    events = None
    for codec in media_codecs(offered):
        name = codec.name.upper()
        if codec.pt is not None:
            if match is None and name == callee.codec:
                match = codec
            elif transcodable is None and name in TRANSCODABLE:
                transcodable = codec
        if events is None and codec.name.lower() == "telephone-event":
            events = codec.pt
    match = match or transcodable
    if match is None:
        raise MediaRefused("no codec of the caller's the box can transcode to")
    assert match.pt is not None
    media.formats = [str(match.pt)] + ([str(events)] if events is not None else [])
    media.remove("rtpmap", "fmtp")
    for attribute in _codec_lines(offered, match.pt) + (
        _codec_lines(offered, events) if events is not None else []
    ):
        media.attributes.insert(0, attribute)
    if plan.srtp is not None:
        media.proto = plan.srtp.proto
        media.remove("crypto")
        if plan.srtp.local is not None:
            media.attributes.append(Attribute("crypto", format_crypto(plan.srtp.local)))
    caller = _leg(match.name.upper(), match.pt, offered.ptime or 20, events)
    return caller, callee


def _settings(media: Media) -> LegSettings:
    first = events = None
    for codec in media_codecs(media):
        if codec.name.lower() != "telephone-event":
            first = first or codec
        elif events is None:
            events = codec.pt
    if first is None or first.pt is None:
        raise MediaRefused("the answer names no codec")
    return _leg(first.name.upper(), first.pt, media.ptime or 20, events)


@functools.lru_cache(maxsize=256)
def _leg(codec: str, payload_type: int, ptime: int, event_pt: int | None) -> LegSettings:
    """Cached: calls bring the same few settings (immutable), and a frozen dataclass is
    slow to build."""
    return LegSettings(codec, payload_type, ptime, event_pt)


def _codec_lines(media: Media, pt: int) -> list[Attribute]:
    return [
        a
        for a in media.attributes
        if a.name in ("rtpmap", "fmtp") and (a.value or "").split(" ", 1)[0] == str(pt)
    ]


def _insert_codec(media: Media, pt: int, name: str) -> None:
    media.formats.append(str(pt))
    media.attributes.insert(0, Attribute("rtpmap", f"{pt} {name}/8000"))


__all__ = [
    "LegSettings",
    "MediaPlan",
    "MediaRefused",
    "SrtpPolicy",
    "answer_to_caller",
    "offer_to_callee",
    "plan_for_offer",
]
