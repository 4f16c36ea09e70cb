"""The serial console over a real pty, typed at like a technician at a dumb terminal."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from firmware.console import AppBackend, VersionInfo
from firmware.system.supervisor import ServiceState

if TYPE_CHECKING:
    from conftest import Box, Pty

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a different long password"


def test_first_boot_login_commands_and_logout(start_console: Callable[..., Box]) -> None:
    box = start_console()
    box.app.store.import_raw(
        {
            "version": 1,
            "trunks": [{"name": "carrier", "host": "sip.example.net", "password": "trunk-secret"}],
        },
        "test",
    )
    term = box.term
    term.expect_exact(b"No admin password is set yet")
    term.expect_exact(b"New admin password: ")
    term.send(b"too short\r")
    term.expect_exact(b"  - at least 10 characters are needed\r\n")
    term.expect_exact(b"New admin password: ")
    term.send(PASSWORD.encode() + b"\r")
    term.expect_exact(b"Retype new password: ")
    term.send(PASSWORD.encode() + b"\r\n")  # a CRLF terminal: still one Enter
    term.expect_exact(b"Admin password set.")
    assert box.app.admin.verify(PASSWORD)

    box.login()

    version = box.command("show version")
    assert b"Firmware:  Skillepunkt 0.1.0\r\n" in version
    assert b"Board:     test-board\r\n" in version
    assert b"Hostname:  skillepunkt\r\n" in version
    assert re.search(rb"Uptime:    \d\d:\d\d:\d\d\r\n", version)

    services = box.command("sh serv")
    assert re.search(rb"console\s+running\s+0\s+-\r\n", services)
    assert re.search(rb"sip\s+running\s+0\s+-\r\n", services)
    assert b"Overall: ok\r\n" in services

    system = box.command("sh conf system")
    assert b"system:\r\n  hostname: skillepunkt\r\n  country: DK\r\n" in system

    trunks = box.command("sh conf tr")
    assert b"password: '********'" in trunks
    assert b"trunk-secret" not in trunks

    assert b"% unknown command 'reboot'" in box.command("reboot")

    term.send(b"logout\r")
    term.expect_exact(b"Logged out.\r\n\r\nlogin: ")

    everything = box.received.getvalue()
    assert PASSWORD.encode() not in everything  # never echoed
    assert not re.search(rb"[^\r]\n", everything)  # every line ends with CRLF


def test_line_editing_on_the_wire(start_console: Callable[..., Box]) -> None:
    box = start_console(password=PASSWORD)
    box.login()
    # typo fixed with Backspace, an arrow key, a line killed with Ctrl-U, a word with Ctrl-W
    out = box.command("sh vex\x7fr\x1b[A")
    assert out.startswith(b"sh vex\b \br\r\n")
    assert b"Firmware:" in out
    out = box.command("reboot\x15sh conf\x17ver")
    assert b"Firmware:" in out
    box.term.send(b"show\x03")
    box.term.expect_exact(b"show^C\r\nskillepunkt> ")


def test_set_password(start_console: Callable[..., Box]) -> None:
    box = start_console(password=PASSWORD)
    box.login()
    term = box.term
    term.send(b"set password\r")
    term.expect_exact(b"Current password: ")
    term.send(PASSWORD.encode() + b"\r")
    term.expect_exact(b"New password: ")
    term.send(b"short\r")
    term.expect_exact(b"at least 10 characters")
    term.expect_exact(b"New password: ")
    term.send(NEW_PASSWORD.encode() + b"\r")
    term.expect_exact(b"Retype new password: ")
    term.send(NEW_PASSWORD.encode() + b"\r")
    term.expect_exact(b"Password changed.\r\nskillepunkt> ")
    term.send(b"logout\r")
    box.login(NEW_PASSWORD)
    assert NEW_PASSWORD.encode() not in box.received.getvalue()


def test_three_wrong_passwords_lock_logins_for_a_while(start_console: Callable[..., Box]) -> None:
    box = start_console(password=PASSWORD, lockout_s=2.0)
    term = box.term
    for _ in range(3):
        term.expect_exact(b"login: ")
        term.send(b"admin\r")
        term.expect_exact(b"Password: ")
        term.send(b"wrong password\r")
        term.expect_exact(b"Login incorrect\r\n")
    term.expect_exact(b"Too many failed logins; wait 2 s\r\n")
    locked_at = time.monotonic()

    # the right password during the lockout is refused without being checked
    term.send(b"admin\r")
    term.expect_exact(b"Too many failed logins; wait")
    term.send(PASSWORD.encode() + b"\r")
    term.expect_exact(b"Too many failed logins; wait")
    term.expect_exact(b"login: ", timeout=5)
    assert b"Password: " not in term.before
    assert b"skillepunkt> " not in box.received.getvalue()
    assert time.monotonic() - locked_at > 1.0

    term.send(b"admin\r")
    term.expect_exact(b"Password: ")
    term.send(PASSWORD.encode() + b"\r")
    term.expect_exact(b"skillepunkt> ")


def test_hang_up_reopens_the_port_and_logs_out(
    start_console: Callable[..., Box], open_pty: Callable[[], Pty]
) -> None:
    box = start_console(password=PASSWORD, reopen_delay_s=0.05)
    box.login()
    replacement = open_pty()
    box.service.device = replacement.path  # where the port comes back after the hang-up
    box.pty.hang_up()  # the console's side now reads EOF/EIO
    box.attach(replacement)
    box.login()  # starts at "login: ": the session was logged out, on the reopened port
    assert b"Firmware:" in box.command("sh ver")
    status = {s.name: s for s in box.app.supervisor.status()}["console"]
    assert status.state is ServiceState.RUNNING
    assert status.restarts == 0  # handled inside the service, not a crash


def test_a_crash_propagates_and_the_restart_logs_out(
    start_console: Callable[..., Box], monkeypatch: pytest.MonkeyPatch
) -> None:
    box = start_console(password=PASSWORD)
    box.login()

    def broken(self: AppBackend) -> VersionInfo:
        raise RuntimeError("version store unreadable")

    monkeypatch.setattr(AppBackend, "version", broken)
    box.term.send(b"show version\r")
    box.term.expect_exact(b"login: ")  # the supervisor restarted the service; it logged out
    status = {s.name: s for s in box.app.supervisor.status()}["console"]
    assert status.restarts == 1
    assert status.last_error == "RuntimeError: version store unreadable"
    monkeypatch.undo()
    box.term.send(b"admin\r")
    box.term.expect_exact(b"Password: ")
    box.term.send(PASSWORD.encode() + b"\r")
    box.term.expect_exact(b"skillepunkt> ")
