"""PjPhone: a pjsua2 phone in a subprocess (tests/peers/pjsua_phone.py), with awaited events."""

from __future__ import annotations

import json
import os
import random
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("pjsua_phone.py")


class PjPhone:
    def __init__(
        self, *, domain: str, user: str, port: int, password: str = "", **options: Any
    ) -> None:
        args = [
            sys.executable,
            str(SCRIPT),
            "--domain",
            domain,
            "--user",
            user,
            "--port",
            str(port),
            "--rtp-port",  # a range of its own: phones and boxes run side by side
            str(30000 + 2 * random.randrange(0, 10000)),
        ]
        if password:
            args += ["--password", password]
        for key, value in options.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                args.append(flag)
            elif value not in (False, None):
                args += [flag, str(value)]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.events: list[dict[str, Any]] = []
        self._buffer = b""
        self.wait_for("ready")

    def send(self, cmd: str, **fields: Any) -> None:
        """Send a command; play/record/call wait until the phone has carried it out."""
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"cmd": cmd, **fields}) + "\n").encode())
        self.proc.stdin.flush()
        if cmd in ("play", "record", "call"):
            self.wait_for("done", cmd=cmd)

    def _read(self, timeout: float) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        readable, _, _ = select.select([fd], [], [], timeout)
        if not readable:
            return
        chunk = os.read(fd, 65536)
        if not chunk:
            raise AssertionError(f"pjsua phone exited: {self.stderr()}")
        self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            if line.startswith(b"{"):
                self.events.append(json.loads(line))

    def wait_for(self, event: str, timeout: float = 15, **match: Any) -> dict[str, Any]:
        """The first not yet consumed event named ``event`` whose fields match ``match``."""
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == event and all(e.get(k) == v for k, v in match.items()):
                    del self.events[i]
                    return e
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {event} {match} within {timeout} s; saw {self.events}")
            self._read(min(remaining, 0.2))

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return ""
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")[-3000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(10)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def tone_call(
    caller: PjPhone, callee: PjPhone, uri: str, tone: Path, recorded: Path, talk: float
) -> None:
    """``caller`` plays ``tone`` into a call to ``uri`` that ``callee`` (auto-answering)
    records to ``recorded``; after ``talk`` seconds the caller hangs up. The recording
    is complete once the callee saw the hang-up."""
    caller.send("play", wav=str(tone))
    callee.send("record", wav=str(recorded))
    caller.send("call", uri=uri)
    caller.wait_for("call_state", state="CONFIRMED")
    time.sleep(talk)
    caller.send("hangup")
    callee.wait_for("call_state", state="DISCONNECTED")
