"""The SQLite store: migrations, all-or-nothing imports, revisions, generated passwords."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from firmware.config import AdminAccount, ConfigError, ConfigStore, dump_yaml, load_yaml, validate

DOC = {
    "system": {"hostname": "kontor"},
    "users": [{"extension": "101", "name": "Anne"}, {"extension": "102", "name": "Bo"}],
    "queues": [{"name": "support", "extension": "600"}],
    "agents": [{"extension": "101", "queues": [{"queue": "support", "skill": 3}]}],
    "phones": [{"mac": "00-11-22-33-44-55", "vendor": "snom", "extension": "102"}],
}


@pytest.fixture
def store(tmp_path: Path) -> ConfigStore:
    with ConfigStore.open(tmp_path) as s:
        yield s


def test_pragmas_and_migrations(store: ConfigStore, tmp_path: Path) -> None:
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    versions = [r[0] for r in store.db.execute("SELECT version FROM schema_migrations")]
    assert versions == [1]
    # reopening applies nothing twice
    ConfigStore.open(tmp_path).close()
    assert [r[0] for r in store.db.execute("SELECT version FROM schema_migrations")] == [1]


def test_fresh_store_exports_defaults(store: ConfigStore) -> None:
    assert store.revision() == 0
    doc = store.document()
    assert doc["version"] == 1
    assert doc["system"]["country"] == "DK"
    assert doc["users"] == []
    validate(doc)  # what we export we can import


def test_import_export_round_trip(store: ConfigStore) -> None:
    rev = store.import_raw(DOC, "test")
    assert rev == store.revision() == 1
    doc = store.document()
    assert [u["name"] for u in doc["users"]] == ["Anne", "Bo"]
    assert doc["phones"][0]["mac"] == "001122334455"
    assert doc["system"]["hostname"] == "kontor"
    # every user got a generated password, and the export re-imports to the same content
    passwords = [u["sip_password"] for u in doc["users"]]
    assert all(len(p) >= 16 for p in passwords) and len(set(passwords)) == 2
    store.import_raw(load_yaml(dump_yaml(doc)), "round-trip")
    assert store.document() == doc
    assert store.integrity_ok()


def test_reimport_without_passwords_keeps_them(store: ConfigStore) -> None:
    store.import_raw(DOC, "first")
    before = {u["extension"]: u["sip_password"] for u in store.document()["users"]}
    store.import_raw(
        {**DOC, "users": [*DOC["users"], {"extension": "103", "name": "Cy"}]}, "second"
    )
    after = {u["extension"]: u["sip_password"] for u in store.document()["users"]}
    assert after["101"] == before["101"] and after["102"] == before["102"]
    assert after["103"] not in before.values()
    explicit = {
        **DOC,
        "users": [{"extension": "101", "name": "Anne", "sip_password": "chosen-password"}],
    }
    store.import_raw({k: v for k, v in explicit.items() if k in ("users", "system")}, "third")
    assert store.document()["users"][0]["sip_password"] == "chosen-password"


def test_invalid_import_changes_nothing(store: ConfigStore) -> None:
    store.import_raw(DOC, "good")
    before = store.document()
    bad = {**DOC, "users": [{"extension": "101", "name": "A"}, {"extension": "101", "name": "B"}]}
    with pytest.raises(ConfigError):
        store.import_raw(bad, "bad")
    assert store.document() == before
    assert store.revision() == 1


def test_failure_inside_the_transaction_rolls_back(
    store: ConfigStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even a failure half-way through the writes (here: a constraint) leaves the old config."""
    store.import_raw(DOC, "good")
    before = store.document()
    store.db.execute(
        "CREATE TRIGGER no_cy BEFORE INSERT ON users WHEN NEW.name = 'Cy' BEGIN SELECT RAISE(ABORT, 'boom'); END"
    )
    with pytest.raises(sqlite3.IntegrityError):
        store.import_raw(
            {**DOC, "users": [*DOC["users"], {"extension": "103", "name": "Cy"}]}, "half"
        )
    assert store.document() == before
    assert store.revision() == 1


def test_revisions_are_kept(store: ConfigStore) -> None:
    store.import_raw(DOC, "one")
    store.import_raw({"system": {"hostname": "two"}}, "two")
    revs = store.revisions()
    assert [r["revision"] for r in revs] == [2, 1]
    assert [r["source"] for r in revs] == ["two", "one"]


def test_section_lookup(store: ConfigStore) -> None:
    store.import_raw(DOC, "one")
    assert store.section("queues")[0]["name"] == "support"
    with pytest.raises(ConfigError):
        store.section("nope")


def test_admin_password_first_time_only_once(store: ConfigStore) -> None:
    admin = AdminAccount(store)
    assert not admin.is_set()
    assert not admin.verify("anything at all")
    with pytest.raises(ConfigError) as info:
        admin.set_password("short", first_time=True)
    assert info.value.problems[0].path == "password"
    admin.set_password("correct horse battery", first_time=True)
    with pytest.raises(ConfigError):
        admin.set_password("another good password", first_time=True)
    assert admin.verify("correct horse battery")
    assert not admin.verify("correct horse batter")
    admin.set_password("another good password")
    assert admin.verify("another good password")
    stored = store.db.execute("SELECT password_hash FROM admin").fetchone()[0]
    assert "correct" not in stored and stored.startswith("scrypt$")
