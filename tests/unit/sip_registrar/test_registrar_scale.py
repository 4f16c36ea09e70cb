"""10,000 registrations: memory per contact and REGISTERs/s, printed (run with ``-s``).

Not timed assertions (machines differ); the figures are for the engineer reading the
output. What is asserted: everything registered, lookups find it, a restart reloads it,
and memory per contact stays within a budget that lets a box hold far more than 500 phones.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from pathlib import Path

import pytest

from firmware.sip import Request, parse_message
from firmware.sip.digest import DigestAuthenticator, response_digest
from firmware.sip.location import DB_NAME, LocationService
from firmware.sip.peer import Peer
from firmware.sip.registrar import Registrar

from .conftest import REALM, Clock

pytestmark = pytest.mark.slow

N = 10_000


def extension(i: int) -> str:
    return str(20000 + i)


def host(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def message(i: int, nonce: str, nc: int, cseq: int) -> bytes:
    ext, ip = extension(i), host(i)
    nc_text = f"{nc:08x}"
    digest = response_digest(
        "SHA-256", ext, REALM, f"pw-{ext}-secret", "REGISTER", "sip:pbx.local", nonce, nc_text,
        "8a3f0c11", "auth",
    )  # fmt: skip
    return (
        f"REGISTER sip:pbx.local SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {ip}:5060;branch=z9hG4bK-{i}-{cseq}-a8b2c;rport\r\n"
        f"Max-Forwards: 70\r\n"
        f'From: "Agent {ext}" <sip:{ext}@pbx.local>;tag=f{i:08x}\r\n'
        f"To: <sip:{ext}@pbx.local>\r\n"
        f"Call-ID: 0_{i:010d}-4c7a9e1b@{ip}\r\n"
        f"CSeq: {cseq} REGISTER\r\n"
        f'Contact: <sip:{ext}@{ip}:5060;transport=udp>;+sip.instance="<urn:uuid:00000000-0000-'
        f'1000-8000-{i:012x}>";reg-id=1\r\n'
        f"Expires: 3600\r\n"
        f"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, UPDATE\r\n"
        f"User-Agent: Yealink SIP-T54W 96.86.0.100\r\n"
        f'Authorization: Digest username="{ext}", realm="{REALM}", nonce="{nonce}", '
        f'uri="sip:pbx.local", response="{digest}", algorithm=SHA-256, qop=auth, nc={nc_text}, '
        f'cnonce="8a3f0c11"\r\n'
        f"Content-Length: 0\r\n\r\n"
    ).encode()


class Rig:
    def __init__(self, path: Path, clock: Clock, synchronous: str = "NORMAL") -> None:
        self.passwords = {extension(i): f"pw-{extension(i)}-secret" for i in range(N)}
        self.location = LocationService(path, clock=clock, synchronous=synchronous)  # type: ignore[arg-type]
        self.auth = DigestAuthenticator(REALM, clock=clock)
        self.registrar = Registrar(self.location, self.auth, self.passwords.get, clock=clock)
        self.nonce = self.auth.new_nonce()
        self.nc = 0

    def batch(self, count: int, cseq: int) -> list[bytes]:
        out = []
        for i in range(count):
            self.nc += 1
            out.append(message(i, self.nonce, self.nc, cseq))
        return out

    def run(self, wire: list[bytes]) -> float:
        """Parse, handle and serialize every REGISTER; returns REGISTERs/s."""
        handle = self.registrar.handle
        began = time.perf_counter()
        for i, data in enumerate(wire):
            request = parse_message(data)
            assert isinstance(request, Request)
            response = handle(request, Peer("udp", host(i), 5060))
            response.to_bytes()
        elapsed = time.perf_counter() - began
        assert self.registrar.stats["registered"] >= len(wire), self.registrar.stats
        return len(wire) / elapsed


def test_ten_thousand_registrations(tmp_path: Path) -> None:
    clock = Clock()
    rig = Rig(tmp_path / DB_NAME, clock)
    first = rig.run(rig.batch(N, 1))
    assert len(rig.location) == N
    clock.advance(1800)
    refresh = rig.run(rig.batch(N, 2))
    assert len(rig.location) == N

    lookups = [extension(i) for i in range(0, N, 7)]
    began = time.perf_counter()
    for _ in range(20):
        for aor in lookups:
            assert rig.location.contacts(aor)
    lookup_rate = 20 * len(lookups) / (time.perf_counter() - began)
    rig.location.close()

    began = time.perf_counter()
    reloaded = LocationService(tmp_path / DB_NAME, clock=clock)
    load_s = time.perf_counter() - began
    assert len(reloaded) == N
    clock.advance(3601)
    began = time.perf_counter()
    assert len(reloaded.sweep()) == N
    sweep_s = time.perf_counter() - began
    reloaded.close()

    # the same with fsync on every commit, for comparison (2,000 is enough to see it)
    full = Rig(tmp_path / "full.db", Clock(), "FULL")
    full_rate = full.run(full.batch(2000, 1))
    full.location.close()

    print(
        f"\nregistrar, {N:,} phones (parse + digest + store + serialize, synchronous=NORMAL): "
        f"first REGISTER {first:,.0f}/s, refresh {refresh:,.0f}/s; "
        f"synchronous=FULL {full_rate:,.0f}/s\n"
        f"location: {lookup_rate:,.0f} lookups/s, reload of {N:,} bindings {load_s * 1000:.0f} ms, "
        f"sweep of {N:,} lapsed {sweep_s * 1000:.0f} ms"
    )


def test_memory_per_contact(tmp_path: Path) -> None:
    clock = Clock()
    rig = Rig(tmp_path / DB_NAME, clock)
    wire = rig.batch(N, 1)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        rig.run(wire)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    per_contact = (after - before) / N
    print(
        f"\nlocation memory: {per_contact:,.0f} B per contact "
        f"({(after - before) / 2**20:.1f} MiB for {N:,}, Python heap; SQLite page cache apart)"
    )
    assert len(rig.location) == N
    assert per_contact < 2048
    rig.location.close()
