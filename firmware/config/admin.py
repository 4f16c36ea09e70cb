"""The admin account that the web UI and the serial console log in with.

There is no default password: until one is set, ``is_set()`` is False and every
front end must ask for a new one first. Passwords are stored as scrypt hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from .errors import ConfigError, Problem
from .store import ConfigStore

ADMIN = "admin"
MIN_LENGTH = 10
MAX_LENGTH = 128
_N, _R, _P = 2**14, 8, 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


def password_problems(password: str) -> list[Problem]:
    """Why a new admin password is refused (empty list: acceptable)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(Problem("password", f"at least {MIN_LENGTH} characters are needed"))
    if len(password) > MAX_LENGTH:
        problems.append(Problem("password", f"at most {MAX_LENGTH} characters"))
    if password.strip() != password:
        problems.append(Problem("password", "no leading or trailing spaces"))
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        problems.append(Problem("password", "no control characters"))
    return problems


class AdminAccount:
    def __init__(self, store: ConfigStore) -> None:
        self.store = store
        self.db = store.db

    def is_set(self) -> bool:
        with self.store.lock:
            row = self.db.execute("SELECT 1 FROM admin WHERE username=?", (ADMIN,)).fetchone()
        return row is not None

    def verify(self, password: str) -> bool:
        """Check a password; thread-safe, and the slow hash runs outside the store's lock."""
        with self.store.lock:
            row = self.db.execute(
                "SELECT password_hash FROM admin WHERE username=?", (ADMIN,)
            ).fetchone()
        if row is None:
            hash_password(password)  # same cost either way: no timing hint
            return False
        return check_password(password, row[0])

    def set_password(self, password: str, *, first_time: bool = False) -> None:
        """Set the admin password; with ``first_time`` only if none is set yet (no race)."""
        problems = password_problems(password)
        if problems:
            raise ConfigError(problems)
        hashed = hash_password(password)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self.store.lock:
            if first_time:
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO admin VALUES (?, ?, ?)", (ADMIN, hashed, now)
                )
                if cur.rowcount == 0:
                    raise ConfigError([Problem("password", "an admin password is already set")])
                return
            self.db.execute(
                "INSERT INTO admin VALUES (?, ?, ?) ON CONFLICT(username) DO UPDATE "
                "SET password_hash=excluded.password_hash, changed_at=excluded.changed_at",
                (ADMIN, hashed, now),
            )
