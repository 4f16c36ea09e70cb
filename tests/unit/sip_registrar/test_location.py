"""The location service on its own: persistence across restarts, expiry, bounds, listeners."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from firmware.sip.location import DB_NAME, Binding, LocationService
from firmware.sip.peer import Peer

from .conftest import Clock, Phone, World


def binding(
    aor: str = "101",
    port: int = 5060,
    *,
    now: float,
    expires: float = 3600,
    q: float | None = None,
    connection: int | None = None,
) -> Binding:
    return Binding(
        aor=aor,
        contact=f"sip:{aor}@192.168.1.50:{port}",
        expires_at=now + expires,
        registered_at=now,
        call_id=f"c-{aor}-{port}",
        cseq=1,
        peer=Peer("tcp" if connection else "udp", "192.168.1.50", port, connection),
        q=q,
        user_agent="snom D785/10.1.54.13",
        instance=None,
        path=("<sip:edge.example;lr>",),
    )


def test_bindings_survive_a_restart_and_lapsed_ones_do_not(tmp_path: Path, clock: Clock) -> None:
    with LocationService.open(tmp_path, clock=clock) as location:
        assert (tmp_path / DB_NAME).exists()
        assert location.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        kept = binding(now=clock.now, expires=3600, q=0.7, connection=12)
        location.update("101", add=[kept])
        location.update("102", add=[binding("102", now=clock.now, expires=120)])
    clock.advance(600)  # the daemon was down for ten minutes
    with LocationService.open(tmp_path, clock=clock) as location:
        assert location.aors() == ["101"] and len(location) == 1
        (loaded,) = location.contacts("101")
        # connection ids belong to the previous run: forgotten, the rest identical
        assert loaded.peer == Peer("tcp", "192.168.1.50", 5060, None)
        assert loaded == dataclasses.replace(kept, peer=loaded.peer)
        rows = location.db.execute("SELECT aor, connection FROM bindings").fetchall()
        assert rows == [("101", None)]
        assert location.next_expiry() == kept.expires_at


def test_registrations_survive_a_restart(tmp_path: Path) -> None:
    """The whole path: REGISTER, daemon restart, the phone is still reachable."""
    world = World(tmp_path / DB_NAME)
    assert Phone("101").register(world.registrar, expires=3600).status == 200
    assert Phone("102", host="192.168.1.51").register(world.registrar, expires=60).status == 200
    world.close()
    world.clock.advance(61)
    again = World(tmp_path / DB_NAME, clock=world.clock)
    assert [b.aor for b in again.location] == ["101"]
    assert again.location.contacts("101")[0].expires_in(again.clock.now) == 3600 - 61
    again.close()


def test_in_memory_only(clock: Clock) -> None:
    location = LocationService(None, clock=clock)
    location.update("101", add=[binding(now=clock.now)])
    assert len(location.contacts("101")) == 1
    location.close()


def test_eviction_and_order(clock: Clock) -> None:
    location = LocationService(None, clock=clock, max_contacts=3)
    for port, q in ((1, 0.1), (2, None), (3, 0.5)):
        location.update("101", add=[binding(port=port, now=clock.now, q=q)])
        clock.advance(1)
    assert [b.peer.port for b in location.contacts("101")] == [2, 3, 1]
    location.update("101", add=[binding(port=4, now=clock.now, q=0.2)])  # evicts port 1
    assert [b.peer.port for b in location.contacts("101")] == [2, 3, 4]
    assert location.db.execute("SELECT count(*) FROM bindings").fetchone()[0] == 3
    with pytest.raises(ValueError):
        location.update("101", add=[binding(port=p, now=clock.now) for p in range(10, 14)])
    with pytest.raises(ValueError):
        location.update("101", add=[binding("102", now=clock.now)])
    location.close()


def test_listeners_see_every_committed_change(clock: Clock) -> None:
    location = LocationService(None, clock=clock)
    seen: list[tuple[str, int]] = []
    unsubscribe = location.subscribe(lambda aor, bs: seen.append((aor, len(bs))))
    location.subscribe(lambda aor, bs: 1 / 0)  # a broken listener harms nobody
    location.update("101", add=[binding(now=clock.now, expires=60)])
    location.update("102", add=[binding("102", now=clock.now)])
    clock.advance(61)
    location.sweep()
    location.remove_aors(["102", "nobody"])
    assert seen == [("101", 1), ("102", 1), ("101", 0), ("102", 0)]
    unsubscribe()
    location.update("103", add=[binding("103", now=clock.now)])
    assert len(seen) == 4
    location.close()


def test_refreshes_do_not_grow_the_expiry_heap(clock: Clock) -> None:
    location = LocationService(None, clock=clock)
    for _ in range(1000):
        clock.advance(1)
        location.update("101", add=[binding(now=clock.now)])
    assert len(location._expiry) <= 2 * len(location) + 64
    clock.advance(3601)
    assert len(location.sweep()) == 1 and len(location) == 0
    assert location.next_expiry() is None
    location.close()


def test_a_corrupt_database_is_set_aside(tmp_path: Path, clock: Clock) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not a database" * 100)
    with LocationService.open(tmp_path, clock=clock) as location:
        assert len(location) == 0
        location.update("101", add=[binding(now=clock.now)])
    assert [p.name for p in tmp_path.glob(f"{DB_NAME}.corrupt-*")]
    with LocationService.open(tmp_path, clock=clock) as location:
        assert len(location) == 1


def test_unreadable_rows_are_skipped(tmp_path: Path, clock: Clock) -> None:
    with LocationService.open(tmp_path, clock=clock) as location:
        location.update("101", add=[binding(now=clock.now)])
        location.update("102", add=[binding("102", now=clock.now)])
        location.db.execute("UPDATE bindings SET transport = 'carrier-pigeon' WHERE aor = '102'")
    with LocationService.open(tmp_path, clock=clock) as location:
        assert location.aors() == ["101"]
