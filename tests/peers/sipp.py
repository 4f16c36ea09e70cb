"""SIPp 3.6 (Debian ``sip-tester``) as a test peer: start it, wait for it with a bound,
read back what it did (exit code, statistics, the SIP messages it sent and received,
its error log), and never leave it running.

Each run gets a directory of its own under the runner's work directory, so several
SIPp instances (a UAC and a UAS around the box) never mix their files:
``messages.log`` (``-trace_msg``), ``errors.log`` (``-trace_err``), ``stats.csv``
(``-trace_stat``) and ``out.txt`` (its screen output).

SIPp's exit code: 0 every call succeeded, 1 at least one failed, 97 stopped by an
internal command, 99 no call processed, 255/254 fatal error (254: could not bind).
"""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

LOCAL_IP = "127.0.0.1"
SIPP = "sipp"
# a block of SIPp's message log: "------ <time>\nUDP message sent (N bytes):\n\n<message>"
# or "... message received [N] bytes :"
_LOG_ENTRY = re.compile(
    r"^-{20,}[^\n]*\n(?:UDP|TCP|TLS|SCTP) message (sent|received) "
    r"(?:\(\d+ bytes\)|\[\d+\] bytes ):\n\n",
    re.MULTILINE,
)
_LOST_RECV = re.compile(r"message (?:\(retrans\) )?lost \(recv\)\.")
_NOTES = re.compile(
    r"(?:UDP|TCP|TLS|SCTP) message (?:\(retrans\) )?(?:voluntary )?lost \([^)]*\)\."
)


def free_udp_ports(count: int = 1) -> int:
    """The first of ``count`` consecutive UDP ports free on 127.0.0.1 (SIPp's ``-mp``
    binds the media port and the ones above it)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((LOCAL_IP, 0))
            base = int(probe.getsockname()[1])
        if base + count > 65535:
            continue
        held: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(s)
                s.bind((LOCAL_IP, port))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError("no free UDP ports on 127.0.0.1")


def bound_udp_ports() -> set[int]:
    """Local ports of every IPv4 UDP socket on this machine (from /proc/net/udp)."""
    ports = set()
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) > 1:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@dataclass(frozen=True)
class SipMessage:
    """One SIP message as SIPp logged it."""

    direction: str  # "sent" or "received"
    text: str
    lost: bool = False  # received, then dropped by SIPp itself (-lost)

    @property
    def start_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    @property
    def status(self) -> int | None:
        """The status code of a response, None for a request."""
        parts = self.start_line.split(" ", 2)
        if parts[0] == "SIP/2.0" and len(parts) > 1 and parts[1].isdigit():
            return int(parts[1])
        return None

    @property
    def method(self) -> str:
        """The request's method, or the CSeq method of a response."""
        if self.status is None:
            return self.start_line.split(" ", 1)[0]
        return (self.header("CSeq") or " ").split()[-1]

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive; compact forms not known)."""
        head = self.text.split("\n\n", 1)[0].replace("\r", "")
        for line in head.split("\n")[1:]:
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() == name.lower():
                return value.strip()
        return None

    @property
    def body(self) -> str:
        parts = self.text.replace("\r", "").split("\n\n", 1)
        return parts[1] if len(parts) == 2 else ""

    def __str__(self) -> str:
        return f"[{self.direction}{', dropped' if self.lost else ''}] {self.text}"


def parse_message_log(text: str) -> list[SipMessage]:
    """The messages of a SIPp ``-trace_msg`` log, in order. A message SIPp dropped on
    receipt (``-lost``) is kept with ``lost`` set; one it dropped instead of sending
    is not in the log at all (only a note, which is removed)."""
    marks = list(_LOG_ENTRY.finditer(text))
    out = []
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[mark.end() : end]
        # SIPp's own notes follow a message: a separator line, or text glued to its end
        body = body.split("\n-----", 1)[0]
        lost = bool(_LOST_RECV.search(body))
        body = _NOTES.sub("", body)
        out.append(SipMessage(mark.group(1), body.strip("\n") + "\n", lost))
    return out


def read_stats(path: Path) -> dict[str, str]:
    """The newest complete row of a SIPp ``-trace_stat`` CSV file, by column name."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    if len(lines) < 2:
        return {}
    header = lines[0].rstrip(";").split(";")
    for line in reversed(lines[1:]):
        row = line.rstrip(";").split(";")
        if len(row) == len(header):
            return dict(zip(header, row, strict=True))
    return {}


