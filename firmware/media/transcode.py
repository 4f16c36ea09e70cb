"""One direction of media between two call legs whose codecs or ptimes differ.

API::

    t = Transcoder(PCMA, PCMU, source_ptime=20, destination_ptime=30,
                   source_event_pt=101, destination_event_pt=96)
    for out in t.process(rtp_bytes): send(out)     # zero, one or more packets
    for out in t.flush(): send(out)                # end of call: the partial frame

When both legs agree (same codec, payload types and ptime) the transcoder is a
pass-through: ``process`` returns the very packet it was given, untouched, so
anchored G.711 calls pay nothing. Otherwise each packet is decoded to the box's audio
(8 kHz int16), re-encoded, and given the output stream's own SSRC; RFC 4733 event
packets keep their payload and get the output's event payload type.

The output is one continuous RTP stream even when the input restarts (new SSRC, a
timestamp jump back): its timestamps then carry on where they left off, with the
marker bit set. Within one input stream, timestamps map by a fixed offset, so silence
suppression gaps and losses keep their real length.

- Same ptime: one packet out per packet in, sequence numbers mapped by a fixed offset,
  so the far end still sees losses and reordering for its own jitter buffer.
- Different ptime (20 <-> 30 ms mediation): decoded audio is buffered and cut into
  frames of the output ptime, numbered by our own sequence counter. A gap in the
  input (loss or silence) first flushes the buffered part as a shorter packet, then
  starts a new frame at the timestamp after the gap. A packet older than what was
  already sent (reordered too late) is dropped and counted in ``late``.

All codecs of the box have an 8000 Hz RTP clock, so one timestamp unit is one sample.
"""

from __future__ import annotations

import random

import numpy as np

from firmware.media.codecs import AUDIO_RATE, Codec, CodecInfo, Int16Array, create_codec
from firmware.media.rtp import build_rtp, parse_rtp

__all__ = ["MAX_FORWARD_JUMP", "TranscodeError", "Transcoder"]

#: A forward timestamp jump larger than this (samples) is a new timeline, not silence.
MAX_FORWARD_JUMP = 60 * AUDIO_RATE
#: A backward step larger than this (samples) is a restarted sender, not a late packet.
MAX_BACKWARD_STEP = 2 * AUDIO_RATE

_U32 = 0xFFFFFFFF


class TranscodeError(ValueError):
    """A transcoder configuration the box cannot do (not audio, unsupported ptime)."""


def _signed32(value: int) -> int:
    value &= _U32
    return value - (1 << 32) if value & 0x80000000 else value


