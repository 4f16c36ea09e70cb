"""Schema migrations of the configuration database, applied in order, each in one transaction."""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: the configuration model, its revision history, and the admin account.
    """
    CREATE TABLE config_revisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        applied_at TEXT NOT NULL,
        source TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        document TEXT NOT NULL
    );
    CREATE TABLE settings (section TEXT PRIMARY KEY, data TEXT NOT NULL);
    CREATE TABLE users (
        extension TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        sip_password TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE TABLE schedules (name TEXT PRIMARY KEY, data TEXT NOT NULL);
    CREATE TABLE queues (
        name TEXT PRIMARY KEY,
        extension TEXT NOT NULL UNIQUE,
        schedule TEXT REFERENCES schedules(name),
        data TEXT NOT NULL
    );
    CREATE TABLE agents (
        extension TEXT PRIMARY KEY REFERENCES users(extension),
        data TEXT NOT NULL
    );
    CREATE TABLE agent_queues (
        agent TEXT NOT NULL REFERENCES agents(extension) ON DELETE CASCADE,
        queue TEXT NOT NULL REFERENCES queues(name) ON DELETE CASCADE,
        skill INTEGER NOT NULL CHECK (skill BETWEEN 1 AND 9),
        PRIMARY KEY (agent, queue)
    );
    CREATE TABLE trunks (name TEXT PRIMARY KEY, data TEXT NOT NULL);
    CREATE TABLE ports (name TEXT PRIMARY KEY, data TEXT NOT NULL);
    CREATE TABLE phones (
        mac TEXT PRIMARY KEY,
        extension TEXT NOT NULL REFERENCES users(extension),
        data TEXT NOT NULL
    );
    CREATE TABLE admin (
        username TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        changed_at TEXT NOT NULL
    );
    """,
]
