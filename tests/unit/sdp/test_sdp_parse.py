"""SDP parsing and serialization: real-world offers, round trips, and bad input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.sip.sdp import (
    _COMMON_ATTRIBUTES,
    _TOKEN_RE,
    MAX_ATTRIBUTES,
    MAX_FORMATS,
    MAX_LINES,
    MAX_MEDIA,
    MAX_SDP_SIZE,
    Attribute,
    Bandwidth,
    Connection,
    Media,
    Origin,
    RtcpAddress,
    RtpMap,
    SdpError,
    SessionDescription,
    parse_sdp,
)

from .conftest import SAMPLES


def test_every_sample_parses_and_round_trips(sample_name: str, samples: dict[str, bytes]) -> None:
    sdp = parse_sdp(samples[sample_name])
    text = sdp.to_bytes()
    assert text.endswith(b"\r\n") and b"\n" not in text.replace(b"\r\n", b"")
    again = parse_sdp(text)
    assert again == sdp
    assert again.to_bytes() == text


@pytest.mark.parametrize("name", ["pjsua", "linphone", "baresip", "desk_phone_srtp", "t38"])
def test_canonical_samples_serialize_byte_exact(name: str) -> None:
    assert parse_sdp(SAMPLES[name]).to_bytes() == SAMPLES[name]


def test_pjsua_details() -> None:
    sdp = parse_sdp(SAMPLES["pjsua"])
    assert sdp.origin == Origin("-", "3915372467", 3915372467, "192.168.1.20")
    assert sdp.name == "pjmedia"
    assert sdp.bandwidths == [Bandwidth("AS", 84)]
    assert sdp.connection is None
    assert sdp.attributes == [Attribute("X-nat", "0")]
    (audio,) = sdp.media
    assert (audio.kind, audio.port, audio.proto) == ("audio", 4000, "RTP/AVP")
    assert audio.payload_types == [96, 97, 98, 99, 3, 0, 8, 9, 120, 121, 122]
    assert audio.connection == Connection("192.168.1.20")
    assert audio.rtcp == RtcpAddress(4001, "192.168.1.20", "IP4")
    assert audio.rtpmaps()[121] == RtpMap(121, "telephone-event", 8000)
    assert audio.fmtp(99) == "mode=30"
    assert audio.fmtp("120") == "0-16"
    assert audio.fmtp(0) is None
    # Unknown attributes stay where they were.
    assert audio.attributes[-1] == Attribute("ssrc", "1209871456 cname:7c2a1b2d3e4f5a6b")


def test_linphone_two_streams_and_channels() -> None:
    sdp = parse_sdp(SAMPLES["linphone"])
    audio, video = sdp.media
    assert audio.rtpmaps()[96] == RtpMap(96, "opus", 48000, 2)
    assert audio.fmtp(18) == "annexb=yes"
    assert video.kind == "video" and video.port == 9078
    assert video.values("rtcp-fb") == ["* trr-int 1000", "96 nack pli", "97 nack pli"]
    assert sdp.values("record") == ["off"]


def test_baresip_ptime_and_flags() -> None:
    (audio,) = parse_sdp(SAMPLES["baresip"]).media
    assert audio.ptime == 20
    assert audio.has("rtcp-rsize") and audio.value("rtcp-rsize") is None
    assert audio.bandwidths == [Bandwidth("AS", 64)]


def test_sipp_lf_only() -> None:
    sdp = parse_sdp(SAMPLES["sipp_uac"])
    assert sdp.origin.session_version == 2353687637
    assert sdp.media[0].formats == ["0"]
    assert b"\r\n" in sdp.to_bytes()


def test_srtp_and_t38_are_kept_as_they_are() -> None:
    (audio,) = parse_sdp(SAMPLES["desk_phone_srtp"]).media
    assert audio.proto == "RTP/SAVP"
    assert len(audio.values("crypto")) == 2
    (image,) = parse_sdp(SAMPLES["t38"]).media
    assert (image.kind, image.proto, image.formats, image.is_rtp) == (
        "image",
        "udptl",
        ["t38"],
        False,
    )
    assert image.payload_types == []
    assert image.value("T38FaxMaxDatagram") == "176"


def test_old_hold_sample_with_trailing_blanks() -> None:
    sdp = parse_sdp(SAMPLES["old_hold"])
    assert sdp.connection is not None and sdp.connection.is_null


def test_str_input_and_defaults() -> None:
    sdp = parse_sdp("v=0\no=- 1 1 IN IP6 ::1\nc=IN IP6 ::1\nm=audio 5000 RTP/AVP 8\n")
    assert sdp.name == "-" and len(sdp.times) == 1  # missing s= and t= are tolerated
    assert str(sdp).splitlines()[:5] == [
        "v=0",
        "o=- 1 1 IN IP6 ::1",
        "s=-",
        "c=IN IP6 ::1",
        "t=0 0",
    ]


def test_serializer_writes_rfc_order() -> None:
    sdp = SessionDescription(origin=Origin("-", "7", 1, "192.0.2.1"), name="call")
    sdp.attributes.append(Attribute("tool", "x"))
    sdp.key = "prompt"
    sdp.zone = "2882844526 -1h"
    sdp.times[0].repeats.append("604800 3600 0 90000")
    sdp.bandwidths.append(Bandwidth("CT", 128))
    sdp.connection = Connection("192.0.2.1")
    sdp.phones.append("+45 11 22 33 44")
    sdp.emails.append("ops@example.com")
    sdp.uri = "http://example.com/"
    sdp.info = "info"
    media = Media("audio", 5000, "RTP/AVP", ["8"], title="voice", key="prompt")
    media.attributes.append(Attribute("sendrecv"))
    media.bandwidths.append(Bandwidth("AS", 80))
    media.connection = Connection("192.0.2.2")
    sdp.media.append(media)
    letters = [line[0] for line in str(sdp).split("\r\n") if line]
    assert "".join(letters) == "vosiuepcbtrzkamicbka"
    assert parse_sdp(str(sdp)) == sdp


def test_sloppy_blanks_parse_like_single_ones() -> None:
    """The parser reads the usual single-blank lines with one expression each and
    anything else field by field: both ways must give the same description."""
    tidy = (
        "v=0\r\no=- 7 3 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=5 6\r\n"
        "m=audio 5000 RTP/AVP 0 8 101\r\nc=IN IP4 192.0.2.2\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
    )
    sloppy = (
        "v=0\r\no=-  7\t3 IN  IP4 192.0.2.1\r\ns=-\r\nc=IN\tIP4  192.0.2.1\r\nt=5  6\r\n"
        "m=audio  5000 RTP/AVP\t0 8  101\r\nc=IN IP4\t192.0.2.2\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
    )
    assert parse_sdp(sloppy) == parse_sdp(tidy)
    assert str(parse_sdp(sloppy)) == tidy


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        # leading zeros and non-RTP numbers take the field-by-field path
        ("m=audio 05000 RTP/AVP 000 8", (5000, ["000", "8"])),
        ("m=image 5000 udptl t38", (5000, ["t38"])),
        ("m=application 5000 UDP 300", (5000, ["300"])),
        ("m=audio 65535 RTP/AVP 127", (65535, ["127"])),
    ],
)
def test_media_line_variants(line: str, parsed: tuple[int, list[str]]) -> None:
    sdp = parse_sdp(HEAD + line + "\r\n")
    assert (sdp.media[0].port, sdp.media[0].formats) == parsed


@pytest.mark.parametrize(
    "line",
    [
        "m=audio 65536 RTP/AVP 0",
        "m=audio 5000 RTP/AVP 128",
        "m=audio 5000 RTP/AVP 0 1000",
        "o=- 1 1 IN IP4 a\u00e9b",
        "c=IN IP4 a\u00e9b",
        "c=I(N IP4 192.0.2.1",
    ],
)
def test_bad_fields_in_otherwise_tidy_lines(line: str) -> None:
    body = "v=0\r\n" if line.startswith("o=") else HEAD
    with pytest.raises(SdpError) as info:
        parse_sdp(body + line + "\r\n")
    assert not info.value.internal


def test_common_attribute_names_are_tokens() -> None:
    assert all(_TOKEN_RE.fullmatch(name) for name in _COMMON_ATTRIBUTES)


def test_multicast_connection_and_port_count_round_trip() -> None:
    text = (
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=x\r\nc=IN IP4 233.252.0.1/127\r\nt=0 0\r\n"
        "m=audio 49170/2 RTP/AVP 0\r\n"
    )
    sdp = parse_sdp(text)
    assert sdp.connection is not None and sdp.connection.host == "233.252.0.1"
    assert sdp.media[0].port_count == 2
    assert str(sdp) == text


HEAD = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
AUDIO = "m=audio 5000 RTP/AVP 0\r\n"

MALFORMED: dict[str, str | bytes] = {
    "empty": "",
    "blank": "\r\n\r\n",
    "no v": "o=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n",
    "v=1": "v=1\r\no=- 1 1 IN IP4 192.0.2.1\r\n",
    "two v": HEAD + "v=0\r\n",
    "no o": "v=0\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n",
    "two o": HEAD + "o=- 1 1 IN IP4 192.0.2.1\r\n",
    "short o": "v=0\r\no=- 1 IN IP4 192.0.2.1\r\n",
    "o version text": "v=0\r\no=- 1 x IN IP4 192.0.2.1\r\n",
    "o version huge": "v=0\r\no=- 1 123456789012345678901 IN IP4 192.0.2.1\r\n",
    "space before =": HEAD + "a =sendrecv\r\n",
    "upper type": HEAD + "A=sendrecv\r\n",
    "unknown type": HEAD + "x=1\r\n",
    "no equals": HEAD + "garbage\r\n",
    "bare CR": HEAD.replace("\r\ns=", "\rs="),
    "NUL": HEAD + "a=tool:a\x00b\r\n",
    "escape char": HEAD + "a=tool:\x1b[2J\r\n",
    "bad utf8": (HEAD + "s=").encode() + b"\xff\xfe\r\n",
    "c two fields": "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4\r\n",
    "c bad address": "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4 a\u00e9b\r\n",
    "two session c": HEAD + "c=IN IP4 192.0.2.9\r\n",
    "b no colon": HEAD + "b=AS64\r\n",
    "b text": HEAD + "b=AS:lots\r\n",
    "t one field": HEAD + "t=0\r\n",
    "r before t": "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nr=7d 1h 0 25h\r\n",
    "m short": HEAD + "m=audio 5000\r\n",
    "m port text": HEAD + "m=audio five RTP/AVP 0\r\n",
    "m port big": HEAD + "m=audio 70000 RTP/AVP 0\r\n",
    "m port count text": HEAD + "m=audio 5000/x RTP/AVP 0\r\n",
    "m no formats": HEAD + "m=audio 5000 RTP/AVP\r\n",
    "m pt 128": HEAD + "m=audio 5000 RTP/AVP 128\r\n",
    "m pt text": HEAD + "m=audio 5000 RTP/AVP PCMU\r\n",
    "m bad proto": HEAD + "m=audio 5000 RTP//AVP 0\r\n",
    "m bad media": HEAD + "m=au(dio 5000 RTP/AVP 0\r\n",
    "o in media": HEAD + AUDIO + "o=- 1 1 IN IP4 192.0.2.1\r\n",
    "t in media": HEAD + AUDIO + "t=0 0\r\n",
    "two media c": HEAD + AUDIO + "c=IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.2\r\n",
    "two media i": HEAD + AUDIO + "i=a\r\ni=b\r\n",
    "no c for media": "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n" + AUDIO,
    "attr bad name": HEAD + AUDIO + "a=rtp map:0 PCMU/8000\r\n",
    "attr empty name": HEAD + AUDIO + "a=:x\r\n",
    "rtpmap no value": HEAD + AUDIO + "a=rtpmap\r\n",
    "rtpmap no rate": HEAD + AUDIO + "a=rtpmap:0 PCMU\r\n",
    "rtpmap pt 300": HEAD + AUDIO + "a=rtpmap:300 PCMU/8000\r\n",
    "rtpmap rate text": HEAD + AUDIO + "a=rtpmap:0 PCMU/fast\r\n",
    "fmtp empty": HEAD + AUDIO + "a=fmtp:\r\n",
    "ptime text": HEAD + AUDIO + "a=ptime:twenty\r\n",
    "rtcp port big": HEAD + AUDIO + "a=rtcp:70000\r\n",
    "rtcp junk": HEAD + AUDIO + "a=rtcp:5001 IN\r\n",
    "crypto short": HEAD + AUDIO + "a=crypto:1 AES_CM_128_HMAC_SHA1_80\r\n",
    "too big": HEAD + "a=x:" + "y" * MAX_SDP_SIZE + "\r\n",
    "too big bytes": (HEAD + "a=x:" + "y" * MAX_SDP_SIZE + "\r\n").encode(),
    "line too long": HEAD + "a=x:" + "y" * 5000 + "\r\n",
    "too many lines": HEAD + "a=x\r\n" * MAX_LINES,
    "too many attributes": HEAD + "a=x\r\n" * (MAX_ATTRIBUTES + 1),
    "too many media": HEAD + AUDIO * (MAX_MEDIA + 1),
    "too many formats": HEAD
    + "m=audio 5000 RTP/AVP "
    + " ".join(str(i) for i in range(MAX_FORMATS + 1))
    + "\r\n",
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_raises_sdp_error(name: str) -> None:
    with pytest.raises(SdpError) as info:
        parse_sdp(MALFORMED[name])
    assert not info.value.internal
    assert isinstance(info.value, ValueError)


def test_error_names_the_line() -> None:
    with pytest.raises(SdpError) as info:
        parse_sdp(HEAD + AUDIO + "a=rtpmap:0 PCMU\r\n")
    assert info.value.line == 7 and str(info.value).startswith("line 7:")


def test_rejected_stream_may_have_no_formats() -> None:
    sdp = parse_sdp(HEAD + "m=video 0 RTP/AVP\r\n")
    assert sdp.media[0].formats == [] and sdp.media[0].port == 0


def _mutations() -> st.SearchStrategy[bytes]:
    """Valid samples cut, spliced and bit-flipped: close enough to SDP to get deep."""
    sample = st.sampled_from(list(SAMPLES.values()))

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(sample))
        for _ in range(draw(st.integers(1, 6))):
            op = draw(st.integers(0, 3))
            pos = draw(st.integers(0, max(0, len(data) - 1)))
            if op == 0 and data:
                data[pos] = draw(st.integers(0, 255))
            elif op == 1:
                end = draw(st.integers(pos, min(len(data), pos + 40)))
                del data[pos:end]
            elif op == 2:
                data[pos:pos] = draw(st.binary(max_size=12))
            else:
                chunk = draw(st.sampled_from([b"\r\n", b"\n", b"=", b" ", b":", b"/", b"m="]))
                data[pos:pos] = chunk
        return bytes(data)

    return mutate()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_mutated_input_gives_sdp_error_or_a_stable_parse(data: bytes) -> None:
    try:
        sdp = parse_sdp(data)
    except SdpError as exc:
        assert not exc.internal, exc
        return
    again = parse_sdp(sdp.to_bytes())
    assert again == sdp


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_random_input_gives_sdp_error_or_a_parse(data: bytes | str) -> None:
    try:
        parse_sdp(data)
    except SdpError as exc:
        assert not exc.internal, exc
