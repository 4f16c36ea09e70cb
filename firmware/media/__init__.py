"""RTP/RTCP, SRTP, codecs, jitter buffer, players, recorder and mixer.

Call media: `RelaySession` (pass-through anchor, the ordinary call's path) and
`MediaBridge` (the same interface plus per-leg codecs, transcoding, DTMF conversion,
SRTP and playback); `Conference` (N members, each its own codec, mixed every 20 ms).
"""

from firmware.media.bridge import BridgeCore, BridgeError, BridgeStats, LegMedia, MediaBridge
from firmware.media.conference import Conference, ConferenceError
from firmware.media.emodel import Quality, estimate
from firmware.media.jitter import JitterBuffer, JitterStats
from firmware.media.latch import Latch, is_rtcp, is_rtp
from firmware.media.mixer import Mixer, MixerError, Role
from firmware.media.player import (
    AudioLibrary,
    BufferSource,
    FileSource,
    PlayerError,
    PlayerHub,
    Source,
    ToneSource,
    ToneSpec,
)
from firmware.media.ports import PortAllocator, PortsExhaustedError
from firmware.media.recorder import Layout, Recorder, RecorderError, salvage
from firmware.media.relay import FlowStats, Leg, RelayPorts, RelaySession, RelayStats
from firmware.media.rtp import RtpError, RtpPacket, build_rtp, parse_rtp
from firmware.media.sdes import (
    CryptoAttribute,
    CryptoSuite,
    SdesError,
    SrtpPolicy,
    accept_answer,
    answer_offer,
    make_offer,
)
from firmware.media.srtp import SrtpBridge, SrtpError, SrtpSession
from firmware.media.stream import RtpReceiver, RtpSender
from firmware.media.telephone_event import EventReceiver, EventSender, TelephoneEvent
from firmware.media.transcode import TranscodeError, Transcoder
from firmware.media.wav import WavError, load_audio, read_wav, write_wav

__all__ = [
    "AudioLibrary",
    "BridgeCore",
    "BridgeError",
    "BridgeStats",
    "BufferSource",
    "Conference",
    "ConferenceError",
    "CryptoAttribute",
    "CryptoSuite",
    "EventReceiver",
    "EventSender",
    "FileSource",
    "FlowStats",
    "JitterBuffer",
    "JitterStats",
    "Latch",
    "Layout",
    "Leg",
    "LegMedia",
    "MediaBridge",
    "Mixer",
    "MixerError",
    "PlayerError",
    "PlayerHub",
    "PortAllocator",
    "PortsExhaustedError",
    "Quality",
    "Recorder",
    "RecorderError",
    "RelayPorts",
    "RelaySession",
    "RelayStats",
    "Role",
    "RtpError",
    "RtpPacket",
    "RtpReceiver",
    "RtpSender",
    "SdesError",
    "Source",
    "SrtpBridge",
    "SrtpError",
    "SrtpPolicy",
    "SrtpSession",
    "TelephoneEvent",
    "ToneSource",
    "ToneSpec",
    "TranscodeError",
    "Transcoder",
    "WavError",
    "accept_answer",
    "answer_offer",
    "build_rtp",
    "estimate",
    "is_rtcp",
    "is_rtp",
    "load_audio",
    "make_offer",
    "parse_rtp",
    "read_wav",
    "salvage",
    "write_wav",
]
