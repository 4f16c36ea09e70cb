"""Baresip: baresip 1.0 as a headless SIP phone in a subprocess, driven over its menu on stdin.

baresip (libre) is a SIP stack we did not write, so a call with it checks the box against an
independent reading of the RFCs. Facts this driver relies on (baresip 1.0.0, Debian):

- Without a sound card it needs `aufile` as the source and `aubridge,nil` as the player.
  When the aufile WAV ends, the `menu` module hangs the call up ("audio error (0,end of
  file)"): give it a WAV longer than the call.
- The `stdio` module reads menu commands ("/dial URI", "/hangup", "/quit") from stdin and
  refuses a non-pollable stdin such as /dev/null, so stdin is a pipe.
- libre answers a 401 carrying an `algorithm=SHA-256` challenge with ENOSYS ("Register:
  Function not implemented") even when an MD5 challenge follows: the box must offer MD5 only.
- `net_interface 127.0.0.1` keeps it from advertising another address in Contact and SDP.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from pathlib import Path

MODULES = ("stdio", "g711", "aufile", "aubridge", "account", "menu")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Baresip:
    """One baresip user agent with one registering account, its config under ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        *,
        user: str,
        password: str,
        registrar: str,
        port: int,
        audio: Path | None = None,
    ) -> None:
        """``registrar`` is host:port of the box; ``audio`` an 8 kHz mono WAV to send."""
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        source = f"aufile,{audio}" if audio is not None else "aubridge,nil"
        config = [
            "poll_method epoll",
            f"sip_listen 127.0.0.1:{port}",
            "net_interface 127.0.0.1",
            f"audio_source {source}",
            "audio_player aubridge,nil",
            "audio_alert aubridge,nil",
            "module_path /usr/lib/baresip/modules",
            *(f"module {name}.so" for name in MODULES),
        ]
        (workdir / "config").write_text("\n".join(config) + "\n")
        # regint=600: one REGISTER per test, no refresh while it runs
        (workdir / "accounts").write_text(
            f"<sip:{user}@{registrar}>;auth_pass={password};regint=600\n"
        )
        self.proc = subprocess.Popen(
            ["baresip", "-f", str(workdir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        self.output = ""  # everything printed so far, colour codes removed
        self._seen = 0  # wait_for searches after the end of its last match
        self._raw = b""
        try:
            self.wait_for(r"baresip is ready")
        except BaseException:
            self.close()
            raise

    def _read(self, timeout: float) -> bool:
        """Append what baresip printed within ``timeout``; False once it has exited."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        readable, _, _ = select.select([fd], [], [], timeout)
        if not readable:
            return True
        chunk = os.read(fd, 65536)
        if not chunk:
            return False
        self._raw += chunk
        self.output = ANSI.sub("", self._raw.decode(errors="replace"))
        return True

    def wait_for(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        """The next match of the regex ``pattern`` in the output (bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            match = regex.search(self.output, self._seen)
            if match:
                self._seen = match.end()
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(min(remaining, 0.2)):
                state = "exited" if self.proc.poll() is not None else "running"
                raise AssertionError(
                    f"baresip ({state}) printed no {pattern!r} within {timeout} s:\n"
                    + self.output[-3000:]
                )

    def command(self, line: str) -> None:
        """Type a menu command, e.g. "/dial sip:201@127.0.0.1:5060" or "/hangup"."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def wait_registered(self, timeout: float = 20) -> None:
        """Until the account's REGISTER got its 200 (after the digest challenge)."""
        self.wait_for(r"useragent registered successfully", timeout)

    def close(self) -> None:
        """/quit, then SIGTERM, then SIGKILL: never leaves the process behind."""
        if self.proc.poll() is None:
            try:
                self.command("/quit")
                self.proc.wait(5)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.terminate()
                try:
                    self.proc.wait(3)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
