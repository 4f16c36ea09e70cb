"""Configuration changes reach the registrar: removed users lose their bindings, new passwords count."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware.config import ConfigChanged, ConfigStore
from firmware.events import EventBus
from firmware.sip.digest import DigestAuthenticator
from firmware.sip.location import LocationService
from firmware.sip.registrar import Registrar, UserDirectory

from .conftest import REALM, Clock, Phone


def users_doc(**passwords: str) -> dict[str, Any]:
    return {
        "users": [
            {"extension": ext, "name": f"User {ext}", "sip_password": pw}
            for ext, pw in passwords.items()
        ]
    }


class Box:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = Clock()
        self.store = ConfigStore.open(tmp_path)
        self.store.import_raw(users_doc(**{"101": "first-password", "102": "bo-password"}), "test")
        self.bus = EventBus()
        self.users = UserDirectory.from_store(self.store)
        self.location = LocationService.open(tmp_path, clock=self.clock)
        self.registrar = Registrar(
            self.location,
            DigestAuthenticator(REALM, clock=self.clock),
            self.users.password_for,
            clock=self.clock,
        )
        self.unsubscribe = self.registrar.follow(self.bus, self.users)

    def apply(self, doc: dict[str, Any]) -> None:
        """What the config watcher does after an import."""
        revision = self.store.import_raw(doc, "test")
        self.bus.publish(ConfigChanged(revision, frozenset({"users"})))


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    b = Box(tmp_path)
    yield b
    b.location.close()
    b.store.close()


def test_removed_user_loses_bindings(box: Box) -> None:
    assert Phone("101", password="first-password").register(box.registrar).status == 200
    bo = Phone("102", password="bo-password", host="192.168.1.51")
    assert bo.register(box.registrar).status == 200
    box.apply(users_doc(**{"101": "first-password"}))
    assert box.location.contacts("102") == ()
    assert len(box.location.contacts("101")) == 1  # untouched
    assert bo.register(box.registrar).status == 401


def test_changed_password_takes_effect(box: Box) -> None:
    assert Phone("101", password="first-password").register(box.registrar).status == 200
    box.apply(users_doc(**{"101": "second-password", "102": "bo-password"}))
    # whoever registered with the old password is no longer reachable
    assert box.location.contacts("101") == ()
    assert Phone("101", password="first-password").register(box.registrar).status == 401
    assert Phone("101", password="second-password").register(box.registrar).status == 200


def test_other_sections_change_nothing(box: Box) -> None:
    Phone("101", password="first-password").register(box.registrar)
    box.bus.publish(ConfigChanged(99, frozenset({"system"})))
    assert len(box.location.contacts("101")) == 1
    box.unsubscribe()
    box.apply(users_doc(**{"102": "bo-password"}))
    assert len(box.location.contacts("101")) == 1  # no longer following


def test_users_removed_while_down_are_forgotten_at_start(tmp_path: Path) -> None:
    box = Box(tmp_path)
    Phone("101", password="first-password").register(box.registrar)
    box.location.close()
    box.store.import_raw(users_doc(**{"102": "bo-password"}), "while down")
    again = Box.__new__(Box)
    again.store, again.bus, again.clock = box.store, EventBus(), box.clock
    again.users = UserDirectory.from_store(box.store)
    again.location = LocationService.open(tmp_path, clock=box.clock)
    assert len(again.location.contacts("101")) == 1
    registrar = Registrar(
        again.location, DigestAuthenticator(REALM), again.users.password_for, clock=box.clock
    )
    registrar.follow(again.bus, again.users)
    assert again.location.contacts("101") == ()
    again.location.close()
    box.store.close()


def test_user_directory_ignores_users_without_password() -> None:
    rows: list[dict[str, Any]] = [
        {"extension": "101", "sip_password": "x" * 10},
        {"extension": "102"},
    ]
    users = UserDirectory(lambda: rows)
    assert "101" in users and "102" not in users and len(users) == 1
    rows[0] = {"extension": "101", "sip_password": "y" * 10}
    assert users.reload() == {"101"}
    assert users.password_for("101") == "y" * 10
