"""Country profiles: tones, ring cadence, caller-ID, hook and DTMF timing, as validated data.

Profiles live in ``firmware/dsp/countries/<code>.yaml`` (ISO 3166 alpha-2, lower case) and
are checked against these models at load time. Every section names the source of its
figures. The models are plain numbers (Hz, dBm0, ms) so drivers and channel state machines
can use them without touching the DSP.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from firmware.dsp.errors import ProfileError

DEFAULT_COUNTRY = "dk"

Hz = Annotated[float, Field(ge=50.0, le=4000.0)]
Dbm0 = Annotated[float, Field(ge=-40.0, le=0.0)]
Ms = Annotated[int, Field(ge=0, le=60000)]
Source = Annotated[str, Field(min_length=3)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CadenceStep(_Model):
    """One tone burst and the silence after it."""

    on_ms: Ms
    off_ms: Ms

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, data: object) -> object:
        if isinstance(data, list | tuple):
            if len(data) != 2:
                raise ValueError("a cadence step is [on_ms, off_ms]")
            return {"on_ms": data[0], "off_ms": data[1]}
        return data


class ToneSpec(_Model):
    """A call-progress tone.

    ``frequencies`` sound together (at most two) in every burst, unless ``sequential``: then
    burst *i* of the cadence plays ``frequencies[i]`` alone (the special information tone).
    An empty cadence is a continuous tone. ``repeat`` false plays the cadence once.
    """

    frequencies: tuple[Hz, ...] = Field(min_length=1, max_length=4)
    level_dbm0: Dbm0
    cadence: tuple[CadenceStep, ...] = Field(default=(), max_length=8)
    sequential: bool = False
    repeat: bool = True
    source: Source
    level_source: Source

    @model_validator(mode="after")
    def _check(self) -> ToneSpec:
        if self.sequential:
            if len(self.cadence) != len(self.frequencies):
                raise ValueError("a sequential tone has one cadence step per frequency")
        elif len(self.frequencies) > 2:
            raise ValueError("at most two frequencies sound together")
        if any(step.on_ms == 0 for step in self.cadence):
            raise ValueError("every cadence step needs a tone burst (on_ms > 0)")
        return self

    @property
    def continuous(self) -> bool:
        return not self.cadence

    def bursts(self) -> list[tuple[tuple[float, ...], int, int]]:
        """The cadence as (frequencies, on_ms, off_ms) bursts; continuous tones give none."""
        out = []
        for i, step in enumerate(self.cadence):
            freqs = (self.frequencies[i],) if self.sequential else self.frequencies
            out.append((freqs, step.on_ms, step.off_ms))
        return out

    @property
    def period_ms(self) -> int:
        return sum(step.on_ms + step.off_ms for step in self.cadence)


class Tones(_Model):
    dial: ToneSpec
    ringback: ToneSpec
    busy: ToneSpec
    congestion: ToneSpec
    call_waiting: ToneSpec
    special_information: ToneSpec


TONE_NAMES = tuple(Tones.model_fields)


class RingCadence(_Model):
    cadence: tuple[CadenceStep, ...] = Field(min_length=1, max_length=4)
    source: Source


class CallerId(_Model):
    """How the line presents the caller's number (ETSI EN 300 659-1 / Telcordia GR-30)."""

    method: Literal["dtmf", "fsk_v23", "fsk_bell202"]
    timing: Literal["before_first_ring", "after_first_ring"]
    polarity_reversal: bool
    alerting: Literal["none", "dt_as", "rp_as"]
    alert_to_data_ms: Ms = 0
    """From the polarity reversal / alerting signal to the start of the data."""
    data_to_ring_ms: Ms = 0
    """From the end of the data to the (next) ring."""
    ring_to_data_ms: Ms = 0
    """After the first ring: from the end of the first ring to the start of the data."""
    dtmf_start: Literal["A", "D"] = "A"
    dtmf_end: Literal["#", "C"] = "#"
    dtmf_on_ms: Ms = 70
    dtmf_off_ms: Ms = 70
    source: Source

    @model_validator(mode="after")
    def _timing(self) -> CallerId:
        if self.data_to_ring_ms == 0:
            raise ValueError("caller ID needs data_to_ring_ms (gap before the next ring)")
        if self.timing == "after_first_ring" and self.ring_to_data_ms == 0:
            raise ValueError("caller ID after the first ring needs ring_to_data_ms")
        if (self.polarity_reversal or self.alerting != "none") and self.alert_to_data_ms == 0:
            raise ValueError("caller ID with reversal or alerting needs alert_to_data_ms")
        if (
            self.method != "dtmf"
            and self.timing == "before_first_ring"
            and not (self.polarity_reversal or self.alerting != "none")
        ):
            raise ValueError("FSK before the first ring needs a reversal or alerting signal")
        return self


class HookFlash(_Model):
    """An on-hook break between ``min_ms`` and ``max_ms`` is a flash (register recall)."""

    min_ms: Ms
    max_ms: Ms
    source: Source

    @model_validator(mode="after")
    def _order(self) -> HookFlash:
        if not self.min_ms < self.max_ms:
            raise ValueError("hook flash min_ms must be below max_ms")
        return self


class HookDebounce(_Model):
    off_hook_ms: Ms
    on_hook_ms: Ms
    source: Source


class DtmfTiming(_Model):
    """What the box sends (level per tone of the low group, twist) and times."""

    level_dbm0: Dbm0
    twist_db: Annotated[float, Field(ge=-4.0, le=4.0)]
    on_ms: Annotated[int, Field(ge=40, le=60000)]
    off_ms: Annotated[int, Field(ge=40, le=60000)]
    source: Source


class CountryProfile(_Model):
    code: Annotated[str, Field(pattern=r"^[a-z]{2}$")]
    name: Source
    tones: Tones
    ring: RingCadence
    caller_id: CallerId
    hook_flash: HookFlash
    hook_debounce: HookDebounce
    dtmf: DtmfTiming

    def tone(self, name: str) -> ToneSpec:
        """The tone called ``name`` (one of TONE_NAMES)."""
        if name not in TONE_NAMES:
            raise ProfileError(f"no tone {name!r} (known: {', '.join(TONE_NAMES)})")
        spec: ToneSpec = getattr(self.tones, name)
        return spec

    def tone_specs(self) -> dict[str, ToneSpec]:
        return {name: self.tone(name) for name in TONE_NAMES}


def available() -> list[str]:
    """The country codes with a profile, sorted."""
    folder = resources.files("firmware.dsp") / "countries"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


@cache
def load_profile(code: str = DEFAULT_COUNTRY) -> CountryProfile:
    """The validated profile of ``code`` (e.g. "dk"); ProfileError when unknown or invalid."""
    if not isinstance(code, str) or code.lower() not in available():
        raise ProfileError(f"unknown country {code!r}; profiles exist for {', '.join(available())}")
    resource = resources.files("firmware.dsp") / "countries" / f"{code.lower()}.yaml"
    profile = _parse(resource.read_text(encoding="utf-8"), f"{code.lower()}.yaml")
    if profile.code != code.lower():
        raise ProfileError(f"{code.lower()}.yaml declares code {profile.code!r}")
    return profile


def load_profile_file(path: str | Path) -> CountryProfile:
    """A profile from a file of the same schema (site-specific tones)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"cannot read country profile {path}: {exc}") from exc
    return _parse(text, str(path))


def _parse(text: str, name: str) -> CountryProfile:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{name}: not valid YAML: {exc}") from exc
    try:
        return CountryProfile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(f"{name}: invalid country profile:\n{exc}") from exc
