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

import subprocess
from pathlib import Path

from .console_program import ConsoleProgram

MODULES = ("stdio", "g711", "aufile", "aubridge", "account", "menu")


class Baresip(ConsoleProgram):
    """One baresip user agent with one registering account, its config under ``workdir``."""

    name = "baresip"
    quit_command = "/quit"

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
        proc = subprocess.Popen(
            ["baresip", "-f", str(workdir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        super().__init__(proc)
        try:
            self.wait_for(r"baresip is ready")
        except BaseException:
            self.close()
            raise

    def wait_registered(self, timeout: float = 20) -> None:
        """Until the account's REGISTER got its 200 (after the digest challenge)."""
        self.wait_for(r"useragent registered successfully", timeout)
