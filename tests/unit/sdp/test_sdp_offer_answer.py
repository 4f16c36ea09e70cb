"""Offer/answer helpers for the anchoring B2BUA: rewrite, hold, o= versions, codecs."""

from __future__ import annotations

import copy as stdlib_copy

import pytest

from firmware.sip.sdp import (
    ICE_ATTRIBUTES,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Attribute,
    Bandwidth,
    Codec,
    OriginManager,
    direction,
    held,
    intersect_codecs,
    is_hold,
    media_codecs,
    parse_sdp,
    restrict_codecs,
    resumed,
    rewrite_for_anchor,
    rtcp_address,
    rtp_address,
    sdp_changed,
    set_direction,
)

from .conftest import SAMPLES

BOX = "203.0.113.1"


def test_rewrite_replaces_addresses_and_ports_only() -> None:
    offer = parse_sdp(SAMPLES["pjsua"])
    out = rewrite_for_anchor(offer, BOX, [20000])
    assert out.connection is not None and out.connection.address == BOX
    (audio,) = out.media
    assert audio.port == 20000
    assert audio.connection is not None and audio.connection.address == BOX
    assert audio.value("rtcp") == f"20001 IN IP4 {BOX}"
    assert out.origin.address == BOX
    assert out.origin.session_version == offer.origin.session_version
    # Codecs, fmtp, direction and unknown attributes are untouched and in order.
    assert audio.formats == offer.media[0].formats
    assert [a.name for a in audio.attributes] == [a.name for a in offer.media[0].attributes]
    assert direction(audio) == "sendrecv"
    # The original is not modified.
    assert offer.media[0].port == 4000 and offer.origin.address == "192.168.1.20"
    assert rtp_address(out, 0) == (BOX, 20000)
    assert rtcp_address(out, 0) == (BOX, 20001)


def test_rewrite_keeps_crypto_for_the_srtp_policy() -> None:
    offer = parse_sdp(SAMPLES["desk_phone_srtp"])
    out = rewrite_for_anchor(offer, BOX, [20002])
    assert out.media[0].values("crypto") == offer.media[0].values("crypto")
    assert out.media[0].proto == "RTP/SAVP"


def test_rewrite_strips_ice_but_keeps_the_rest() -> None:
    offer = parse_sdp(SAMPLES["webrtc"])
    out = rewrite_for_anchor(offer, BOX, [20004])
    names = {a.name for a in out.media[0].attributes} | {a.name for a in out.attributes}
    assert not names & ICE_ATTRIBUTES
    assert {"fingerprint", "setup", "mid", "rtcp-mux", "group"} <= names
    assert out.media[0].value("rtcp") == f"20005 IN IP4 {BOX}"
    kept = rewrite_for_anchor(offer, BOX, [20004], strip_ice=False)
    assert kept.media[0].has("candidate")


def test_rewrite_rejected_stream_stays_rejected() -> None:
    answer = parse_sdp(SAMPLES["trunk_answer"])
    out = rewrite_for_anchor(answer, BOX, [20006, 20008])
    assert [m.port for m in out.media] == [20006, 0]
    assert rtp_address(out, 1) is None


def test_rewrite_turns_null_address_hold_into_direction() -> None:
    offer = parse_sdp(SAMPLES["old_hold"])
    assert is_hold(offer, offer.media[0])
    assert rtp_address(offer, 0) is None
    out = rewrite_for_anchor(offer, BOX, [20010])
    assert out.connection is not None and not out.connection.is_null
    assert direction(out.media[0], out) == "sendonly"
    assert is_hold(out, out.media[0])


def test_rewrite_ipv6_and_argument_checks() -> None:
    offer = parse_sdp(SAMPLES["baresip"])
    out = rewrite_for_anchor(offer, "2001:db8::1", [20012])
    assert str(out.connection) == "IN IP6 2001:db8::1"
    assert out.origin.addrtype == "IP6"
    with pytest.raises(ValueError, match="ports"):
        rewrite_for_anchor(offer, BOX, [])
    with pytest.raises(ValueError, match="IP address"):
        rewrite_for_anchor(offer, "box.example.com", [20012])
    with pytest.raises(ValueError, match="port"):
        rewrite_for_anchor(offer, BOX, [70000])


def test_rewritten_sdp_round_trips() -> None:
    for name, data in SAMPLES.items():
        offer = parse_sdp(data)
        out = rewrite_for_anchor(offer, BOX, [20100 + 2 * i for i in range(len(offer.media))])
        assert parse_sdp(out.to_bytes()) == out, name


def test_direction_rules() -> None:
    sdp = parse_sdp(SAMPLES["sipp_uac"])
    media = sdp.media[0]
    assert direction(media, sdp) == "sendrecv"
    sdp.set("inactive")
    assert direction(media, sdp) == "inactive"  # session level applies...
    set_direction(media, "recvonly")
    assert direction(media, sdp) == "recvonly"  # ...unless the media says otherwise
    media.attributes.append(media.attributes[-1])
    set_direction(media, "sendonly")
    assert [a.name for a in media.attributes].count("sendonly") == 1
    assert [a.name for a in media.attributes] == ["rtpmap", "sendonly"]
    with pytest.raises(ValueError):
        set_direction(media, "both")  # type: ignore[arg-type]


def test_hold_and_resume_directions() -> None:
    assert [held(d) for d in ("sendrecv", "recvonly", "sendonly", "inactive")] == [
        "sendonly",
        "inactive",
        "sendonly",
        "inactive",
    ]
    assert [resumed(d) for d in ("sendonly", "inactive", "sendrecv", "recvonly")] == [
        "sendrecv",
        "recvonly",
        "sendrecv",
        "recvonly",
    ]
    sdp = parse_sdp(SAMPLES["baresip"])
    assert not is_hold(sdp, sdp.media[0])
    set_direction(sdp.media[0], held(direction(sdp.media[0])))
    assert is_hold(sdp, sdp.media[0])
    answer = parse_sdp(SAMPLES["trunk_answer"])
    assert not is_hold(answer, answer.media[0])  # recvonly: it still wants media


