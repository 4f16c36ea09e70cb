"""Caller ID on analog lines (spandsp ADSI): ETSI FSK CLIP (V.23), Bell 202 CLASS and DTMF
CLIP, to audio and back.

FSK messages are MDMF with date-time, number and name; DTMF CLIP carries only the number
(``A`` + digits + terminator: ``#`` in Denmark, ``C`` in Sweden). DTMF CLIP is sent with
DtmfSender so the profile's tone and pause lengths apply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np

from firmware.dsp import _lib
from firmware.dsp._audio import AudioInput, Samples, as_samples, in_ptr, out_ptr
from firmware.dsp._lib import check_ptr, ffi, spandsp
from firmware.dsp._state import CallbackGuard, CState
from firmware.dsp.dtmf import DtmfSender
from firmware.dsp.errors import DspError

Method = Literal["dtmf", "fsk_v23", "fsk_bell202"]
METHODS: tuple[Method, ...] = ("dtmf", "fsk_v23", "fsk_bell202")

_STANDARD = {
    "dtmf": _lib.ADSI_STANDARD_CLIP_DTMF,
    "fsk_v23": _lib.ADSI_STANDARD_CLIP,
    "fsk_bell202": _lib.ADSI_STANDARD_CLASS,
}
# MDMF caller-ID message and parameter types; the same codes in ETSI EN 300 659-3 (CLIP)
# and Telcordia GR-30 (CLASS).
_MDMF_CALLERID = 0x80
_DATETIME = 0x01
_NUMBER = 0x02
_ABSENCE_NUMBER = 0x04
_NAME = 0x07
_DTMF_NUMBER = ord("A")
_MAX_MSG = 256


@dataclass(frozen=True, slots=True)
class CallerId:
    """What a caller-ID message said; fields the method or line did not carry are None."""

    number: str | None
    name: str | None = None
    when: datetime | None = None
    """Month, day, hour and minute from the line; the year is the receiver's clock's."""


class CallerIdSender:
    """Turns (number, name, date-time) into the audio of one caller-ID message."""

    def __init__(
        self,
        method: Method,
        *,
        dtmf_end: Literal["#", "C"] = "#",
        dtmf_on_ms: int = 70,
        dtmf_off_ms: int = 70,
        dtmf_level_dbm0: int = -10,
    ) -> None:
        if method not in _STANDARD:
            raise DspError(f"unknown caller-ID method {method!r} (known: {', '.join(METHODS)})")
        if dtmf_end not in ("#", "C"):
            raise DspError("DTMF CLIP ends with '#' or 'C'")
        self.method = method
        self._dtmf_end = dtmf_end
        self._dtmf = (dtmf_on_ms, dtmf_off_ms, dtmf_level_dbm0)

    def generate(
        self,
        number: str,
        name: str | None = None,
        when: datetime | None = None,
        *,
        alert: bool = False,
    ) -> Samples:
        """The message as 8 kHz samples; ``alert`` precedes FSK with the DT-AS alerting tone."""
        if not number or not number.isdigit() or len(number) > 20:
            raise DspError(f"caller number must be 1-20 digits, got {number!r}")
        if self.method == "dtmf":
            on_ms, off_ms, level = self._dtmf
            with _AdsiTx(self.method) as tx:
                msg = tx.message(ord(self._dtmf_end), [(_DTMF_NUMBER, number.encode())])
            with DtmfSender(level_dbm0=level, on_ms=on_ms, off_ms=off_ms) as dtmf:
                return dtmf.generate(msg.decode("ascii"))
        fields: list[tuple[int, bytes]] = []
        if when is not None:
            fields.append((_DATETIME, when.strftime("%m%d%H%M").encode()))
        fields.append((_NUMBER, number.encode()))
        if name:
            encoded = name.encode("latin-1", errors="replace")
            if len(encoded) > 50:
                raise DspError("caller name is longer than 50 characters")
            fields.append((_NAME, encoded))
        with _AdsiTx(self.method) as tx:
            return tx.send(tx.message(_MDMF_CALLERID, fields), alert)


class _AdsiTx(CState):
    def __init__(self, method: Method) -> None:
        lib = spandsp()
        self._lib = lib
        self._st = check_ptr(lib.adsi_tx_init(ffi.NULL, _STANDARD[method]), "adsi_tx_init")
        self._own([(lib.adsi_tx_free, self._st)])

    def message(self, msg_type: int, fields: list[tuple[int, bytes]]) -> bytes:
        buf = ffi.new("uint8_t[]", _MAX_MSG)
        n = self._lib.adsi_add_field(self._st, buf, -1, msg_type, ffi.NULL, 0)
        for ftype, body in fields:
            n = self._lib.adsi_add_field(self._st, buf, n, ftype, body, len(body))
            if not 0 < n < _MAX_MSG - 64:
                raise DspError("caller-ID message too long")
        return bytes(ffi.buffer(buf, n))

    def send(self, msg: bytes, alert: bool) -> Samples:
        if alert:
            self._lib.adsi_tx_send_alert_tone(self._st)
        if self._lib.adsi_tx_put_message(self._st, msg, len(msg)) <= 0:
            raise DspError("adsi_tx_put_message refused the message")
        chunks = []
        while True:
            chunk = np.zeros(1600, dtype=np.int16)
            n = self._lib.adsi_tx(self._st, out_ptr(chunk), len(chunk))
            if n <= 0:
                break
            chunks.append(chunk[:n])
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


# Skipping the line's idle pattern (``CallerIdReceiver.feed_quiet``). spandsp's DTMF CLIP
# receiver drops a message still incomplete 80000 samples (10 s) after its first digit,
# and its digit detector forgets a tone two 102-sample blocks after it ends; its FSK
# receiver drops the carrier and forgets any half-received character within a few
# hundred samples of silence (a new message starts from the carrier coming up). So
# after QUIET_SETTLE samples of nothing but the idle pattern no message is in progress
# and the detectors sit in the same state after each block of it, except for where they
# are in their blocks (DTMF: 102 samples; 1200-baud FSK correlates over 6, which 102 is a
# multiple of). Skipped samples are therefore only counted; before the next other audio,
# the receiver is fed REPLAY_BLOCK plus (skipped modulo REPLAY_BLOCK) samples of the
# pattern, which puts it at the block phase it would have had (the extra block refills
# FSK's correlation window, whose reference oscillators skip ahead: a phase rotation the
# non-coherent detector does not see).
QUIET_SETTLE = 80000 + 4000
REPLAY_BLOCK = 102
QUIET_MAX_LEVEL = 64  # |sample| of an idle pattern: A-law idle decodes to +-8, u-law to 0


class CallerIdReceiver(CState):
    """Decodes caller-ID messages of one method from line audio, frame by frame.

    ``feed`` takes any audio. ``feed_quiet`` takes the line's idle pattern (exact digital
    silence, e.g. an idle A-law frame decoded once) and, once the receiver has heard only
    that long enough to be idle, costs no DSP work; the messages decoded are the same.
    """

    def __init__(self, method: Method, *, clock: Callable[[], datetime] = datetime.now) -> None:
        if method not in _STANDARD:
            raise DspError(f"unknown caller-ID method {method!r} (known: {', '.join(METHODS)})")
        self.method = method
        self._clock = clock
        self._guard = CallbackGuard()
        self._messages: list[bytes] = []
        lib = spandsp()
        self._lib = lib

        def put_msg(_user: object, msg: object, length: int) -> None:
            if length > 0:
                self._guard.run(self._messages.append, bytes(ffi.buffer(msg, length)))

        self._cb = ffi.callback("put_msg_func_t", put_msg)
        self._st = check_ptr(
            lib.adsi_rx_init(ffi.NULL, _STANDARD[method], self._cb, ffi.NULL), "adsi_rx_init"
        )
        self._own([(lib.adsi_rx_free, self._st)], self._cb)
        self._open = True  # (``closed`` costs more than feed_quiet's skipping itself)
        self._silence: Samples | None = None  # the idle pattern feed_quiet was given
        self._quiet = 0  # samples of it heard since any other audio
        self._skipped = 0  # samples of it counted, not demodulated, since then

    def feed(self, audio: AudioInput) -> list[CallerId]:
        """Process a block of audio; the messages completed in it."""
        self._check_open()
        samples = as_samples(audio)
        if self._skipped:
            self._replay()
        self._quiet = 0
        return self._run(samples)

    def feed_quiet(self, silence: Samples) -> list[CallerId]:
        """Process one block of the line's idle pattern: ``silence`` must be the same array
        object every time (constant, near-zero samples; it is not copied, so never change
        it). Once only this has been heard for ``QUIET_SETTLE`` samples the block is
        counted instead of demodulated."""
        if self._quiet >= QUIET_SETTLE and silence is self._silence and self._open:
            self._skipped += len(silence)
            return []
        self._check_open()
        if silence is not self._silence:
            self._adopt(silence)
        self._quiet += len(silence)
        return self._run(silence)

    def close(self) -> None:
        self._open = False
        super().close()

    @property
    def skipping(self) -> bool:
        """True while the idle pattern is being counted rather than demodulated."""
        return self._quiet >= QUIET_SETTLE

    def _adopt(self, silence: Samples) -> None:
        samples = as_samples(silence)
        if samples is not silence or not len(samples):
            raise DspError("feed_quiet takes a non-empty, contiguous int16 array")
        if samples.min() != samples.max() or abs(int(samples[0])) > QUIET_MAX_LEVEL:
            raise DspError("feed_quiet takes digital silence: constant samples near zero")
        if self._skipped:
            self._replay()
        self._silence = silence
        self._quiet = 0

    def _replay(self) -> None:
        """Put the detectors where the skipped samples would have left them."""
        silence = self._silence
        assert silence is not None
        count = REPLAY_BLOCK + self._skipped % REPLAY_BLOCK
        self._skipped = 0
        replay = np.resize(silence, count)
        self._lib.adsi_rx(self._st, in_ptr(replay), count)  # messages, if any, go out next

    def _run(self, samples: Samples) -> list[CallerId]:
        if len(samples):
            self._lib.adsi_rx(self._st, in_ptr(samples), len(samples))
        self._guard.reraise()
        if not self._messages:
            return []
        messages, self._messages = self._messages, []
        return [info for msg in messages if (info := self._parse(msg)) is not None]

    def _parse(self, msg: bytes) -> CallerId | None:
        ftype = ffi.new("uint8_t *")
        body = ffi.new("uint8_t **")
        flen = ffi.new("int *")
        fields: dict[int, bytes] = {}
        pos = self._lib.adsi_next_field(self._st, msg, len(msg), -1, ftype, body, flen)
        msg_type = ftype[0]
        while True:
            pos = self._lib.adsi_next_field(self._st, msg, len(msg), pos, ftype, body, flen)
            if pos < 0:
                break
            fields[ftype[0]] = bytes(ffi.buffer(body[0], flen[0])) if flen[0] > 0 else b""
        if self.method == "dtmf":
            number = fields.get(_DTMF_NUMBER) or fields.get(0)
            return CallerId(number.decode("ascii")) if number else None
        if msg_type != _MDMF_CALLERID:
            return None
        number_raw = fields.get(_NUMBER)
        name_raw = fields.get(_NAME)
        return CallerId(
            number=number_raw.decode("ascii", errors="replace") if number_raw else None,
            name=name_raw.decode("latin-1") if name_raw else None,
            when=self._when(fields.get(_DATETIME)),
        )

    def _when(self, raw: bytes | None) -> datetime | None:
        if raw is None or len(raw) != 8 or not raw.isdigit():
            return None
        try:
            return datetime(
                self._clock().year, int(raw[0:2]), int(raw[2:4]), int(raw[4:6]), int(raw[6:8])
            )
        except ValueError:
            return None
