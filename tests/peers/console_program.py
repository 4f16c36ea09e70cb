"""A peer program with a text console (baresip, linphonec): commands in on stdin, output
read back and searched with regular expressions, every wait bounded, never left running."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ConsoleProgram:
    """Subclasses start ``self.proc`` (stdin and stdout piped) and name their quit command."""

    name = "program"
    quit_command = "quit"
    quit_wait = 5.0

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.output = ""  # everything printed so far, colour codes removed
        self._seen = 0  # wait_for searches after the end of its last match
        self._raw = b""

    def failure_detail(self) -> str:
        """What to show when a wait fails (the end of the output; subclasses add logs)."""
        return self.output[-3000:]

    def _read(self, timeout: float) -> bool:
        """Append what the program printed within ``timeout``; False once it has exited."""
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
                    f"{self.name} ({state}) printed no {pattern!r} within {timeout} s:\n"
                    + self.failure_detail()
                )

    def command(self, line: str) -> None:
        """Type one console command."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        """The quit command, then SIGTERM, then SIGKILL: never leaves the process behind."""
        if self.proc.poll() is None:
            try:
                self.command(self.quit_command)
                self.proc.wait(self.quit_wait)
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
