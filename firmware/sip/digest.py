"""SIP digest authentication, server side (RFC 3261 §22, RFC 8760: MD5 and SHA-256, qop=auth).

Nonces are stateless (a timestamp and random bytes signed with a per-boot key), so a
challenge costs no memory; what is remembered is the highest nonce-count seen per
nonce, to refuse replays. A nonce past its lifetime gives ``stale=true`` so phones
retry silently with a fresh one instead of asking the user for a password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

ALGORITHMS: dict[str, Callable[[bytes], str]] = {
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
    "MD5": lambda b: hashlib.md5(b, usedforsecurity=False).hexdigest(),
}
PREFERRED = ("SHA-256", "MD5")  # challenge order: the strongest first (RFC 8760 §2.4)
MAX_CREDENTIALS_LENGTH = 4096
MAX_TRACKED_NONCES = 20000


class DigestError(ValueError):
    """Credentials that cannot be parsed; the request gets 400 or a new challenge."""


@dataclass(frozen=True)
class Credentials:
    scheme: str
    params: dict[str, str]  # lower-cased names, unquoted values

    def get(self, name: str) -> str | None:
        return self.params.get(name)


_PARAM = re.compile(r'\s*([A-Za-z0-9!%\'*+.^_`|~-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]+)\s*(,|$)')


def parse_credentials(value: str) -> Credentials:
    """Parse an Authorization / Proxy-Authorization header value."""
    if len(value) > MAX_CREDENTIALS_LENGTH:
        raise DigestError("credentials too long")
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    if not scheme or not rest.strip():
        raise DigestError("credentials need a scheme and parameters")
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if m is None:
            raise DigestError(f"malformed auth-param at offset {pos}")
        name, raw = m.group(1).lower(), m.group(2)
        if name in params:
            raise DigestError(f"duplicate auth-param {name}")
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[name] = raw
        pos = m.end()
    return Credentials(scheme, params)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def response_digest(
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    nc: str | None = None,
    cnonce: str | None = None,
    qop: str | None = None,
) -> str:
    """The ``response`` value a client computes (RFC 3261 §22.4 / RFC 7616 §3.4.1)."""
    h = ALGORITHMS[algorithm]
    ha1 = h(f"{username}:{realm}:{password}".encode())
    ha2 = h(f"{method}:{uri}".encode())
    if qop:
        return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())
    return h(f"{ha1}:{nonce}:{ha2}".encode())


@dataclass(frozen=True)
class Verdict:
    ok: bool
    stale: bool = False
    reason: str = ""
    username: str | None = None


class DigestAuthenticator:
    """Issues challenges and checks credentials for one realm."""

    def __init__(
        self,
        realm: str,
        *,
        lifetime: float = 300.0,
        clock: Callable[[], float] = time.time,
        key: bytes | None = None,
        algorithms: tuple[str, ...] = PREFERRED,
    ) -> None:
        unknown = set(algorithms) - set(ALGORITHMS)
        if unknown:
            raise ValueError(f"unsupported digest algorithms: {sorted(unknown)}")
        self.realm = realm
        self.lifetime = lifetime
        self.clock = clock
        self.algorithms = algorithms
        self._key = key or os.urandom(32)
        self._counts: OrderedDict[str, int] = OrderedDict()

    # -- nonces ---------------------------------------------------------------------------

    def new_nonce(self) -> str:
        stamp = int(self.clock()).to_bytes(8, "big")
        salt = secrets.token_bytes(8)
        mac = hmac.digest(self._key, stamp + salt, "sha256")[:16]
        return base64.urlsafe_b64encode(stamp + salt + mac).decode().rstrip("=")

    def _nonce_age(self, nonce: str) -> float | None:
        """Seconds since we issued ``nonce``; None if we did not issue it."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, TypeError):
            return None
        if len(raw) != 32:
            return None
        stamp, salt, mac = raw[:8], raw[8:16], raw[16:]
        if not hmac.compare_digest(mac, hmac.digest(self._key, stamp + salt, "sha256")[:16]):
            return None
        return self.clock() - int.from_bytes(stamp, "big")

    def challenges(self, stale: bool = False) -> list[str]:
        """WWW-Authenticate / Proxy-Authenticate values, one per algorithm, same nonce."""
        nonce = self.new_nonce()
        tail = ", stale=true" if stale else ""
        return [
            f"Digest realm={_quote(self.realm)}, nonce={_quote(nonce)}, algorithm={alg}, "
            f'qop="auth"{tail}'
            for alg in self.algorithms
        ]

    # -- verification ---------------------------------------------------------------------

    def verify(
        self,
        credentials: Credentials,
        method: str,
        password_for: Callable[[str], str | None],
    ) -> Verdict:
        """Check credentials for ``method``; ``password_for(username)`` looks the user up."""
        if credentials.scheme.lower() != "digest":
            return Verdict(False, reason="not a Digest scheme")
        p = credentials.params
        username, realm, nonce = p.get("username"), p.get("realm"), p.get("nonce")
        uri, response = p.get("uri"), p.get("response")
        if not (username and realm is not None and nonce and uri and response):
            return Verdict(False, reason="missing digest parameters")
        if realm != self.realm:
            return Verdict(False, reason="wrong realm", username=username)
        algorithm = p.get("algorithm", "MD5")
        canonical = next((a for a in self.algorithms if a.lower() == algorithm.lower()), None)
        if canonical is None:
            return Verdict(False, reason=f"algorithm {algorithm} not offered", username=username)
        qop = p.get("qop")
        nc = p.get("nc")
        cnonce = p.get("cnonce")
        if qop is not None and (qop != "auth" or not nc or not cnonce):
            return Verdict(False, reason="qop=auth needs nc and cnonce", username=username)
        age = self._nonce_age(nonce)
        if age is None or age < -5:
            return Verdict(False, reason="unknown nonce", username=username)
        password = password_for(username)
        if password is None:
            # same work as a real check, so response time does not tell which users exist
            response_digest(canonical, username, realm, "", method, uri, nonce, nc, cnonce, qop)
            return Verdict(False, reason="unknown user", username=username)
        expected = response_digest(
            canonical, username, realm, password, method, uri, nonce, nc, cnonce, qop
        )
        if not hmac.compare_digest(expected.encode(), response.lower().encode()):
            return Verdict(False, reason="wrong password", username=username)
        if age > self.lifetime:
            return Verdict(False, stale=True, reason="nonce expired", username=username)
        if qop is not None and not self._count_ok(nonce, nc or ""):
            return Verdict(False, reason="nonce count replayed", username=username)
        return Verdict(True, username=username)

    def _count_ok(self, nonce: str, nc: str) -> bool:
        """Each use of a nonce must carry a higher nonce-count than the last (no replay)."""
        try:
            count = int(nc, 16)
        except ValueError:
            return False
        if len(nc) != 8 or count <= self._counts.get(nonce, 0):
            return False
        self._counts[nonce] = count
        self._counts.move_to_end(nonce)
        while len(self._counts) > MAX_TRACKED_NONCES:
            self._counts.popitem(last=False)
        return True
