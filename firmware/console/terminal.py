"""``skillepunkt console``: this terminal becomes the far end of the sim board's console cable.

A tiny terminal program (like picocom): raw mode, bytes both ways, Ctrl-] to leave.
It reads the pty path the daemon wrote to DATA/console.pty.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import tty
from pathlib import Path

ESCAPE = 0x1D  # Ctrl-]


def attach(data_dir: Path) -> int:
    try:
        path = (Path(data_dir) / "console.pty").read_text().strip()
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    except OSError as exc:
        print(
            f"error: no serial console to attach to ({exc}); is the daemon running?",
            file=sys.stderr,
        )
        return 1
    print(f"Connected to {path}. Ctrl-] leaves.\r", file=sys.stderr)
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
    try:
        tty.setraw(fd)
        if saved is not None:
            tty.setraw(stdin)
        os.write(fd, b"\r")  # wake the prompt
        while True:
            readable, _, _ = select.select([stdin, fd], [], [])
            if stdin in readable:
                data = os.read(stdin, 1024)
                if not data or ESCAPE in data:
                    break
                os.write(fd, data)
            if fd in readable:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    print("\r\nconsole closed by the box\r", file=sys.stderr)
                    break
                os.write(stdout, data)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        with contextlib.suppress(OSError):
            os.close(fd)
    print("\r\ndisconnected", file=sys.stderr)
    return 0
