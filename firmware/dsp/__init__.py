"""DSP for the box's audio, through libspandsp and libspeexdsp (cffi ABI mode).

Audio everywhere is 8 kHz mono signed 16-bit linear in 20 ms frames of 160 samples, as numpy
int16 arrays (bytes accepted); G.722 takes 16 kHz. No C pointer leaves this package; every
object frees its C state on ``close()`` (or ``with``), with a finalizer as a safety net.
"""

from firmware.dsp._audio import FRAME_SAMPLES, SAMPLE_RATE
from firmware.dsp.callerid import CallerId, CallerIdReceiver, CallerIdSender
from firmware.dsp.country import CountryProfile, ToneSpec, available, load_profile
from firmware.dsp.dtmf import DTMF_DIGITS, DtmfEvent, DtmfReceiver, DtmfSender
from firmware.dsp.echo import EchoCanceller
from firmware.dsp.errors import DspError, ProfileError
from firmware.dsp.g722 import G722_SAMPLE_RATE, G722Decoder, G722Encoder
from firmware.dsp.plc import Plc
from firmware.dsp.tones import ToneDetector, ToneEvent, ToneGenerator

__all__ = [
    "DTMF_DIGITS",
    "FRAME_SAMPLES",
    "G722_SAMPLE_RATE",
    "SAMPLE_RATE",
    "CallerId",
    "CallerIdReceiver",
    "CallerIdSender",
    "CountryProfile",
    "DspError",
    "DtmfEvent",
    "DtmfReceiver",
    "DtmfSender",
    "EchoCanceller",
    "G722Decoder",
    "G722Encoder",
    "Plc",
    "ProfileError",
    "ToneDetector",
    "ToneEvent",
    "ToneGenerator",
    "ToneSpec",
    "available",
    "load_profile",
]
