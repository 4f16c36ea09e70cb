"""SDP test data: offers in the shape real user agents send them.

Written for these tests after the style of each stack (pjsua, linphone, baresip, SIPp,
desk phones, a WebRTC gateway, a T.38 gateway); the addresses are documentation ranges.
A test asking for ``sample_name`` runs once per sample; ``samples`` gives the bytes.
"""

from __future__ import annotations

import pytest


def _crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


PJSUA = _crlf(
    """v=0
o=- 3915372467 3915372467 IN IP4 192.168.1.20
s=pjmedia
b=AS:84
t=0 0
a=X-nat:0
m=audio 4000 RTP/AVP 96 97 98 99 3 0 8 9 120 121 122
c=IN IP4 192.168.1.20
b=TIAS:64000
a=rtcp:4001 IN IP4 192.168.1.20
a=sendrecv
a=rtpmap:96 speex/16000
a=rtpmap:97 speex/8000
a=rtpmap:98 speex/32000
a=rtpmap:99 iLBC/8000
a=fmtp:99 mode=30
a=rtpmap:3 GSM/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:9 G722/8000
a=rtpmap:120 telephone-event/16000
a=fmtp:120 0-16
a=rtpmap:121 telephone-event/8000
a=fmtp:121 0-16
a=rtpmap:122 telephone-event/32000
a=fmtp:122 0-16
a=ssrc:1209871456 cname:7c2a1b2d3e4f5a6b
"""
)

LINPHONE = _crlf(
    """v=0
o=alice 1234 5678 IN IP4 192.168.1.30
s=Talk
c=IN IP4 192.168.1.30
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
a=record:off
m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 speex/16000
a=fmtp:97 vbr=on
a=rtpmap:98 speex/8000
a=fmtp:98 vbr=on
a=fmtp:18 annexb=yes
a=rtpmap:101 telephone-event/48000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:* ccm tmmbr
m=video 9078 RTP/AVP 96 97
a=rtpmap:96 VP8/90000
a=rtpmap:97 H264/90000
a=fmtp:97 profile-level-id=42801F
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:96 nack pli
a=rtcp-fb:97 nack pli
"""
)

BARESIP = _crlf(
    """v=0
o=- 1830376342 3290938542 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 10218 RTP/AVP 0 8 101
b=AS:64
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=label:1
a=ssrc:2964011203 cname:0a2f7c1e-5d34-4c2b-9e11-6a4b3c2d1e0f
a=rtcp-rsize
a=ptime:20
"""
)

# SIPp's built-in uac scenario writes LF-only bodies with a single static codec.
SIPP_UAC = b"""v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""

# A desk phone offering SRTP (SDES), media-level c=, G.722 first.
DESK_PHONE_SRTP = _crlf(
    """v=0
o=- 20518 0 IN IP4 10.0.0.55
s=SDP data
c=IN IP4 10.0.0.55
t=0 0
m=audio 11780 RTP/SAVP 9 8 0 18 101
c=IN IP4 10.0.0.55
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:YUJDZGVmZ2hpSktMbW9QUXJzVFVWd3l6MDEyMzQ1|2^31|1:1
a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIz|2^31|1:1
a=rtpmap:9 G722/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendrecv
"""
)

# A WebRTC gateway's offer: ICE, DTLS fingerprint, rtcp-mux.
WEBRTC = _crlf(
    """v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=msid-semantic: WMS
a=ice-options:trickle
m=audio 50212 UDP/TLS/RTP/SAVPF 111 0 8 126
c=IN IP4 203.0.113.7
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:842163049 1 udp 1677729535 203.0.113.7 50212 typ srflx raddr 192.168.5.9 rport 50212 generation 0
a=candidate:3145770813 1 udp 2122260223 192.168.5.9 50212 typ host generation 0
a=ice-ufrag:8hhY
a=ice-pwd:asd88fgpdd777uzjYhagZg
a=fingerprint:sha-256 19:E2:1C:3B:4B:9F:81:E6:B8:5C:F4:A5:A8:D8:73:04:BB:05:2F:70:9F:04:A9:0E:05:E9:26:33:E8:70:88:A2
a=setup:actpass
a=mid:0
a=sendrecv
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:126 telephone-event/8000
a=ssrc:3570614608 cname:4TOk42mSjXCkVIa6
"""
)

# A gateway re-INVITE switching to T.38 (no RTP in m=image).
T38 = _crlf(
    """v=0
o=gw 1000 1001 IN IP4 198.51.100.20
s=session
c=IN IP4 198.51.100.20
t=0 0
m=image 5006 udptl t38
a=T38FaxVersion:0
a=T38MaxBitRate:14400
a=T38FaxRateManagement:transferredTCF
a=T38FaxMaxBuffer:262
a=T38FaxMaxDatagram:176
a=T38FaxUdpEC:t38UDPRedundancy
"""
)

# An old (RFC 2543 era) phone putting the call on hold, with trailing blanks.
OLD_HOLD = (
    b"v=0\r\no=Cisco-SIPUA 1655 1656 IN IP4 192.168.1.77\r\ns=SIP Call\r\n"
    b"c=IN IP4 0.0.0.0 \r\nt=0 0\r\nm=audio 28118 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\n\r\n"
)

# A trunk answer rejecting video (port 0) and accepting audio sendonly (hold answer).
TRUNK_ANSWER = _crlf(
    """v=0
o=MxSIP 0 1 IN IP4 198.51.100.1
s=SIP Call
c=IN IP4 198.51.100.2
t=0 0
m=audio 30000 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=maxptime:40
a=recvonly
m=video 0 RTP/AVP 96
"""
)

SAMPLES: dict[str, bytes] = {
    "pjsua": PJSUA,
    "linphone": LINPHONE,
    "baresip": BARESIP,
    "sipp_uac": SIPP_UAC,
    "desk_phone_srtp": DESK_PHONE_SRTP,
    "webrtc": WEBRTC,
    "t38": T38,
    "old_hold": OLD_HOLD,
    "trunk_answer": TRUNK_ANSWER,
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sample_name" in metafunc.fixturenames:
        metafunc.parametrize("sample_name", list(SAMPLES))


@pytest.fixture(scope="session")
def samples() -> dict[str, bytes]:
    return SAMPLES
