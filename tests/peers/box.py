"""A real daemon (`skillepunkt run --board sim`) in a subprocess, for whole-box and interop tests."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (SIP listens on both)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no port free for TCP and UDP on 127.0.0.1")


def get_json(url: str, timeout: float = 5) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    data: Path
    web: str
    notify: socket.socket
    log: Path
    sip_port: int = 0
    sip_tls_port: int = 0
    messages: list[bytes] = field(default_factory=list)

    def healthz(self) -> tuple[int, Any]:
        return get_json(self.web + "/healthz")

    def wait_healthy(self, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"daemon exited: {self.log.read_text()[-3000:]}"
            try:
                status, last = self.healthz()
                if status == 200 and last["status"] == "ok":
                    return dict(last)
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"not healthy after {timeout} s: {last}")

    def notifications(self, timeout: float = 0.0) -> list[bytes]:
        """Every sd_notify datagram received so far (waiting up to ``timeout`` for one more)."""
        self.notify.settimeout(timeout or 0.001)
        try:
            while True:
                self.messages.append(self.notify.recv(4096))
                self.notify.settimeout(0.001)
        except (TimeoutError, BlockingIOError):
            pass
        return self.messages

    @property
    def console_path(self) -> str:
        return (self.data / "console.pty").read_text().strip()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "firmware.cli", *args, "--data", str(self.data)],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


def _ephemeral_low() -> int:
    """Where the kernel starts handing out ephemeral ports (`free_port` draws from there)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def rtp_range(size: int = 400) -> str:
    """A media port range of its own for each test daemon (several run side by side),
    below the ephemeral range, so a daemon's relay never takes a port `free_port` gave
    to its own SIP listener or to a peer."""
    low, high = 20000, min(_ephemeral_low(), 65536) - size
    first = low + 2 * random.randrange(0, max(1, (high - low) // 2))
    return f"{first}-{first + size - 1}"


def start_daemon(
    tmp_path: Path,
    config: str | None = None,
    *,
    watchdog: bool = False,
    rtp_ports: str | None = None,
) -> Daemon:
    """Start the box on free ports with its data under ``tmp_path``; ``config`` is YAML
    imported first (as an installer would with `skillepunkt config import`)."""
    data = tmp_path / "data"
    if config is not None:
        doc = tmp_path / "config.yaml"
        doc.write_text(config)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "firmware.cli",
                "config",
                "import",
                str(doc),
                "--data",
                str(data),
            ],
            check=True,
            capture_output=True,
        )
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    port = free_port()
    ports = {"sip": free_port(), "sip_tls": free_port()}
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
    env.pop("WATCHDOG_PID", None)
    env.pop("WATCHDOG_USEC", None)
    if watchdog:
        env["WATCHDOG_USEC"] = "400000"
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "firmware.cli", "run", "--board", "sim",
                "--data", str(data), "--web-port", str(port),
                "--sip-port", str(ports["sip"]), "--sip-tls-port", str(ports["sip_tls"]),
                "--tftp-port", str(free_port()),
                "--rtp-ports", rtp_ports or rtp_range(),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )  # fmt: skip
    return Daemon(
        proc,
        data,
        f"http://127.0.0.1:{port}",
        notify,
        log,
        sip_port=ports["sip"],
        sip_tls_port=ports["sip_tls"],
    )


def stop_daemon(d: Daemon) -> None:
    if d.proc.poll() is None:
        d.proc.kill()
        d.proc.wait()
    d.notify.close()
