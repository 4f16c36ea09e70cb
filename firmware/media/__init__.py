"""RTP/RTCP, SRTP, codecs, jitter buffer, players, recorder and mixer."""

from firmware.media.latch import Latch, is_rtcp, is_rtp
from firmware.media.ports import PortAllocator, PortsExhaustedError
from firmware.media.relay import FlowStats, Leg, RelaySession, RelayStats

__all__ = [
    "FlowStats",
    "Latch",
    "Leg",
    "PortAllocator",
    "PortsExhaustedError",
    "RelaySession",
    "RelayStats",
    "is_rtcp",
    "is_rtp",
]