def test_origin_version_moves_only_when_the_sdp_changes() -> None:
    origin = OriginManager(BOX, session_id=123456)
    offer = parse_sdp(SAMPLES["baresip"])
    first = origin.stamp(rewrite_for_anchor(offer, BOX, [20000]))
    assert str(first.origin) == f"skillepunkt 123456 1 IN IP4 {BOX}"
    # Re-sending the same description (refresh, retransmission) keeps the version.
    assert origin.stamp(rewrite_for_anchor(offer, BOX, [20000])).origin.session_version == 1
    # The peer's own o= version changing does not matter; content does.
    offer.origin.session_version += 5
    assert origin.stamp(rewrite_for_anchor(offer, BOX, [20000])).origin.session_version == 1
    set_direction(offer.media[0], "sendonly")
    held_out = origin.stamp(rewrite_for_anchor(offer, BOX, [20000]))
    assert held_out.origin.session_version == 2
    assert held_out.origin.session_id == "123456"
    set_direction(offer.media[0], "sendrecv")
    assert origin.stamp(rewrite_for_anchor(offer, BOX, [20000])).origin.session_version == 3


def test_origin_random_session_ids_differ() -> None:
    assert OriginManager(BOX).session_id != OriginManager(BOX).session_id


def test_sdp_changed() -> None:
    old = parse_sdp(SAMPLES["baresip"])
    same = parse_sdp(SAMPLES["baresip"])
    same.origin.session_version += 1
    assert sdp_changed(None, old)
    assert not sdp_changed(old, same)
    moved = same.copy()
    moved.media[0].port = 10220
    assert sdp_changed(old, moved)


def test_media_codecs_static_and_dynamic() -> None:
    sdp = parse_sdp(SAMPLES["linphone"])
    codecs = media_codecs(sdp.media[0])
    assert [(c.name, c.pt) for c in codecs][:6] == [
        ("opus", 96),
        ("speex", 97),
        ("speex", 98),
        ("PCMU", 0),
        ("PCMA", 8),
        ("G729", 18),
    ]
    assert codecs[0].channels == 2 and codecs[0].fmtp == "useinbandfec=1"
    assert codecs[5].fmtp == "annexb=yes"
    unknown = parse_sdp(SAMPLES["sipp_uac"])
    unknown.media[0].formats.append("97")  # dynamic type without rtpmap: skipped
    assert [c.pt for c in media_codecs(unknown.media[0])] == [0]


def test_intersect_codecs_matches_by_name_rate_and_channels() -> None:
    offer = parse_sdp(SAMPLES["pjsua"])
    common = intersect_codecs(offer.media[0], [PCMA, PCMU, TELEPHONE_EVENT])
    # Offerer's order and numbers; the 16 and 32 kHz telephone-events do not match.
    assert [(c.name, c.pt) for c in common] == [
        ("PCMU", 0),
        ("PCMA", 8),
        ("telephone-event", 121),
    ]
    assert common[2].fmtp == "0-16"
    assert intersect_codecs(offer.media[0], [Codec("pcma", 8000)])[0].pt == 8
    assert intersect_codecs(offer.media[0], [Codec("opus", 48000, 2)]) == []


def test_restrict_codecs_drops_formats_and_their_attributes() -> None:
    offer = parse_sdp(SAMPLES["pjsua"])
    media = offer.media[0]
    restrict_codecs(media, intersect_codecs(media, [PCMA, TELEPHONE_EVENT]))
    assert media.formats == ["8", "121"]
    assert media.values("rtpmap") == ["8 PCMA/8000", "121 telephone-event/8000"]
    assert media.values("fmtp") == ["121 0-16"]
    assert media.has("rtcp") and media.has("ssrc")
    assert parse_sdp(offer.to_bytes()) == offer
    restrict_codecs(media, [8])
    assert media.formats == ["8"] and media.values("fmtp") == []


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_copy_is_deep_and_equal(name: str) -> None:
    original = parse_sdp(SAMPLES[name])
    before = str(original)
    dup = original.copy()
    assert dup == stdlib_copy.deepcopy(original)  # the hand-written copy misses no field
    assert str(dup) == before
    # every mutable part is new: editing the copy leaves the original alone
    dup.origin.session_version += 1
    dup.times[0].repeats.append("604800 3600 0 90000")
    dup.attributes.append(Attribute("x-test"))
    dup.bandwidths.append(Bandwidth("CT", 1))
    for media in dup.media:
        media.port += 2
        media.bandwidths.append(Bandwidth("AS", 1))
        media.formats.append("101")
        media.attributes.clear()
        if media.connection is not None:
            media.connection.address = "192.0.2.99"
    if dup.connection is not None:
        dup.connection.address = "192.0.2.98"
    assert str(original) == before


def test_remove_drops_every_named_line_in_place() -> None:
    media = parse_sdp(SAMPLES["pjsua"]).media[0]
    attributes = media.attributes
    count, rtpmaps = len(attributes), len(media.values("rtpmap"))
    assert rtpmaps > 1
    assert media.remove("rtpmap", "x-none") == rtpmaps
    assert media.attributes is attributes and len(attributes) == count - rtpmaps
    assert not media.values("rtpmap") and media.remove("rtpmap") == 0
    assert media.attributes is attributes and len(attributes) == count - rtpmaps
