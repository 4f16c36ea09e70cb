"""The dial plan: what a string of dialled digits means, for SIP calls and analog phones.

Pure and shared. A SIP phone sends the whole number at once (en-bloc, ``final=True``);
an analog FXS phone sends it digit by digit, and its collector asks after every digit:
``Incomplete`` means wait for more (up to the inter-digit timeout), a ``Match`` means
dial now, ``NoMatch`` means play the error tone. An ``Incomplete`` may carry the match
the digits already make (extension 20 while 201 also exists): the collector dials that
one when the inter-digit timeout runs out.

Numbers (Danish conventions, as on European PBXs):

- extensions: the users of the configuration, 2 to 8 digits (the schema's bound;
  Danish sites use 2 to 6);
- feature codes, ``*`` to switch on, ``#`` to switch off, ``#`` ends the code
  (``NNN`` is the forward target, ``SS`` the seconds to ring first, 5-120,
  default 20):

  ==============  ==========================================  ==========
  code            meaning                                     off
  ==============  ==========================================  ==========
  ``*21*NNN#``    forward every call to NNN (unconditional)   ``#21#``
  ``*67*NNN#``    forward when busy                           ``#67#``
  ``*61*NNN#``    forward when not answered in 20 s           ``#61#``
  ``*61*NNN*SS#`` forward when not answered in SS s           ``#61#``
  ``*26#``        do not disturb on                           ``#26#``
  ``*78``         do not disturb on (alias, as on many PBXs)  ``*79``
  ==============  ==========================================  ==========

  (``*21``, ``*67`` and ``*61`` are the ETSI/GSM supplementary-service codes that
  Danish users know from their mobiles.) Many SIP phones use ``#`` as their "send"
  key and leave it out of the number, so en-bloc (``final=True``) also accepts a code
  without its closing ``#``.

Seconds outside 5-120 and unknown forward targets still *match* (``FeatureMatch``):
the code was recognised, so the box answers it with an error tone instead of
"number unobtainable"; ``firmware.core.features`` does that check.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

NO_ANSWER_DEFAULT_S: Final = 20
NO_ANSWER_MIN_S: Final = 5
NO_ANSWER_MAX_S: Final = 120
MAX_TARGET_DIGITS: Final = 15  # E.164 length: targets may be external numbers later
MAX_DIGITS: Final = 32  # longer input is never a number of ours


class Feature(enum.Enum):
    FORWARD_UNCONDITIONAL = "forward-unconditional"
    FORWARD_UNCONDITIONAL_OFF = "forward-unconditional-off"
    FORWARD_BUSY = "forward-busy"
    FORWARD_BUSY_OFF = "forward-busy-off"
    FORWARD_NO_ANSWER = "forward-no-answer"
    FORWARD_NO_ANSWER_OFF = "forward-no-answer-off"
    DND_ON = "dnd-on"
    DND_OFF = "dnd-off"


@dataclass(frozen=True)
class ExtensionMatch:
    """The digits are extension ``number``."""

    number: str


@dataclass(frozen=True)
class FeatureMatch:
    """The digits are a feature code; ``target``/``seconds`` as dialled (unchecked)."""

    feature: Feature
    target: str | None = None
    seconds: int | None = None


Match = ExtensionMatch | FeatureMatch


@dataclass(frozen=True)
class Incomplete:
    """Wait for more digits; ``candidate`` is dialled if none come (inter-digit timeout)."""

    candidate: Match | None = None


@dataclass(frozen=True)
class NoMatch:
    """Nothing of this plan; ``partial`` when more digits would have made a number
    (SIP answers 484 Address Incomplete then, else 404)."""

    reason: str
    partial: bool = False


Result = ExtensionMatch | FeatureMatch | Incomplete | NoMatch


# -- feature-code grammar ---------------------------------------------------------------


@dataclass(frozen=True)
class _Digits:
    name: str
    low: int
    high: int


_Token = str | _Digits
_TARGET = _Digits("target", 2, MAX_TARGET_DIGITS)
_SECONDS = _Digits("seconds", 1, 3)

_CODES: Final[tuple[tuple[tuple[_Token, ...], Feature, bool], ...]] = (
    # (tokens, feature, the closing "#" may be left out in en-bloc dialling)
    (("*21*", _TARGET, "#"), Feature.FORWARD_UNCONDITIONAL, True),
    (("#21#",), Feature.FORWARD_UNCONDITIONAL_OFF, True),
    (("*67*", _TARGET, "#"), Feature.FORWARD_BUSY, True),
    (("#67#",), Feature.FORWARD_BUSY_OFF, True),
    (("*61*", _TARGET, "#"), Feature.FORWARD_NO_ANSWER, True),
    (("*61*", _TARGET, "*", _SECONDS, "#"), Feature.FORWARD_NO_ANSWER, True),
    (("#61#",), Feature.FORWARD_NO_ANSWER_OFF, True),
    (("*26#",), Feature.DND_ON, True),
    (("#26#",), Feature.DND_OFF, True),
    (("*78",), Feature.DND_ON, False),
    (("*79",), Feature.DND_OFF, False),
)

_COMPLETE, _PREFIX, _FAIL = "complete", "prefix", "fail"


def _walk(tokens: tuple[_Token, ...], text: str) -> tuple[str, dict[str, str]]:
    """Match ``text`` against a token sequence: whole match, proper prefix, or neither."""
    pos = 0
    values: dict[str, str] = {}
    for token in tokens:
        if isinstance(token, str):
            piece = text[pos : pos + len(token)]
            if piece != token[: len(piece)]:
                return _FAIL, values
            if len(piece) < len(token):
                return _PREFIX, values
            pos += len(token)
            continue
        end = pos
        while end < len(text) and text[end].isdigit() and text[end].isascii():
            end += 1
        run = end - pos
        if run > token.high:
            return _FAIL, values
        if end == len(text):
            return _PREFIX, values  # more digits, or the next literal, may follow
        if run < token.low:
            return _FAIL, values
        values[token.name] = text[pos:end]
        pos = end
    return (_COMPLETE if pos == len(text) else _FAIL), values


def _feature(text: str, final: bool) -> Result:
    """The feature-code reading of ``text`` (which starts with * or #)."""
    partial = False
    for tokens, feature, hash_optional in _CODES:
        state, values = _walk(tokens, text)
        if state == _PREFIX and final and hash_optional:
            retry, closed = _walk(tokens, text + "#")
            if retry == _COMPLETE:
                state, values = retry, closed
        if state == _COMPLETE:
            seconds = values.get("seconds")
            return FeatureMatch(
                feature, values.get("target"), None if seconds is None else int(seconds)
            )
        partial = partial or state == _PREFIX
    if partial and not final:
        return Incomplete()
    if partial:
        return NoMatch(f"incomplete feature code {text!r}", partial=True)
    return NoMatch(f"unknown feature code {text!r}")


class DialPlan:
    """The numbers of one configuration. Immutable: build a new one when users change."""

    def __init__(self, extensions: Iterable[str]) -> None:
        numbers = frozenset(extensions)
        for number in numbers:
            if not (2 <= len(number) <= 8 and number.isdigit() and number.isascii()):
                raise ValueError(f"not an extension number: {number!r}")
        self.extensions: frozenset[str] = numbers
        self._prefixes: frozenset[str] = frozenset(n[:i] for n in numbers for i in range(1, len(n)))

    def match(self, digits: str, *, final: bool = False) -> Result:
        """What ``digits`` mean. ``final``: no more digits will come (SIP en-bloc, or the
        analog collector's timeout / closing ``#``), so the answer is never Incomplete."""
        if len(digits) > MAX_DIGITS:
            return NoMatch("too many digits")
        if not digits:
            return NoMatch("nothing dialled", partial=True) if final else Incomplete()
        if digits[0] in "*#":
            return _feature(digits, final)
        if not (digits.isdigit() and digits.isascii()):
            return NoMatch(f"not a number: {digits!r}")
        exact = ExtensionMatch(digits) if digits in self.extensions else None
        if digits in self._prefixes and not final:
            return Incomplete(candidate=exact)
        if exact is not None:
            return exact
        if digits in self._prefixes:
            return NoMatch(f"{digits!r} is the start of an extension", partial=True)
        return NoMatch(f"no extension {digits!r}")
