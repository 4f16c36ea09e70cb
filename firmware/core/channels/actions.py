"""What a channel asks its gateway to do. Causes are ITU-T Q.850 values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Q.850 causes the channels use (firmware.core.causes maps them to SIP and back).
UNALLOCATED: Final = 1
NORMAL_CLEARING: Final = 16
USER_BUSY: Final = 17
NO_USER_RESPONDING: Final = 18
NO_ANSWER: Final = 19
INVALID_NUMBER: Final = 28
NORMAL_UNSPECIFIED: Final = 31
NO_CIRCUIT: Final = 34
TEMPORARY_FAILURE: Final = 41
RECOVERY_ON_TIMER_EXPIRY: Final = 102


@dataclass(frozen=True)
class PlayTone:
    """Play the profile tone ``name`` toward the line; None stops any tone."""

    name: str | None


@dataclass(frozen=True)
class StartRing:
    cadence_ms: tuple[float, ...]


@dataclass(frozen=True)
class StopRing:
    pass


@dataclass(frozen=True)
class SendCallerId:
    """Send caller ID on the on-hook line with the profile's method (then ``caller_id_sent``)."""

    number: str
    name: str | None = None


@dataclass(frozen=True)
class PlaceCall:
    """Start a SIP call to ``number`` presenting ``caller`` (None: anonymous).

    ``call`` is the port's call slot (0 or 1): an FXS port has a second call while
    its first is on hold (consultation); every call action names its slot.
    """

    number: str
    caller: str | None
    call: int = 0


@dataclass(frozen=True)
class AnswerCall:
    """Answer the SIP call offered to this channel (200 OK)."""


@dataclass(frozen=True)
class ClearCall:
    """End the SIP call (CANCEL, BYE or a final error as its state requires)."""

    cause: int
    call: int = 0


@dataclass(frozen=True)
class Media:
    """Connect (True) or disconnect the channel's timeslot and the call's RTP."""

    connected: bool
    call: int = 0


@dataclass(frozen=True)
class Hold:
    """Put the call in slot ``call`` on hold (re-INVITE sendonly: the far party gets
    the box's music on hold)."""

    call: int


@dataclass(frozen=True)
class Resume:
    """Take the call in slot ``call`` off hold (re-INVITE sendrecv)."""

    call: int


@dataclass(frozen=True)
class Transfer:
    """Transfer the held call ``call`` (omstilling; the outcome comes back as
    ``transfer_result``): attended when ``replaces`` names the answered consultation
    call's slot (REFER to ``number`` with Replaces: the two far parties are joined),
    blind to ``number`` when None (the consultation was not answered)."""

    call: int
    number: str
    replaces: int | None


@dataclass(frozen=True)
class OffHookWarning:
    """The handset has been left off-hook after a call ended: alert the user."""


@dataclass(frozen=True)
class Seize:
    """FXO: go off-hook (answer the line or start an outgoing call)."""


@dataclass(frozen=True)
class Release:
    """FXO: go on-hook."""


@dataclass(frozen=True)
class SendDigits:
    """FXO: dial ``digits`` as DTMF down the line."""

    digits: str


Action = (
    PlayTone
    | StartRing
    | StopRing
    | SendCallerId
    | PlaceCall
    | AnswerCall
    | ClearCall
    | Media
    | Hold
    | Resume
    | Transfer
    | OffHookWarning
    | Seize
    | Release
    | SendDigits
)


def tone_for_cause(cause: int) -> str:
    """The tone an analog caller hears when a call fails with ``cause``."""
    if cause == USER_BUSY:
        return "busy"
    if cause in (UNALLOCATED, INVALID_NUMBER, 22):  # 22: number changed
        return "special_information"
    return "congestion"
