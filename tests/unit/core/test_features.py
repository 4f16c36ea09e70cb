"""Feature state: codes change it, the configuration's rule, persistence across reopen."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from firmware.core.dialplan import Feature, FeatureMatch
from firmware.core.features import DB_NAME, FeatureError, FeatureState, FeatureStore

KNOWN = {"201", "202", "203", "204"}


def users(**extra: dict[str, Any]) -> list[dict[str, Any]]:
    """The users section as the config store returns it; ``extra`` by extension."""
    return [{"extension": e, "name": f"User {e}", **extra.get(f"u{e}", {})} for e in sorted(KNOWN)]


def code(feature: Feature, target: str | None = None, seconds: int | None = None) -> FeatureMatch:
    return FeatureMatch(feature, target, seconds)


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    s = FeatureStore.open(tmp_path)
    s.configure(users())
    return s


def test_every_code_changes_only_its_own_feature(store: FeatureStore) -> None:
    steps = [
        (code(Feature.FORWARD_UNCONDITIONAL, "202"), FeatureState(forward_unconditional="202")),
        (code(Feature.FORWARD_BUSY, "203"), FeatureState("202", "203")),
        (code(Feature.FORWARD_NO_ANSWER, "204", 35), FeatureState("202", "203", "204", 35)),
        (code(Feature.DND_ON), FeatureState("202", "203", "204", 35, True)),
        (code(Feature.FORWARD_UNCONDITIONAL_OFF), FeatureState(None, "203", "204", 35, True)),
        (code(Feature.FORWARD_BUSY_OFF), FeatureState(None, None, "204", 35, True)),
        (code(Feature.FORWARD_NO_ANSWER_OFF), FeatureState(None, None, None, 35, True)),
        (code(Feature.DND_OFF), FeatureState(None, None, None, 35, False)),
        (code(Feature.FORWARD_NO_ANSWER, "202"), FeatureState(None, None, "202", 20, False)),
    ]
    for match, expected in steps:
        outcome = store.apply("201", match, KNOWN)
        assert outcome.ok, outcome
        assert outcome.state == expected == store.state("201")
    assert store.state("202") == FeatureState()  # nobody else changed


@pytest.mark.parametrize(
    ("match", "why"),
    [
        (code(Feature.FORWARD_UNCONDITIONAL, "999"), "no extension '999'"),
        (code(Feature.FORWARD_BUSY, "201"), "cannot forward to itself"),
        (code(Feature.FORWARD_NO_ANSWER, "202", 4), "outside 5-120"),
        (code(Feature.FORWARD_NO_ANSWER, "202", 121), "outside 5-120"),
        (code(Feature.FORWARD_UNCONDITIONAL), "no extension None"),
    ],
)
def test_refused_codes_change_nothing(store: FeatureStore, match: FeatureMatch, why: str) -> None:
    store.apply("201", code(Feature.DND_ON), KNOWN)
    before = store.state("201")
    outcome = store.apply("201", match, KNOWN)
    assert not outcome.ok and why in outcome.text
    assert store.state("201") == before == outcome.state


def test_only_configured_extensions_have_features(store: FeatureStore) -> None:
    outcome = store.apply("299", code(Feature.DND_ON), KNOWN | {"299"})
    assert not outcome.ok and "not a configured extension" in outcome.text
    assert store.state("299") == FeatureState()


def test_no_answer_seconds_bounds_are_inclusive(store: FeatureStore) -> None:
    assert store.apply("201", code(Feature.FORWARD_NO_ANSWER, "202", 5), KNOWN).ok
    assert store.apply("201", code(Feature.FORWARD_NO_ANSWER, "202", 120), KNOWN).ok
    assert store.state("201").no_answer_s == 120


def test_changes_survive_a_reopen(tmp_path: Path, store: FeatureStore) -> None:
    store.apply("201", code(Feature.FORWARD_UNCONDITIONAL, "202"), KNOWN)
    store.apply("203", code(Feature.FORWARD_NO_ANSWER, "204", 45), KNOWN)
    store.apply("204", code(Feature.DND_ON), KNOWN)
    store.close()
    with FeatureStore.open(tmp_path) as again:
        again.configure(users())
        assert again.state("201") == FeatureState(forward_unconditional="202")
        assert again.state("203") == FeatureState(forward_no_answer="204", no_answer_s=45)
        assert again.state("204") == FeatureState(dnd=True)
        assert again.state("202") == FeatureState()


def test_config_defaults_apply_until_a_code_changes_them(tmp_path: Path) -> None:
    config = users(u201={"forward": {"busy": "203", "no_answer_s": 30}, "dnd": True})
    with FeatureStore.open(tmp_path) as store:
        store.configure(config)
        assert store.state("201") == FeatureState(forward_busy="203", no_answer_s=30, dnd=True)
        assert not store.overridden("201")
        store.apply("201", code(Feature.DND_OFF), KNOWN)
        assert store.state("201") == FeatureState(forward_busy="203", no_answer_s=30)
        assert store.overridden("201")
        # an unrelated change (another user, this user's name) keeps the code's change
        renamed = [dict(u, name="Renamed") for u in config] + []
        assert store.configure(renamed) == set()
        assert store.state("201").dnd is False
    with FeatureStore.open(tmp_path) as store:  # and so does a restart
        store.configure(config)
        assert store.state("201").dnd is False and store.overridden("201")
        # the configuration changes this user's features: the configuration wins again
        changed = users(u201={"forward": {"busy": "204"}, "dnd": True})
        assert store.configure(changed) == {"201"}
        assert store.state("201") == FeatureState(forward_busy="204", dnd=True)
        assert not store.overridden("201")
    with FeatureStore.open(tmp_path) as store:  # the drop was stored
        store.configure(changed)
        assert not store.overridden("201")


def test_same_values_written_differently_are_no_change(store: FeatureStore) -> None:
    store.apply("201", code(Feature.DND_ON), KNOWN)
    spelled_out = users(u201={"forward": {"no_answer_s": 20}, "dnd": False})
    assert store.configure(spelled_out) == set()
    assert store.state("201").dnd is True


def test_back_to_what_the_config_says_follows_the_config_again(store: FeatureStore) -> None:
    store.apply("201", code(Feature.DND_ON), KNOWN)
    assert store.overridden("201")
    store.apply("201", code(Feature.DND_OFF), KNOWN)
    assert not store.overridden("201")
    store.configure(users(u201={"dnd": True}))
    assert store.state("201").dnd is True


def test_a_removed_user_loses_its_changes(tmp_path: Path, store: FeatureStore) -> None:
    store.apply("204", code(Feature.DND_ON), KNOWN)
    assert store.configure([u for u in users() if u["extension"] != "204"]) == {"204"}
    store.configure(users())
    assert store.state("204") == FeatureState()
    with contextlib.closing(sqlite3.connect(tmp_path / DB_NAME)) as db:
        assert db.execute("SELECT count(*) FROM overrides").fetchone()[0] == 0


def test_a_failed_write_changes_nothing(store: FeatureStore) -> None:
    store.apply("201", code(Feature.DND_ON), KNOWN)
    store.db.execute("CREATE TRIGGER no_writes BEFORE INSERT ON overrides BEGIN SELECT RAISE(ABORT, 'disk says no'); END")  # fmt: skip
    outcome = store.apply("201", code(Feature.FORWARD_BUSY, "202"), KNOWN)
    assert not outcome.ok and outcome.text == "could not store the change"
    assert store.state("201") == FeatureState(dnd=True)
    with pytest.raises(FeatureError, match="disk says no"):
        store.set("202", FeatureState(dnd=True))
    assert store.state("202") == FeatureState()


def test_a_corrupt_database_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not a database" * 100)
    with FeatureStore.open(tmp_path) as store:
        store.configure(users(u201={"dnd": True}))
        assert store.state("201") == FeatureState(dnd=True)  # the configuration still holds
        assert store.apply("202", code(Feature.DND_ON), KNOWN).ok
    assert list(tmp_path.glob(f"{DB_NAME}.corrupt-*"))


def test_in_memory_store_for_tools() -> None:
    with FeatureStore(None) as store:
        store.configure(users())
        assert store.apply("201", code(Feature.DND_ON), KNOWN).ok
        assert store.state("201").dnd


def test_the_configuration_checks_forward_defaults() -> None:
    from firmware.config import ConfigError, Problem, validate

    good = validate(
        {"users": [
            {"extension": "201", "name": "A", "dnd": True,
             "forward": {"unconditional": "202", "no_answer": "202", "no_answer_s": 120}},
            {"extension": "202", "name": "B"},
        ]}
    )  # fmt: skip
    (user, _) = good.users
    assert user.forward is not None and user.forward.no_answer_s == 120 and user.dnd
    with pytest.raises(ConfigError) as info:
        validate(
            {"users": [
                {"extension": "201", "name": "A",
                 "forward": {"busy": "201", "no_answer": "299", "no_answer_s": 4}},
                {"extension": "202", "name": "B", "forward": {"unconditional": "x1", "when": 3},
                 "dnd": "sometimes"},
            ]}
        )  # fmt: skip
    found = {(p.path, p.reason.split(",")[0]) for p in info.value.problems}
    assert found == {
        ("users[0].forward.busy", "a user cannot forward to itself"),
        ("users[0].forward.no_answer", "no user has extension '299'"),
        ("users[0].forward.no_answer_s", "Input should be greater than or equal to 5"),
        ("users[1].forward.unconditional", "expected an extension number of 2 to 8 digits"),
        ("users[1].forward.unconditional", "no user has extension 'x1'"),
        ("users[1].forward.when", "unknown key"),
        ("users[1].dnd", "Input should be a valid boolean"),
    }
    assert all(isinstance(p, Problem) for p in info.value.problems)
