"""SQLite the way every store of the box uses it: one place for connecting and migrating.

WAL so readers never block the writer; ``synchronous=FULL`` where a commit must survive
a power cut (config, CDRs), NORMAL where losing the last seconds on power loss is fine
(registrations, which phones refresh); autocommit mode, so each store runs its own
explicit ``BEGIN IMMEDIATE ... COMMIT``. Migrations are numbered SQL scripts, each
applied once, in one transaction, safe against two processes starting at once.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal


def connect(
    path: Path | str,
    *,
    synchronous: Literal["FULL", "NORMAL"] = "FULL",
    foreign_keys: bool = True,
) -> sqlite3.Connection:
    """Open (creating) a database in WAL mode; the caller serializes use across threads."""
    db = sqlite3.connect(str(path), isolation_level=None, timeout=30.0, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        if foreign_keys:
            db.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        db.close()
        raise
    return db


def migrate(db: sqlite3.Connection, migrations: Sequence[str]) -> None:
    """Apply the scripts of ``migrations`` (version = position + 1) not applied yet."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)"
    )
    done = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
    for version, script in enumerate(migrations, start=1):
        if version in done:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            if not db.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
            ).fetchone():  # else another process migrated meanwhile
                for statement in (s for s in script.split(";") if s.strip()):
                    db.execute(statement)
                applied = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, applied))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
