"""SIPp around the box, for interop tests: the box with a trunk (a SIPp caller trusted
by its address) and extensions 101/201 (SIPp callees register with MD5 digest), a
runner for SIPp instances, and a check that no call is left up afterwards (every CDR
closed, and a BYE into any dialog either SIPp had with the box gets 481).
"""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from peers.box import Daemon, rtp_range, start_daemon, stop_daemon
from peers.sipp import SippProcess, SippResult, SippRunner, bound_udp_ports, free_udp_ports

SCENARIOS = Path(__file__).resolve().parents[1] / "integration" / "sip" / "scenarios"
CALLER = "4533221100"  # the trunk caller's number
PASSWORDS = {"101": "pass-101-secret", "201": "pass-201-secret"}


@dataclass
class Rig:
    """The box, a SIPp runner, the trunk caller's port and the box's media port range."""

    box: Daemon
    sipp: SippRunner
    trunk_port: int
    rtp: tuple[int, int]
    work: Path

    # -- SIPp on each side ------------------------------------------------------------

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.box.sip_port}"

    def register(self, extension: str, port: int, name: str = "") -> SippResult:
        """REGISTER ``extension`` with digest auth from ``port`` (the callee answers there)."""
        users = self.work / f"users-{extension}-{port}.csv"
        users.write_text(f"SEQUENTIAL\n{extension};\n")
        result = self.sipp.run(
            name or f"register-{extension}-{port}",
            "-inf", str(users), "-au", extension, "-ap", PASSWORDS[extension],
            scenario=SCENARIOS / "register.xml", target=self.target, port=port, timeout_s=30,
        )  # fmt: skip
        assert result.returncode == 0 and result.successful == 1, result.describe()
        return result

    def callee(
        self,
        scenario: str,
        *args: str,
        calls: int = 1,
        name: str = "b",
        timeout_s: float = 60,
    ) -> SippProcess:
        """SIPp B: registers as 201, then answers ``calls`` calls with ``scenario`` from
        the port it registered from (where the box sends INVITEs)."""
        port = free_udp_ports()
        self.register("201", port, name=f"{name}-register")
        uas = self.sipp.start(
            name, *args, scenario=SCENARIOS / scenario, port=port, calls=calls,
            timeout_s=timeout_s,
        )  # fmt: skip
        uas.wait_listening(port)
        return uas

    def caller(
        self,
        scenario: str,
        *args: str,
        calls: int = 1,
        name: str = "a",
        rate: float = 5,
        timeout_s: float = 60,
    ) -> SippProcess:
        """SIPp A on the trunk's address (trusted, no digest) calling 201."""
        return self.sipp.start(
            name, "-s", "201", "-key", "caller", CALLER, *args,
            scenario=SCENARIOS / scenario, target=self.target, port=self.trunk_port,
            calls=calls, rate=rate, timeout_s=timeout_s,
        )  # fmt: skip

    # -- the box afterwards -----------------------------------------------------------

    def cdrs(self) -> list[sqlite3.Row]:
        db = sqlite3.connect(f"file:{self.box.data / 'cdr.db'}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        try:
            return db.execute("SELECT * FROM calls ORDER BY id").fetchall()
        finally:
            db.close()

    def wait_idle(self, calls: int, *peers: SippResult, timeout: float = 40) -> list[sqlite3.Row]:
        """The box's CDRs once ``calls`` of them are there and all closed, after checking
        that no call is left up: every dialog the ``peers`` had with the box is gone
        (a BYE into it gets 481, RFC 3261 12.2.2)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.cdrs()
            open_rows = [r for r in rows if r["end_epoch"] is None]
            if len(rows) >= calls and not open_rows:
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"CDRs after {timeout} s: {len(rows)} ({len(open_rows)} open, {calls} "
                    f"expected)\n" + self.box.log.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.2)
        for peer in peers:
            for call_id, (party_tag, box_tag) in dialogs_with_box(peer).items():
                status = probe_bye(self.box.sip_port, call_id, party_tag, box_tag)
                assert status == 481, (
                    f"{peer.name}: dialog {call_id} still up at the box ({status})"
                )
        return rows


def tag_of(header: str | None) -> str | None:
    found = re.search(r";tag=([^;>\s]+)", header or "")
    return found.group(1) if found else None


def dialogs_with_box(result: SippResult) -> dict[str, tuple[str, str]]:
    """Call-ID -> (the SIPp side's tag, the box's tag) of each call SIPp had with the
    box, from its message log (as UAC: the INVITEs it sent; as UAS: those it got)."""
    out: dict[str, tuple[str, str]] = {}
    for m in result.messages:
        call_id = m.header("Call-ID") or ""
        if m.method != "INVITE" or m.status is not None or call_id in out:
            continue
        # the answerer's To-tag: the box's when SIPp sent the INVITE, SIPp's own if it got it
        answers = result.received if m.direction == "sent" else result.sent
        answer_tag = next(
            (
                tag
                for r in answers(method="INVITE")
                if r.header("Call-ID") == call_id and (tag := tag_of(r.header("To")))
            ),
            None,
        )
        invite_tag = tag_of(m.header("From"))
        if answer_tag and invite_tag:
            sipp_side = m.direction == "sent"
            out[call_id] = (invite_tag, answer_tag) if sipp_side else (answer_tag, invite_tag)
    return out


def probe_bye(box_port: int, call_id: str, party_tag: str, box_tag: str) -> int | None:
    """Send a BYE into a dialog (From: the party's tag, To: the box's) from a socket of
    our own; the status of the final answer, None if none came (3 tries, 2 s each)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        bye = (
            f"BYE sip:probe@127.0.0.1:{box_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-probe{secrets.token_hex(6)};rport\r\n"
            f"From: <sip:probe@127.0.0.1>;tag={party_tag}\r\n"
            f"To: <sip:probe@127.0.0.1>;tag={box_tag}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 999999 BYE\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        sock.settimeout(2)
        for _ in range(3):
            sock.sendto(bye, ("127.0.0.1", box_port))
            try:
                while True:
                    parts = sock.recv(65535).decode(errors="replace").split(" ", 2)
                    if parts[0] == "SIP/2.0" and parts[1].isdigit() and int(parts[1]) >= 200:
                        return int(parts[1])
            except TimeoutError:
                continue
    return None


def box_config(trunk_port: int, *, music_on_hold: bool = False) -> str:
    users = "".join(
        f'  - {{extension: "{ext}", name: User {ext}, sip_password: "{pw}"}}\n'
        for ext, pw in PASSWORDS.items()
    )
    return (
        f"users:\n{users}"
        f"trunks:\n  - {{name: carrier, host: 127.0.0.1, port: {trunk_port}, registration: false}}\n"
        # SIPp 3.6 knows MD5 only; by default holds are passed on as re-INVITEs (what the
        # B2BUA tests check), not answered with music
        f"sip: {{digest_algorithms: [MD5], music_on_hold: {str(music_on_hold).lower()}}}\n"
    )


def media_range(size: int = 400) -> tuple[int, int]:
    """A media port range for the box (`peers.box.rtp_range`: below the ephemeral ports)
    that no UDP socket on this machine uses right now: the machine is shared, and
    benchmarks run rtpengine and relays on port ranges of their own."""
    busy = bound_udp_ports()
    for _ in range(100):
        first, last = (int(p) for p in rtp_range(size).split("-"))
        if not busy.intersection(range(first, last + 1)):
            return first, last
    raise RuntimeError(f"no free range of {size} UDP ports below the ephemeral range")


@contextlib.contextmanager
def running_rig(tmp_path: Path, *, music_on_hold: bool = False) -> Iterator[Rig]:
    """The box and a SIPp runner; everything stopped on leaving."""
    trunk_port = free_udp_ports()
    first, last = media_range()
    config = box_config(trunk_port, music_on_hold=music_on_hold)
    box = start_daemon(tmp_path, config, rtp_ports=f"{first}-{last}")
    sipp = SippRunner(tmp_path / "sipp")
    try:
        box.wait_healthy()
        yield Rig(box, sipp, trunk_port, (first, last), tmp_path)
    finally:
        sipp.close()
        stop_daemon(box)