class Transcoder:
    """RTP packets of ``source`` in, RTP packets of ``destination`` out (one direction)."""

    def __init__(
        self,
        source: CodecInfo,
        destination: CodecInfo,
        *,
        source_pt: int | None = None,
        destination_pt: int | None = None,
        source_ptime: int = 20,
        destination_ptime: int = 20,
        source_event_pt: int | None = None,
        destination_event_pt: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        for info in (source, destination):
            if not info.is_audio or info.clock_rate != AUDIO_RATE:
                raise TranscodeError(f"{info.rtpmap} is not an 8000 Hz audio codec")
        for ptime in (source_ptime, destination_ptime):
            if not 10 <= ptime <= 200 or ptime % 10:
                raise TranscodeError(f"ptime {ptime} ms: the box frames in 10 ms steps up to 200")
        self.source = source
        self.destination = destination
        self.source_pt = _payload_type(source, source_pt)
        self.destination_pt = _payload_type(destination, destination_pt)
        self.source_event_pt = source_event_pt
        self.destination_event_pt = destination_event_pt
        self.source_ptime = source_ptime
        self.destination_ptime = destination_ptime
        self.passthrough = (
            source is destination
            and self.source_pt == self.destination_pt
            and source_ptime == destination_ptime
            and source_event_pt == destination_event_pt
        )
        self.reframe = source_ptime != destination_ptime
        self.frame_samples = AUDIO_RATE * destination_ptime // 1000
        rng = rng or random.SystemRandom()
        self.ssrc = rng.getrandbits(32)
        self._out_seq = rng.getrandbits(16)  # next sequence number (reframing mode)
        self._out_ts = rng.getrandbits(32)  # output timestamp where the next audio goes
        self._decoder: Codec | None = None
        self._encoder: Codec | None = None
        if not self.passthrough:
            self._decoder = create_codec(source)
            self._encoder = create_codec(destination)
        # Mapping of the current input stream onto the output stream.
        self._in_ssrc: int | None = None
        self._ts_offset = 0
        self._seq_offset = 0
        self._in_next_ts: int | None = None  # input timestamp just after the last audio
        self._buffer: list[Int16Array] = []
        self._buffered = 0
        self._buffer_ts = 0  # output timestamp of the first buffered sample
        self._marker = False
        self.late = 0  # packets dropped: older than what was already sent
        self.ignored = 0  # packets of other payload types (comfort noise, unknown)

    # --- public ---

    def process(self, data: bytes) -> list[bytes]:
        """Packets for the destination leg carrying what ``data`` carried."""
        if self.passthrough:
            return [data]
        packet = parse_rtp(data)
        if packet.ssrc != self._in_ssrc:
            out = self.flush()
            self._rebase(packet.ssrc, packet.sequence, packet.timestamp)
        else:
            out = []
        pt = packet.payload_type
        if pt == self.source_pt:
            assert self._decoder is not None
            samples = self._decoder.decode(packet.payload)
            if self.reframe:
                out += self._reframe(samples, packet.timestamp, packet.marker)
            else:
                out.append(self._one(samples, packet.sequence, packet.timestamp, packet.marker))
        elif pt == self.source_event_pt and self.destination_event_pt is not None:
            out += self.flush()
            out.append(
                self._event(packet.payload, packet.sequence, packet.timestamp, packet.marker)
            )
        else:
            self.ignored += 1
            self._marker = True  # comfort noise or such: the next audio starts a talkspurt
        return out

    def flush(self) -> list[bytes]:
        """The buffered part-frame as a (short) packet; nothing in the other modes."""
        if not self._buffered:
            return []
        samples = np.concatenate(self._buffer) if len(self._buffer) > 1 else self._buffer[0]
        self._buffer, self._buffered = [], 0
        return [self._emit(samples, self._buffer_ts)]

    # --- internals ---

    def _rebase(self, ssrc: int | None, seq: int, ts: int) -> None:
        """A new input stream: continue the output timeline after what was sent."""
        self._in_ssrc = ssrc
        self._ts_offset = (self._out_ts - ts) & _U32
        self._seq_offset = (self._out_seq - seq) & 0xFFFF
        self._in_next_ts = ts
        self._marker = True

    def _one(self, samples: Int16Array, seq: int, ts: int, marker: bool) -> bytes:
        assert self._encoder is not None
        out_ts = (ts + self._ts_offset) & _U32
        out_seq = (seq + self._seq_offset) & 0xFFFF
        data = build_rtp(
            self.destination_pt,
            out_seq,
            out_ts,
            self.ssrc,
            self._encoder.encode(samples),
            marker or self._marker,
        )
        self._marker = False
        end = (out_ts + len(samples)) & _U32
        if _signed32(end - self._out_ts) > 0:
            self._out_ts = end
        if _signed32((out_seq + 1 - self._out_seq) << 16) > 0:
            self._out_seq = (out_seq + 1) & 0xFFFF
        return data

    def _reframe(self, samples: Int16Array, ts: int, marker: bool) -> list[bytes]:
        out: list[bytes] = []
        assert self._in_next_ts is not None
        step = _signed32(ts - self._in_next_ts)
        if step < 0:
            if -step <= MAX_BACKWARD_STEP:
                self.late += 1
                return out
            out += self.flush()
            self._rebase(self._in_ssrc, 0, ts)  # the sender restarted its clock
        elif step > MAX_FORWARD_JUMP:
            out += self.flush()
            self._rebase(self._in_ssrc, 0, ts)
        elif step > 0:
            out += self.flush()  # a gap: loss or silence suppression
        if marker:
            out += self.flush()
            self._marker = True
        if not self._buffered:
            self._buffer_ts = (ts + self._ts_offset) & _U32
        self._buffer.append(samples)
        self._buffered += len(samples)
        self._in_next_ts = (ts + len(samples)) & _U32
        while self._buffered >= self.frame_samples:
            whole = np.concatenate(self._buffer) if len(self._buffer) > 1 else self._buffer[0]
            frame, rest = whole[: self.frame_samples], whole[self.frame_samples :]
            out.append(self._emit(frame, self._buffer_ts))
            self._buffer = [rest] if len(rest) else []
            self._buffered = len(rest)
            self._buffer_ts = (self._buffer_ts + self.frame_samples) & _U32
        return out

    def _emit(self, samples: Int16Array, out_ts: int) -> bytes:
        assert self._encoder is not None
        data = build_rtp(
            self.destination_pt,
            self._out_seq,
            out_ts,
            self.ssrc,
            self._encoder.encode(samples),
            self._marker,
        )
        self._marker = False
        self._out_seq = (self._out_seq + 1) & 0xFFFF
        self._out_ts = (out_ts + len(samples)) & _U32
        return data

    def _event(self, payload: bytes, seq: int, ts: int, marker: bool) -> bytes:
        assert self.destination_event_pt is not None
        out_ts = (ts + self._ts_offset) & _U32
        if self.reframe:
            out_seq = self._out_seq
            self._out_seq = (self._out_seq + 1) & 0xFFFF
        else:
            out_seq = (seq + self._seq_offset) & 0xFFFF
            if _signed32((out_seq + 1 - self._out_seq) << 16) > 0:
                self._out_seq = (out_seq + 1) & 0xFFFF
        # Audio after the event starts a new talkspurt (RFC 4733 §2.5.1.4 mutes it).
        self._marker = True
        return build_rtp(self.destination_event_pt, out_seq, out_ts, self.ssrc, payload, marker)


def _payload_type(info: CodecInfo, given: int | None) -> int:
    if given is not None:
        if not 0 <= given <= 127:
            raise TranscodeError(f"payload type {given} out of range")
        return given
    if info.static_pt is None:
        raise TranscodeError(f"{info.name} has no static payload type: give the SDP's")
    return info.static_pt
