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
import subprocess
import time
from pathlib import Path

from .console_program import ConsoleProgram


class Linphonec(ConsoleProgram):
    """One linphonec with one registering account (proxy_0), its files under ``workdir``."""

    name = "linphonec"
    quit_wait = 10.0

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
        proc = subprocess.Popen(
            ["linphonec", "-c", str(rc), "-d", "4", "-l", str(self.log)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env={**os.environ, "HOME": str(home)},
        )
        super().__init__(proc)
        try:
            self.command("soundcard use files")
            self.wait_for(r"Using wav files instead of soundcard")
        except BaseException:
            self.close()
            raise

    def failure_detail(self) -> str:
        return f"{self.output[-2000:]}\n--- log ---\n{self.log_tail()}"

    def log_tail(self, chars: int = 3000) -> str:
        """The end of liblinphone's own log (SIP messages included), for failure messages."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

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
