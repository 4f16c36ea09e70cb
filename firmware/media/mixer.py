"""Conference mixer on 20 ms frames: N parties, each hearing the others, with supervisor modes.

Pure and tick-driven: every 20 ms the caller passes each member's decoded input frame
(int16, None when nothing arrived) to `Mixer.mix` and gets each member's output frame.

Who hears whom, by `Role`:

============  =============================  ===========================
role          hears                          is heard by
============  =============================  ===========================
participant   every other talker             everyone (except itself)
barge         every other talker             everyone (a full participant)
listen        every talker                   nobody
whisper       every talker                   only its ``target`` (the agent)
============  =============================  ===========================

("talkers" are participants and barging supervisors.) A member never hears itself.
Each member's input is scaled by its ``gain`` and dropped when ``muted``. Sums are done
in 32 bits and saturated to int16 once per output, so loud parties clip instead of
wrapping around. The cost is O(members): one total, and each talker's output is the
total minus its own contribution.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.int16]
FRAME_SAMPLES = 160
#: Gain above this is a configuration mistake (+24 dB).
MAX_GAIN = 16.0


class MixerError(ValueError):
    """Unknown member, bad role/target/gain, or a frame of the wrong shape."""


class Role(StrEnum):
    PARTICIPANT = "participant"
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"

    @property
    def talks(self) -> bool:
        """Heard by everyone."""
        return self in (Role.PARTICIPANT, Role.BARGE)


@dataclass(slots=True)
class Member:
    role: Role = Role.PARTICIPANT
    target: Hashable | None = None  # whisper only: the one member who hears it
    gain: float = 1.0
    muted: bool = False


class Mixer:
    """Members by id (any hashable: a channel, a call leg). See the module doc."""

    def __init__(self, frame_samples: int = FRAME_SAMPLES) -> None:
        self.frame_samples = frame_samples
        self._members: dict[Hashable, Member] = {}

    # -- membership

    def add(
        self,
        member: Hashable,
        *,
        role: Role = Role.PARTICIPANT,
        target: Hashable | None = None,
        gain: float = 1.0,
        muted: bool = False,
    ) -> None:
        if member in self._members:
            raise MixerError(f"{member!r} is already in the conference")
        self._members[member] = Member(gain=_check_gain(gain), muted=muted)
        try:
            self.set_role(member, role, target)
        except MixerError:
            del self._members[member]
            raise

    def remove(self, member: Hashable) -> None:
        """Leave; whisperers aimed at ``member`` fall back to listening."""
        self._get(member)
        del self._members[member]
        self._drop_whispers_to(member)

    def set_role(self, member: Hashable, role: Role, target: Hashable | None = None) -> None:
        """Change mode (e.g. a supervisor going listen -> whisper -> barge). A member who
        stops talking loses its whisperers: they fall back to listening."""
        state = self._get(member)
        if role is Role.WHISPER:
            if target is None or target == member:
                raise MixerError("whisper needs a target other than the supervisor")
            target_state = self._members.get(target)
            if target_state is None:
                raise MixerError(f"whisper target {target!r} is not in the conference")
            if not target_state.role.talks:
                raise MixerError(f"whisper target {target!r} is not a participant")
        elif target is not None:
            raise MixerError(f"only whisper takes a target, not {role}")
        state.role, state.target = role, target
        if not role.talks:
            self._drop_whispers_to(member)

    def _drop_whispers_to(self, member: Hashable) -> None:
        for other in self._members.values():
            if other.role is Role.WHISPER and other.target == member:
                other.role, other.target = Role.LISTEN, None

    def set_gain(self, member: Hashable, gain: float) -> None:
        self._get(member).gain = _check_gain(gain)

    def set_muted(self, member: Hashable, muted: bool) -> None:
        self._get(member).muted = muted

    def member(self, member: Hashable) -> Member:
        """A copy of the member's state."""
        state = self._get(member)
        return Member(state.role, state.target, state.gain, state.muted)

    @property
    def members(self) -> list[Hashable]:
        return list(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def _get(self, member: Hashable) -> Member:
        try:
            return self._members[member]
        except KeyError:
            raise MixerError(f"{member!r} is not in the conference") from None

    # -- the tick

    def mix(self, inputs: Mapping[Hashable, Frame | None]) -> dict[Hashable, Frame]:
        """One tick: each member's input (missing or None = silence) -> each member's
        output. Every member gets an output frame."""
        n = self.frame_samples
        for key in inputs:
            if key not in self._members:
                raise MixerError(f"input from {key!r}, who is not in the conference")
        contributions: dict[Hashable, npt.NDArray[np.int32]] = {}
        for key, state in self._members.items():
            frame = inputs.get(key)
            if frame is None or state.muted or state.role is Role.LISTEN:
                continue
            contributions[key] = _scaled(_check_frame(frame, n, key), state.gain)
        total = np.zeros(n, dtype=np.int32)
        whispers: dict[Hashable, npt.NDArray[np.int32]] = {}
        for key, contribution in contributions.items():
            state = self._members[key]
            if state.role.talks:
                total += contribution
            else:  # whisper
                whispers[state.target] = whispers.get(state.target, 0) + contribution
        outputs: dict[Hashable, Frame] = {}
        for key, state in self._members.items():
            heard = total
            own = contributions.get(key)
            if state.role.talks and own is not None:
                heard = heard - own
            whisper = whispers.get(key)
            if whisper is not None:
                heard = heard + whisper
            outputs[key] = np.clip(heard, -32768, 32767).astype(np.int16)
        return outputs


def _check_gain(gain: float) -> float:
    if not 0.0 <= gain <= MAX_GAIN:
        raise MixerError(f"gain {gain} outside 0..{MAX_GAIN}")
    return float(gain)


def _check_frame(frame: Frame, n: int, member: Hashable) -> Frame:
    array = np.asarray(frame)
    if array.shape != (n,) or array.dtype != np.int16:
        raise MixerError(
            f"frame from {member!r}: want {n} int16 samples, got {array.dtype} {array.shape}"
        )
    return array


def _scaled(frame: Frame, gain: float) -> npt.NDArray[np.int32]:
    if gain == 1.0:
        return frame.astype(np.int32)
    scaled = np.rint(frame.astype(np.float64) * gain)
    return np.clip(scaled, -32768, 32767).astype(np.int32)
