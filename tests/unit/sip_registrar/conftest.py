"""Helpers of the registrar tests: a fake clock, REGISTER text, and a phone doing digest.

Requests are built as wire text and parsed with the real parser, so the registrar sees
exactly what a transport would hand it. The phone computes its answers with
`response_digest` (the client side of RFC 3261 §22), not with the authenticator.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from firmware.sip import Request, Response, parse_message
from firmware.sip.digest import DigestAuthenticator, parse_credentials, response_digest
from firmware.sip.location import LocationService
from firmware.sip.peer import Peer
from firmware.sip.registrar import Registrar, RegistrarSettings

REALM = "skillepunkt"
PASSWORDS = {"101": "anne-secret-1", "102": "bo-secret-22", "103": "carl-secret-333"}
_branches = itertools.count(1)


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def register(
    ext: str = "101",
    *,
    contacts: Sequence[str] = ("<sip:101@192.168.1.50:5060>",),
    call_id: str = "reg-101@192.168.1.50",
    cseq: int = 1,
    expires: int | str | None = None,
    authorization: str | None = None,
    uri: str = "sip:pbx.local",
    to: str | None = None,
    extra: Sequence[str] = (),
) -> Request:
    """A REGISTER as a phone would put it on the wire, parsed."""
    lines = [
        f"REGISTER {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP 192.168.1.50:5060;branch=z9hG4bK{next(_branches)};rport",
        "Max-Forwards: 70",
        f"From: <sip:{ext}@pbx.local>;tag=ft{ext}",
        f"To: {to or f'<sip:{ext}@pbx.local>'}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        "User-Agent: Yealink SIP-T54W 96.86.0.100",
    ]
    lines += [f"Contact: {c}" for c in contacts]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if authorization is not None:
        lines.append(f"Authorization: {authorization}")
    lines += extra
    lines.append("Content-Length: 0")
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def challenge_params(response: Response, algorithm: str) -> dict[str, str]:
    """The WWW-Authenticate parameters offered for ``algorithm``."""
    for value in response.headers.get_all("WWW-Authenticate"):
        params = parse_credentials(value).params
        if params.get("algorithm") == algorithm:
            return params
    raise AssertionError(f"no {algorithm} challenge in {response.headers!r}")


def authorization(
    challenge: dict[str, str],
    username: str,
    password: str,
    *,
    nc: int = 1,
    uri: str = "sip:pbx.local",
    algorithm: str | None = None,
) -> str:
    """The Authorization value answering ``challenge`` (qop=auth)."""
    algorithm = algorithm or challenge["algorithm"]
    nc_text = f"{nc:08x}"
    response = response_digest(
        algorithm, username, challenge["realm"], password, "REGISTER", uri,
        challenge["nonce"], nc_text, "0a4f113b", "auth",
    )  # fmt: skip
    return (
        f'Digest username="{username}", realm="{challenge["realm"]}", '
        f'nonce="{challenge["nonce"]}", uri="{uri}", response="{response}", '
        f'algorithm={algorithm}, qop=auth, nc={nc_text}, cnonce="0a4f113b"'
    )


class Phone:
    """A SIP phone registering one extension: 401, then the same REGISTER with credentials."""

    def __init__(
        self,
        ext: str = "101",
        *,
        password: str | None = None,
        host: str = "192.168.1.50",
        port: int = 5060,
        algorithm: str = "SHA-256",
        username: str | None = None,
    ) -> None:
        self.ext = ext
        self.username = username or ext
        self.password = PASSWORDS.get(self.username, "") if password is None else password
        self.peer = Peer("udp", host, port)
        self.algorithm = algorithm
        self.call_id = f"reg-{ext}-{host}-{port}@phone"
        self.cseq = 0
        self.contact = f"<sip:{ext}@{host}:{port}>"

    def send(self, registrar: Registrar, **kwargs: object) -> Response:
        """One REGISTER (next CSeq) without credentials unless given."""
        self.cseq += 1
        kwargs.setdefault("contacts", (self.contact,))
        request = register(self.ext, call_id=self.call_id, cseq=self.cseq, **kwargs)  # type: ignore[arg-type]
        return registrar.handle(request, self.peer)

    def register(self, registrar: Registrar, **kwargs: object) -> Response:
        """The whole exchange: challenge, then credentials. Returns the final response."""
        first = self.send(registrar, **kwargs)
        if first.status != 401:
            return first
        challenge = challenge_params(first, self.algorithm)
        auth = authorization(challenge, self.username, self.password)
        return self.send(registrar, authorization=auth, **kwargs)


class World:
    """A registrar with its location service, users and clock, as the daemon wires them."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        settings: RegistrarSettings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock or Clock()
        self.passwords = dict(PASSWORDS)
        self.location = LocationService(path, clock=self.clock)
        self.auth = DigestAuthenticator(REALM, clock=self.clock)
        self.registrar = Registrar(
            self.location, self.auth, self.passwords.get, clock=self.clock, settings=settings
        )

    def close(self) -> None:
        self.location.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "location.db")
    yield w
    w.close()


def contact_expires(response: Response) -> dict[str, int]:
    """Contact URI -> expires of a 200 OK."""
    out: dict[str, int] = {}
    for value in response.headers.get_all("Contact"):
        uri, _, params = value.partition(">")
        expires = [p for p in params.split(";") if p.startswith("expires=")]
        out[uri.lstrip("<")] = int(expires[0].split("=")[1])
    return out
