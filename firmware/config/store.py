"""The configuration store: one SQLite database under the data directory.

WAL mode with synchronous=FULL and foreign keys on. An import replaces the whole
configuration in a single transaction, so a crash (even kill -9) at any moment leaves
either the old or the new configuration. Every import is kept as a revision.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ..storage import connect, migrate
from .errors import ConfigError, Problem
from .migrations import MIGRATIONS
from .schema import SCHEMA_VERSION, SECTIONS, Document
from .validate import validate

DB_NAME = "config.db"
_SINGLETONS = ("system", "network", "sip")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _reveal(value: Any) -> Any:
    """model_dump() output with secrets as plain text (for storage and export only)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def generate_sip_password() -> str:
    """A 20-character password for SIP digest auth (about 119 bits)."""
    return secrets.token_urlsafe(15)


class ConfigStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        # One connection, shared by the loop and worker threads (password checks): every
        # use of it goes through this lock, so rowcount/lastrowid belong to the caller.
        self.lock = threading.RLock()
        self.db = connect(path, synchronous="FULL")
        migrate(self.db, MIGRATIONS)

    @classmethod
    def open(cls, data_dir: Path | str) -> ConfigStore:
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls(data_dir / DB_NAME)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ConfigStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading --------------------------------------------------------------------------

    def revision(self) -> int:
        with self.lock:
            row = self.db.execute("SELECT max(id) FROM config_revisions").fetchone()
            return int(row[0] or 0)

    def document(self) -> dict[str, Any]:
        """The current configuration as a plain document (with secrets; export only)."""
        with self.lock:
            doc: dict[str, Any] = {"version": SCHEMA_VERSION}
            settings = dict(self.db.execute("SELECT section, data FROM settings"))
            for section in SECTIONS:
                if section in _SINGLETONS:
                    doc[section] = (
                        json.loads(settings[section]) if section in settings else _default(section)
                    )
                else:
                    rows = self.db.execute(f"SELECT data FROM {section} ORDER BY rowid")
                    doc[section] = [json.loads(r[0]) for r in rows]
            return doc

    def model(self) -> Document:
        return Document.model_validate(self.document())

    def section(self, name: str) -> Any:
        """One section, reading only its own rows (the hostname does not load 2,000 users)."""
        if name not in SECTIONS:
            raise ConfigError(
                [Problem(name, f"no such section; sections are {', '.join(SECTIONS)}")]
            )
        with self.lock:
            if name in _SINGLETONS:
                row = self.db.execute(
                    "SELECT data FROM settings WHERE section=?", (name,)
                ).fetchone()
                return json.loads(row[0]) if row else _default(name)
            rows = self.db.execute(f"SELECT data FROM {name} ORDER BY rowid")
            return [json.loads(r[0]) for r in rows]

    # -- writing --------------------------------------------------------------------------

    def import_raw(self, raw: Any, source: str) -> int:
        """Validate and import a raw document (parsed YAML/JSON); return the new revision."""
        return self.import_document(validate(raw), source)

    def import_document(self, document: Document, source: str) -> int:
        """Replace the whole configuration in one transaction; return the new revision.

        Users without a SIP password keep the one they had, or get a generated one.
        """
        with self.lock:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                old_passwords = dict(db.execute("SELECT extension, sip_password FROM users"))
                doc = _reveal(document.model_dump())
                for user in doc["users"]:
                    if not user.get("sip_password"):
                        user["sip_password"] = (
                            old_passwords.get(user["extension"]) or generate_sip_password()
                        )
                for table in (
                    "agent_queues",
                    "agents",
                    "phones",
                    "queues",
                    "schedules",
                    "users",
                    "trunks",
                    "ports",
                ):
                    db.execute(f"DELETE FROM {table}")
                db.execute("DELETE FROM settings")
                for section in _SINGLETONS:
                    db.execute("INSERT INTO settings VALUES (?, ?)", (section, _json(doc[section])))
                for u in doc["users"]:
                    db.execute(
                        "INSERT INTO users VALUES (?, ?, ?, ?)",
                        (u["extension"], u["name"], u["sip_password"], _json(u)),
                    )
                for s in doc["schedules"]:
                    db.execute("INSERT INTO schedules VALUES (?, ?)", (s["name"], _json(s)))
                for q in doc["queues"]:
                    db.execute(
                        "INSERT INTO queues VALUES (?, ?, ?, ?)",
                        (q["name"], q["extension"], q.get("schedule"), _json(q)),
                    )
                for a in doc["agents"]:
                    db.execute("INSERT INTO agents VALUES (?, ?)", (a["extension"], _json(a)))
                    for m in a["queues"]:
                        db.execute(
                            "INSERT INTO agent_queues VALUES (?, ?, ?)",
                            (a["extension"], m["queue"], m["skill"]),
                        )
                for t in doc["trunks"]:
                    db.execute("INSERT INTO trunks VALUES (?, ?)", (t["name"], _json(t)))
                for p in doc["ports"]:
                    db.execute("INSERT INTO ports VALUES (?, ?)", (p["name"], _json(p)))
                for ph in doc["phones"]:
                    db.execute(
                        "INSERT INTO phones VALUES (?, ?, ?)",
                        (ph["mac"], ph["extension"], _json(ph)),
                    )
                text = _json(doc)
                cur = db.execute(
                    "INSERT INTO config_revisions (applied_at, source, sha256, document) VALUES (?, ?, ?, ?)",
                    (_now(), source[:200], hashlib.sha256(text.encode()).hexdigest(), text),
                )
                revision = int(cur.lastrowid or 0)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return revision

    def revisions(self, limit: int = 20) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.db.execute(
                "SELECT id, applied_at, source, sha256 FROM config_revisions ORDER BY id DESC LIMIT ?",
                (limit,),
            )
            return [
                dict(zip(("revision", "applied_at", "source", "sha256"), r, strict=True))
                for r in rows
            ]

    def integrity_ok(self) -> bool:
        with self.lock:
            ok = self.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            return ok and not self.db.execute("PRAGMA foreign_key_check").fetchall()


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=False, ensure_ascii=False)


def _default(section: str) -> Any:
    return _reveal(getattr(Document(), section).model_dump())


def data_dir_private(data_dir: Path) -> None:
    """Make the data directory private to the firmware's user (it holds secrets)."""
    os.chmod(data_dir, 0o700)
