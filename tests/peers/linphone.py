"""Linphonec: linphone's console client (liblinphone 5.1) in a subprocess, driven over stdin.

liblinphone/belle-sip is a SIP stack we did not write, used by many softphones in the field.
Facts this driver relies on (linphonec 5.1, Debian):

- It opens no SIP socket at all, silently, unless `$HOME/.local/share/linphone` exists, so
  each instance gets a HOME of its own under the test's temp dir.
- Without a sound card, `soundcard use files` makes it play the WAV named by `play FILE`
  and write what it hears to the WAV named by `record FILE`.
- It prints nothing when it registers: `proxy list` shows "registered: yes".
- Incoming calls are answered only once "Auto answer enabled." was printed; a call that
  arrives earlier stays ringing and is declined (603) when linphonec quits.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from pathlib import Path


class Linphonec:
    """One linphonec with one registering account (proxy_0), its files under ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        *,
        user: str,
        password: str,
        registrar: str,
        port: int,
        rtp_port: int,
        realm: str = "skillepunkt",
    ) -> None:
        """``registrar`` is host:port of the box; ``port``/``rtp_port`` are local UDP ports."""
        self.workdir = workdir
        home = workdir / "home"
        (home / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
        self.log = workdir / "linphone.log"
        rc = workdir / "linphonerc"
        rc.write_text(
            f"""[sip]
sip_port={port}
sip_tcp_port=0
sip_tls_port=0
bind_address=127.0.0.1
default_proxy=0
use_ipv6=0
register_only_when_network_is_up=0
auto_net_state_mon=0

[net]
firewall_policy=0

[rtp]
audio_rtp_port={rtp_port}

[sound]
echocancellation=0

[proxy_0]
reg_proxy=<sip:{registrar};transport=udp>
reg_identity=sip:{user}@{registrar}
reg_expires=600
reg_sendregister=1
publish=0

[auth_info_0]
username={user}
userid={user}
passwd={password}
realm={realm}
"""
        )
        self.proc = subprocess.Popen(
            ["linphonec", "-c", str(rc), "-d", "4", "-l", str(self.log)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env={**os.environ, "HOME": str(home)},
        )
        self.output = ""  # everything printed on stdout so far
        self._seen = 0  # wait_for searches after the end of its last match
        self._raw = b""
        try:
            self.command("soundcard use files")
            self.wait_for(r"Using wav files instead of soundcard")
        except BaseException:
            self.close()
            raise

    def _read(self, timeout: float) -> bool:
        """Append what linphonec printed within ``timeout``; False once it has exited."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        readable, _, _ = select.select([fd], [], [], timeout)
        if not readable:
            return True
        chunk = os.read(fd, 65536)
        if not chunk:
            return False
        self._raw += chunk
        self.output = self._raw.decode(errors="replace")
        return True

    def log_tail(self, chars: int = 3000) -> str:
        """The end of liblinphone's own log (SIP messages included), for failure messages."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

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
                    f"linphonec ({state}) printed no {pattern!r} within {timeout} s:\n"
                    f"{self.output[-2000:]}\n--- log ---\n{self.log_tail()}"
                )

    def command(self, line: str) -> None:
        """Type a console command, e.g. "call sip:101@127.0.0.1:5060" or "terminate"."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def wait_registered(self, timeout: float = 20) -> None:
        """Poll `proxy list` until proxy_0 says "registered: yes" (linphonec prints no event)."""
        deadline = time.monotonic() + timeout
        while True:
            self.command("proxy list")
            match = self.wait_for(r"registered: (yes|no)", max(deadline - time.monotonic(), 1))
            if match[1] == "yes":
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"linphonec not registered:\n{self.log_tail()}")
            time.sleep(0.3)

    def enable_autoanswer(self) -> None:
        """Answer incoming calls from now on (waits until linphonec has taken the command)."""
        self.command("autoanswer enable")
        self.wait_for(r"Auto answer enabled")

    def close(self) -> None:
        """quit, then SIGTERM, then SIGKILL: never leaves the process behind."""
        if self.proc.poll() is None:
            try:
                self.command("quit")
                self.proc.wait(10)
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
