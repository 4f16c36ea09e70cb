"""Country profiles: all load and validate, Denmark is the default with the reference
figures, every section cites a source, bad data is refused with a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from firmware.dsp import ProfileError, available, load_profile
from firmware.dsp.country import DEFAULT_COUNTRY, TONE_NAMES, load_profile_file

DK_FILE = Path(__file__).resolve().parents[3] / "firmware/dsp/countries/dk.yaml"


def test_the_six_countries_load_and_denmark_is_default() -> None:
    assert set(available()) >= {"dk", "se", "no", "de", "gb", "us"}
    assert DEFAULT_COUNTRY == "dk" and load_profile().code == "dk"
    for code in available():
        profile = load_profile(code)
        assert profile.code == code
        assert set(profile.tone_specs()) == set(TONE_NAMES)


def test_denmark_matches_the_reference_figures() -> None:
    dk = load_profile("dk")
    t = dk.tones
    assert t.dial.frequencies == (425.0,) and t.dial.continuous
    assert [(s.on_ms, s.off_ms) for s in t.busy.cadence] == [(500, 500)]
    assert [(s.on_ms, s.off_ms) for s in t.ringback.cadence] == [(1000, 4000)]
    assert [(s.on_ms, s.off_ms) for s in t.congestion.cadence] == [(200, 200)]
    assert t.special_information.sequential
    assert t.special_information.frequencies == (950.0, 1400.0, 1800.0)
    assert [s.on_ms for s in t.special_information.cadence] == [330, 330, 330]
    assert [(s.on_ms, s.off_ms) for s in dk.ring.cadence] == [(1000, 4000)]
    cid = dk.caller_id
    assert (cid.method, cid.timing, cid.polarity_reversal, cid.alerting) == (
        "dtmf",
        "before_first_ring",
        False,
        "none",
    )
    assert (cid.dtmf_start, cid.dtmf_end) == ("A", "#")
    assert 200 <= cid.data_to_ring_ms <= 500  # EN 300 659-1 DTMF variant


def test_every_section_and_tone_names_its_source() -> None:
    for code in available():
        p = load_profile(code)
        for spec in p.tone_specs().values():
            assert len(spec.source) > 10 and len(spec.level_source) > 10
        for section in (p.ring, p.caller_id, p.hook_flash, p.hook_debounce, p.dtmf):
            assert len(section.source) > 10


def test_unknown_country_is_a_clear_error() -> None:
    with pytest.raises(ProfileError, match=r"unknown country 'xx'.*dk"):
        load_profile("xx")
    with pytest.raises(ProfileError):
        load_profile("../dk")


def broken(tmp_path: Path, change: object) -> Path:
    data = yaml.safe_load(DK_FILE.read_text(encoding="utf-8"))
    change(data)  # type: ignore[operator]
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda d: d["tones"]["busy"].update(frequencies=[4500]), "less than or equal to 4000"),
        (lambda d: d["tones"]["busy"].update(frequencies=[20]), "greater than or equal to 50"),
        (lambda d: d["tones"]["dial"].update(level_dbm0=3), "less than or equal to 0"),
        (lambda d: d["tones"]["dial"].update(level_dbm0=-60), "greater than or equal to -40"),
        (lambda d: d["tones"]["busy"].update(cadence=[[500, 70000]]), "60000"),
        (lambda d: d["tones"]["busy"].update(cadence=[[500]]), "on_ms, off_ms"),
        (lambda d: d["tones"]["special_information"]["cadence"].pop(), "one cadence step"),
        (lambda d: d["hook_flash"].update(min_ms=200), "below max_ms"),
        (lambda d: d["caller_id"].update(method="morse"), "method"),
        (lambda d: d["tones"]["busy"].pop("source"), "source"),
        (lambda d: d["tones"].pop("congestion"), "congestion"),
        (lambda d: d["dtmf"].update(colour="red"), "colour"),
    ],
)
def test_out_of_bounds_files_are_refused(tmp_path: Path, change: object, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        load_profile_file(broken(tmp_path, change))


def test_site_file_with_the_same_schema_loads(tmp_path: Path) -> None:
    path = broken(tmp_path, lambda d: d["tones"]["busy"].update(cadence=[[400, 400]]))
    assert load_profile_file(path).tones.busy.cadence[0].on_ms == 400
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tones: [unclosed", encoding="utf-8")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile_file(bad)
