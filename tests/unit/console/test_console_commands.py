"""Command words: abbreviations, ambiguity, arguments and "?"."""

from __future__ import annotations

import pytest

from firmware.console import commands
from firmware.console.commands import Invocation, Listing, Refusal, parse


@pytest.mark.parametrize(
    ("typed", "command"),
    [
        ("show version", commands.SHOW_VERSION),
        ("sh ver", commands.SHOW_VERSION),
        ("SH V", commands.SHOW_VERSION),
        ("sh serv", commands.SHOW_SERVICES),
        ("show s", commands.SHOW_SERVICES),
        ("sh c", commands.SHOW_CONFIG),
        ("se pass", commands.SET_PASSWORD),
        ("logout", commands.LOGOUT),
        ("lo", commands.LOGOUT),
        ("help", commands.HELP),
        ("h", commands.HELP),
    ],
)
def test_unique_prefixes_resolve(typed: str, command: commands.Command) -> None:
    assert parse(typed.split()) == Invocation(command, ())


def test_arguments_follow_the_command_words() -> None:
    assert parse(["sh", "conf", "system"]) == Invocation(commands.SHOW_CONFIG, ("system",))


def test_exact_word_wins_over_a_longer_word() -> None:
    assert commands.match_word("set", ["set", "settings"]) == "set"


def test_ambiguous_command() -> None:
    result = parse(["s"])
    assert result == Refusal("ambiguous command: 's' could be set, show")


def test_unknown_command() -> None:
    assert parse(["reboot"]) == Refusal("unknown command 'reboot'; type ? for help")


def test_unknown_second_word() -> None:
    result = parse(["show", "calls"])
    assert isinstance(result, Refusal)
    assert result.message == (
        "unknown word 'calls' after 'show'; expected config, services, version"
    )


def test_incomplete_command() -> None:
    result = parse(["sh"])
    assert result == Refusal("incomplete command 'show'; add one of: config, services, version")


def test_too_many_arguments() -> None:
    assert parse(["show", "version", "now"]) == Refusal("unexpected 'now' after 'show version'")
    assert parse(["sh", "conf", "a", "b"]) == Refusal("unexpected 'b' after 'show config'")


def test_question_mark_lists_everything() -> None:
    result = parse(["?"])
    assert isinstance(result, Listing)
    for usage in ("show version", "show services", "show config [SECTION]", "set password"):
        assert usage in result.text
    assert "help, ?" in result.text


def test_question_mark_after_a_word_lists_what_follows() -> None:
    result = parse(["sh", "?"])
    assert isinstance(result, Listing)
    assert "show version" in result.text
    assert "set password" not in result.text


def test_question_mark_after_a_command_without_arguments() -> None:
    assert parse(["show", "version", "?"]) == Listing("  show version  (takes no arguments)\n")
