"""The console session byte for byte, on a real App (config store, admin account,
supervisor) and a fake clock."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from firmware.app import App
from firmware.console import State
from firmware.console.views import MASK

if TYPE_CHECKING:
    from conftest import FakeClock, Terminal

NEW_PASSWORD = "another long password"


def configure(app: App, **sections: object) -> None:
    app.store.import_raw({"version": 1, **sections}, "test")


# -- first boot --------------------------------------------------------------------------


def test_first_boot_asks_for_a_password_before_anything_else(first_boot: Terminal) -> None:
    screen = first_boot.transcript.decode()
    assert "Skillepunkt 0.1.0" in screen
    assert "No admin password is set yet" in screen
    assert screen.endswith("New admin password: ")
    assert first_boot.session.state is State.FIRST_NEW


def test_first_boot_shows_every_policy_problem_and_asks_again(first_boot: Terminal) -> None:
    screen = first_boot.line(" short")
    assert "  - at least 10 characters are needed\r\n" in screen
    assert "  - no leading or trailing spaces\r\n" in screen
    assert screen.endswith("New admin password: ")
    assert " short" not in screen


def test_first_boot_enter_alone_explains_again(first_boot: Terminal) -> None:
    screen = first_boot.send(b"\r")
    assert screen == (
        "\r\nNo admin password is set yet. Choose one now; the console and the web UI use it."
        "\r\nNew admin password: "
    )


def test_first_boot_sets_the_password_then_offers_login(
    first_boot: Terminal, app: App, password: str
) -> None:
    assert first_boot.line(password) == "\r\nRetype new password: "
    screen = first_boot.line(password)
    assert "Admin password set." in screen
    assert screen.endswith("login: ")
    assert app.admin.verify(password)
    assert password.encode() not in first_boot.transcript  # never echoed


def test_first_boot_mismatch_starts_over(first_boot: Terminal, app: App, password: str) -> None:
    first_boot.line(password)
    screen = first_boot.line(password + "x")
    assert "Passwords do not match" in screen
    assert screen.endswith("New admin password: ")
    assert not app.admin.is_set()


def test_first_boot_ctrl_c_starts_over(first_boot: Terminal, password: str) -> None:
    first_boot.line(password)
    assert first_boot.send(b"\x03").endswith("^C\r\nNew admin password: ")
    assert first_boot.session.state is State.FIRST_NEW


def test_first_boot_lost_race_with_the_web_ui(
    first_boot: Terminal, app: App, password: str
) -> None:
    first_boot.line(password)
    app.admin.set_password(NEW_PASSWORD, first_time=True)  # someone was faster
    screen = first_boot.line(password)
    assert "an admin password is already set" in screen
    assert screen.endswith("login: ")
    assert app.admin.verify(NEW_PASSWORD)


# -- login -------------------------------------------------------------------------------


def test_login_with_the_right_password(at_login: Terminal, password: str) -> None:
    assert at_login.line("admin") == "admin\r\nPassword: "
    screen = at_login.line(password)
    assert screen.startswith("\r\n")  # the password itself is not echoed
    assert "Type ? for help." in screen
    assert screen.endswith("skillepunkt> ")
    assert at_login.session.state is State.COMMAND
    assert password.encode() not in at_login.transcript


def test_prompt_is_the_configured_hostname(at_login: Terminal, app: App, password: str) -> None:
    configure(app, system={"hostname": "pbx-aarhus"})
    at_login.line("admin")
    assert at_login.line(password).endswith("pbx-aarhus> ")


def test_typed_ahead_login_is_handled_line_by_line(at_login: Terminal, password: str) -> None:
    screen = at_login.send(f"admin\r\n{password}\r\nsh ver\r\n")
    assert screen.count("Password: ") == 1
    assert "Firmware:  Skillepunkt" in screen
    assert password not in screen


def test_empty_user_name_just_prompts_again(at_login: Terminal) -> None:
    assert at_login.send(b"\r\n\r") == "\r\nlogin: \r\nlogin: "


@pytest.mark.parametrize("user", ["root", "Admin"])
def test_unknown_user_is_asked_for_a_password_all_the_same(
    at_login: Terminal, user: str, password: str
) -> None:
    assert at_login.line(user).endswith("Password: ")
    assert "Login incorrect" in at_login.line(password)


def test_wrong_password(at_login: Terminal) -> None:
    at_login.line("admin")
    screen = at_login.line("not the password")
    assert screen == "\r\nLogin incorrect\r\n\r\nlogin: "
    assert at_login.session.state is State.LOGIN_USER


def test_ctrl_c_at_the_password_prompt_goes_back_to_login(at_login: Terminal) -> None:
    at_login.line("admin")
    assert at_login.send(b"abc\x03") == "^C\r\nlogin: "


def fail(term: Terminal, times: int) -> str:
    screen = ""
    for _ in range(times):
        term.line("admin")
        screen = term.line("wrong password!")
    return screen


def test_three_failures_lock_logins_for_a_while(
    at_login: Terminal, clock: FakeClock, password: str
) -> None:
    screen = fail(at_login, 3)
    assert screen.endswith("Login incorrect\r\nToo many failed logins; wait 30 s\r\n")
    assert at_login.last is not None and at_login.last.wake_at == clock.now + 30
    clock.advance(20)
    refused = at_login.line("admin") + at_login.line(password)
    assert refused == (
        "\r\nToo many failed logins; wait 10 s\r\n" * 2
    )  # nothing echoed, nothing checked
    assert at_login.session.state is State.LOCKED
    clock.advance(10)
    assert at_login.tick() == "login: "
    at_login.line("admin")
    assert at_login.line(password).endswith("skillepunkt> ")


def test_lockout_also_ends_when_the_next_key_arrives_late(
    at_login: Terminal, clock: FakeClock, password: str
) -> None:
    fail(at_login, 3)
    clock.advance(31)
    screen = at_login.send(f"admin\r{password}\r")
    assert screen.startswith("login: admin\r\nPassword: ")
    assert screen.endswith("skillepunkt> ")


def test_lockout_duration_is_a_parameter(
    make_terminal: Callable[..., Terminal], app: App, clock: FakeClock, password: str
) -> None:
    app.admin.set_password(password, first_time=True)
    term = make_terminal(lockout_s=2.0)
    term.start()
    assert fail(term, 3).endswith("wait 2 s\r\n")
    clock.advance(2)
    assert term.tick() == "login: "


def test_success_resets_the_failure_count(at_login: Terminal, password: str) -> None:
    fail(at_login, 2)
    at_login.line("admin")
    at_login.line(password)
    at_login.line("logout")
    assert fail(at_login, 2).endswith("login: ")
    assert at_login.session.state is State.LOGIN_USER


def test_after_a_lockout_there_are_three_new_tries(at_login: Terminal, clock: FakeClock) -> None:
    fail(at_login, 3)
    clock.advance(30)
    at_login.tick()
    assert fail(at_login, 2).endswith("login: ")
    assert "wait 30 s" in fail(at_login, 1)


def test_hangup_keeps_a_lockout(at_login: Terminal) -> None:
    fail(at_login, 3)
    assert at_login.session.hangup().data == b""
    assert at_login.session.state is State.LOCKED


# -- timers ------------------------------------------------------------------------------


def test_idle_session_is_logged_out(logged_in: Terminal, clock: FakeClock) -> None:
    assert logged_in.last is not None and logged_in.last.wake_at == clock.now + 15 * 60
    clock.advance(14 * 60)
    assert logged_in.tick() == ""
    clock.advance(60)
    screen = logged_in.tick()
    assert "Idle for 15 min; logged out." in screen
    assert screen.endswith("login: ")
    assert logged_in.last is not None and logged_in.last.wake_at is None


def test_typing_keeps_a_session_alive(logged_in: Terminal, clock: FakeClock) -> None:
    clock.advance(14 * 60)
    logged_in.send("sh")
    clock.advance(14 * 60)
    assert logged_in.tick() == ""
    assert logged_in.session.state is State.COMMAND


def test_password_prompt_times_out_too(at_login: Terminal, clock: FakeClock) -> None:
    at_login.line("admin")
    clock.advance(15 * 60)
    assert at_login.tick() == "\r\nlogin: "


def test_idle_logout_can_be_disabled(
    make_terminal: Callable[..., Terminal], app: App, clock: FakeClock, password: str
) -> None:
    app.admin.set_password(password, first_time=True)
    term = make_terminal(idle_timeout_s=None)
    term.start()
    term.line("admin")
    term.line(password)
    assert term.last is not None and term.last.wake_at is None


def test_hangup_logs_out(logged_in: Terminal) -> None:
    assert logged_in.session.hangup().data == b"\r\nlogin: "
    assert logged_in.session.state is State.LOGIN_USER


# -- commands ----------------------------------------------------------------------------


def run(term: Terminal, command: str) -> str:
    """Output of ``command`` without its echo and the next prompt."""
    screen = term.line(command)
    assert screen.startswith(command + "\r\n")
    assert screen.endswith("skillepunkt> "), screen
    return screen[len(command) + 2 : -len("skillepunkt> ")]


def test_show_version(logged_in: Terminal, app: App) -> None:
    app.started_at -= 3 * 86400 + 3723
    text = run(logged_in, "show version")
    assert "Firmware:  Skillepunkt 0.1.0\r\n" in text
    assert "Board:     test-board\r\n" in text
    assert "Hostname:  skillepunkt\r\n" in text
    assert re.search(r"Uptime:    3d 01:02:0\d\r\n", text)


@pytest.mark.parametrize("typed", ["sh ver", "SHOW V", "show   version  "])
def test_abbreviations(logged_in: Terminal, typed: str) -> None:
    assert "Firmware:" in run(logged_in, typed)


def test_show_services_before_start(logged_in: Terminal) -> None:
    lines = run(logged_in, "sh serv").split("\r\n")
    assert re.fullmatch(r"SERVICE\s+STATE\s+RESTARTS\s+LAST ERROR", lines[0])
    assert re.fullmatch(r"sip\s+starting\s+0\s+-", lines[1])
    assert re.fullmatch(r"media\s+starting\s+0\s+-", lines[2])
    assert lines[3] == "Overall: starting"


async def test_show_services_of_a_running_supervisor(logged_in: Terminal, app: App) -> None:
    task = asyncio.create_task(app.supervisor.run())
    try:
        await asyncio.wait_for(app.supervisor.all_ready.wait(), 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    text = run(logged_in, "show services")
    assert re.search(r"sip\s+stopped\s+0\s+-\r\n", text)
    # the crash is on one line, its escape sequence defused
    assert re.search(r"media\s+stopped\s+1\s+RuntimeError: codec\?\[2J table missing\r\n", text)
    assert "\x1b" not in text
    assert "Overall: stopping" in text


def test_show_config_masks_every_secret(logged_in: Terminal, app: App) -> None:
    configure(
        app,
        users=[{"extension": "101", "name": "Reception", "sip_password": "sip-secret-101"}],
        trunks=[
            {
                "name": "carrier",
                "host": "sip.example.net",
                "username": "acct",
                "password": "trunk-secret",
            }
        ],
    )
    text = run(logged_in, "show config")
    assert "sip-secret-101" not in text
    assert "trunk-secret" not in text
    assert text.count(MASK) == 2
    assert "sip_password: '********'\r\n" in text
    assert "  password: '********'\r\n" in text
    assert "host: sip.example.net" in text
    assert "\n" not in text.replace("\r\n", "")  # every line ends with CRLF


def test_show_config_users_section(logged_in: Terminal, app: App) -> None:
    configure(
        app, users=[{"extension": "101", "name": "Reception", "sip_password": "s3cret-s3cret"}]
    )
    text = run(logged_in, "sh conf us")
    assert text.startswith("users:\r\n")
    assert "s3cret" not in text
    assert "system:" not in text


def test_show_config_one_section(logged_in: Terminal) -> None:
    text = run(logged_in, "sh conf system")
    assert text.startswith("system:\r\n  hostname: skillepunkt\r\n")
    assert "network:" not in text


def test_show_config_unknown_section_lists_the_valid_ones(logged_in: Terminal) -> None:
    assert run(logged_in, "show config dialplan") == (
        "% unknown section 'dialplan'; sections are system, network, sip, users, trunks,"
        " ports, phones, queues, agents, schedules\r\n"
    )


def test_show_config_ambiguous_section(logged_in: Terminal) -> None:
    assert run(logged_in, "sh conf p") == "% ambiguous section: 'p' could be phones, ports\r\n"


def test_show_config_question_mark_lists_sections(logged_in: Terminal) -> None:
    assert "SECTION is one of: system, network" in run(logged_in, "sh conf ?")


@pytest.mark.parametrize("typed", ["help", "?", "he"])
def test_help_lists_the_commands(logged_in: Terminal, typed: str) -> None:
    text = run(logged_in, typed)
    for usage in ("show version", "show services", "show config [SECTION]", "set password"):
        assert usage in text
    assert "logout" in text


def test_question_mark_after_a_word(logged_in: Terminal) -> None:
    text = run(logged_in, "show ?")
    assert "show services" in text
    assert "logout" not in text


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("s", "% ambiguous command: 's' could be set, show\r\n"),
        ("reboot", "% unknown command 'reboot'; type ? for help\r\n"),
        ("show", "% incomplete command 'show'; add one of: config, services, version\r\n"),
        ("sh ver x", "% unexpected 'x' after 'show version'\r\n"),
    ],
)
def test_bad_commands_get_one_line(logged_in: Terminal, typed: str, error: str) -> None:
    assert run(logged_in, typed) == error


def test_empty_line_and_ctrl_c_give_a_new_prompt(logged_in: Terminal) -> None:
    assert logged_in.send(b"\r") == "\r\nskillepunkt> "
    assert logged_in.send(b"show\x03") == "show^C\r\nskillepunkt> "


def test_arrow_keys_do_not_reach_the_command(logged_in: Terminal) -> None:
    assert "Firmware:" in logged_in.send(b"\x1b[Ash\x1b[D\x1b[C ver\r")


def test_input_that_is_not_utf8(logged_in: Terminal) -> None:
    screen = logged_in.send(b"sh \xe6\r")
    assert screen.endswith("\r\n% input is not UTF-8 text\r\nskillepunkt> ")


def test_logout(logged_in: Terminal) -> None:
    screen = logged_in.line("logout")
    assert screen == "logout\r\nLogged out.\r\n\r\nlogin: "
    assert logged_in.line("sh ver") == "sh ver\r\nPassword: "  # a user name now, not a command


# -- set password ------------------------------------------------------------------------


def test_set_password(logged_in: Terminal, app: App, password: str) -> None:
    assert logged_in.line("set password").endswith("Current password: ")
    assert logged_in.line(password) == "\r\nNew password: "
    assert logged_in.line(NEW_PASSWORD) == "\r\nRetype new password: "
    assert logged_in.line(NEW_PASSWORD) == "\r\nPassword changed.\r\nskillepunkt> "
    assert app.admin.verify(NEW_PASSWORD)
    assert NEW_PASSWORD.encode() not in logged_in.transcript
    logged_in.line("logout")
    logged_in.line("admin")
    assert logged_in.line(NEW_PASSWORD).endswith("skillepunkt> ")


def test_set_password_wrong_current(logged_in: Terminal, app: App, password: str) -> None:
    logged_in.line("se pa")
    screen = logged_in.line("guess")
    assert screen == "\r\nWrong password; password not changed.\r\nskillepunkt> "
    assert app.admin.verify(password)


def test_set_password_policy_problems_ask_again(
    logged_in: Terminal, app: App, password: str
) -> None:
    logged_in.line("set password")
    logged_in.line(password)
    screen = logged_in.line("short")
    assert "Password refused:\r\n  - at least 10 characters are needed\r\n" in screen
    assert screen.endswith("New password: ")
    logged_in.line(NEW_PASSWORD)
    assert "Passwords do not match" in logged_in.line(NEW_PASSWORD + "?")
    assert app.admin.verify(password)


def test_set_password_ctrl_c_cancels(logged_in: Terminal, app: App, password: str) -> None:
    logged_in.line("set password")
    logged_in.line(password)
    logged_in.line(NEW_PASSWORD)
    assert logged_in.send(b"\x03") == "^C\r\nPassword not changed.\r\nskillepunkt> "
    assert app.admin.verify(password)


@pytest.mark.parametrize("step", [0, 1])
def test_set_password_enter_alone_gives_up(
    logged_in: Terminal, app: App, password: str, step: int
) -> None:
    logged_in.line("set password")
    if step:
        logged_in.line(password)
    assert logged_in.send(b"\r") == "\r\nPassword not changed.\r\nskillepunkt> "
    assert app.admin.verify(password)


def test_guessing_the_current_password_locks_the_console(logged_in: Terminal) -> None:
    for _ in range(3):
        logged_in.line("set password")
        screen = logged_in.line("guess")
    assert screen.endswith("Too many failed logins; wait 30 s\r\n")
    assert logged_in.session.state is State.LOCKED
