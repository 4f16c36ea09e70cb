"""Analog channel state machines (FXS and FXO), sans-I/O with an injected clock.

A channel takes line events (hook, ring, polarity, loop current, audio frames) and SIP
progress (ringing, answered, failed, hung up) in, and hands actions out
(``take_actions()``): tones to play, ringing, caller ID, calls to place or answer or
clear, media to connect. The analog gateway (``firmware.core.analog_gateway``) performs
the actions on the drivers and the SIP user agent; tests drive a channel with a fake
clock and read its actions.
"""

from firmware.core.channels.actions import (
    Action,
    AnswerCall,
    ClearCall,
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
from firmware.core.channels.fxo import FxoChannel, FxoState
from firmware.core.channels.fxs import FxsChannel, FxsState

__all__ = [
    "Action",
    "AnswerCall",
    "ClearCall",
    "FxoChannel",
    "FxoState",
    "FxsChannel",
    "FxsState",
    "Hold",
    "Media",
    "OffHookWarning",
    "PlaceCall",
    "PlayTone",
    "Release",
    "Resume",
    "Seize",
    "SendCallerId",
    "SendDigits",
    "StartRing",
    "StopRing",
    "Transfer",
]