@dataclass
class SippResult:
    """What one SIPp run did."""

    name: str
    returncode: int | None
    stats: dict[str, str]
    messages: list[SipMessage]
    errors: str
    output: str

    def count(self, column: str) -> int:
        """A counter from the statistics (e.g. ``SuccessfulCall(C)``), 0 if absent."""
        try:
            return int(self.stats.get(column, "0") or 0)
        except ValueError:
            return 0

    @property
    def successful(self) -> int:
        return self.count("SuccessfulCall(C)")

    @property
    def failed(self) -> int:
        return self.count("FailedCall(C)")

    def received(self, *, status: int | None = None, method: str | None = None) -> list[SipMessage]:
        """Messages that reached SIPp (those -lost made it drop included: they were on
        the wire), optionally of one status and/or (CSeq) method."""
        return self._select("received", status, method)

    def sent(self, *, status: int | None = None, method: str | None = None) -> list[SipMessage]:
        """Messages SIPp sent (not those -lost made it drop before sending)."""
        return self._select("sent", status, method)

    def _select(self, direction: str, status: int | None, method: str | None) -> list[SipMessage]:
        return [
            m
            for m in self.messages
            if m.direction == direction
            and (status is None or m.status == status)
            and (method is None or m.method == method)
        ]

    def describe(self, messages: int = 8) -> str:
        """A summary for assertion messages: exit code, counters, errors, last messages."""
        tail = "\n".join(str(m) for m in self.messages[-messages:])
        return (
            f"SIPp {self.name}: exit {self.returncode}, successful {self.successful}, "
            f"failed {self.failed}\n--- errors:\n{self.errors[:2500]}\n"
            f"--- last messages:\n{tail[-4000:]}\n--- output:\n{self.output[-1500:]}"
        )


@dataclass
class SippProcess:
    """A running SIPp instance and its files."""

    name: str
    proc: subprocess.Popen[bytes]
    folder: Path

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGTERM (SIPp writes its final statistics), SIGKILL after 3 s."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(5)

    def result(self) -> SippResult:
        """What the run did so far (complete once it has exited)."""

        def read(name: str) -> str:
            with contextlib.suppress(OSError):
                return (self.folder / name).read_text(errors="replace")
            return ""

        return SippResult(
            self.name,
            self.proc.poll(),
            read_stats(self.folder / "stats.csv"),
            parse_message_log(read("messages.log")),
            read("errors.log"),
            read("out.txt"),
        )

    def wait(self, timeout: float) -> SippResult:
        """Its result once it exits; killed and AssertionError after ``timeout`` s."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"SIPp {self.name} still running after {timeout} s\n{self.result().describe()}"
            ) from None
        return self.result()

    def collect(self, timeout: float) -> SippResult:
        """Its result after it exits, or after ``timeout`` s (then stopped first): for a
        peer whose failure the caller wants to judge from its messages."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.result()

    def wait_listening(self, port: int, timeout: float = 15) -> None:
        """Until its UDP socket on ``port`` is bound (a UAS ready for calls)."""
        deadline = time.monotonic() + timeout
        while port not in bound_udp_ports():
            if self.proc.poll() is not None:
                raise AssertionError(f"SIPp {self.name} exited\n{self.result().describe()}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"SIPp {self.name} did not bind UDP port {port}")
            time.sleep(0.05)


@dataclass
class SippRunner:
    """Starts SIPp instances on 127.0.0.1 with their files under ``work``; ``close()``
    (or leaving the ``with`` block) stops every one still running."""

    work: Path
    processes: list[SippProcess] = field(default_factory=list)

    def start(
        self,
        name: str,
        *args: str,
        scenario: Path | str,
        target: str | None = None,
        port: int,
        media_port: int | None = None,
        calls: int = 1,
        rate: float | None = None,
        timeout_s: float = 60,
        trace: bool = True,
    ) -> SippProcess:
        """Start SIPp with ``scenario`` (a file, or a built-in name such as ``uas``) on
        SIP port ``port``, toward ``target`` (host:port; none for a UAS). It stops by
        itself after ``calls`` calls or ``timeout_s`` seconds (then failing)."""
        folder = self.work / name
        if folder.exists():
            raise ValueError(f"SIPp run {name!r} already exists")
        folder.mkdir(parents=True)
        scen = Path(scenario)
        scenario_args = ["-sf", str(scen)] if scen.suffix == ".xml" else ["-sn", str(scenario)]
        cmd = [
            SIPP,
            *([target] if target else []),
            *scenario_args,
            "-i", LOCAL_IP, "-p", str(port),
            "-mp", str(media_port or free_udp_ports(4)),
            "-m", str(calls),
            *(["-r", f"{rate:g}", "-rp", "1000"] if rate is not None else []),
            "-timeout", f"{timeout_s:g}s", "-timeout_error",
            "-nostdin",
            "-trace_err", "-error_file", str(folder / "errors.log"),
            "-trace_stat", "-stf", str(folder / "stats.csv"), "-fd", "1",
            *(["-trace_msg", "-message_file", str(folder / "messages.log")] if trace else []),
            *args,
        ]  # fmt: skip
        (folder / "command.txt").write_text(" ".join(cmd) + "\n")
        with (folder / "out.txt").open("wb") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=folder,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        run = SippProcess(name, proc, folder)
        self.processes.append(run)
        return run

    def run(self, name: str, *args: str, wait: float = 90, **kwargs: Any) -> SippResult:
        """Start and wait (at most ``wait`` s): for a UAC that should finish by itself."""
        return self.start(name, *args, **kwargs).wait(wait)

    def close(self) -> None:
        for run in self.processes:
            run.kill()

    def __enter__(self) -> SippRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
