"""The dumb-terminal line discipline, byte by byte."""

from __future__ import annotations

import pytest

from firmware.console.lineedit import Event, Interrupt, Line, LineEditor


def feed(editor: LineEditor, data: bytes) -> tuple[bytes, list[Event]]:
    echo = b""
    events: list[Event] = []
    for byte in data:
        out, event = editor.key(byte)
        echo += out
        if event is not None:
            events.append(event)
    return echo, events


def test_typed_characters_are_echoed_and_enter_ends_the_line() -> None:
    echo, events = feed(LineEditor(), b"show\r")
    assert echo == b"show\r\n"
    assert events == [Line(b"show")]


@pytest.mark.parametrize("enter", [b"\r", b"\n", b"\r\n"])
def test_cr_lf_and_crlf_each_end_a_line_exactly_once(enter: bytes) -> None:
    echo, events = feed(LineEditor(), b"a" + enter + b"b" + enter)
    assert events == [Line(b"a"), Line(b"b")]
    assert echo == b"a\r\nb\r\n"


def test_crlf_split_across_reads_is_still_one_enter() -> None:
    editor = LineEditor()
    assert feed(editor, b"a\r")[1] == [Line(b"a")]
    assert feed(editor, b"\n") == (b"", [])
    assert feed(editor, b"\n")[1] == [Line(b"")]  # a second LF is a second Enter


def test_empty_lines_are_lines() -> None:
    assert feed(LineEditor(), b"\r\r")[1] == [Line(b""), Line(b"")]


@pytest.mark.parametrize("backspace", [b"\x08", b"\x7f"])
def test_backspace_erases_one_character(backspace: bytes) -> None:
    editor = LineEditor()
    echo, events = feed(editor, b"shx" + backspace + b"ow\r")
    assert echo == b"shx\b \bow\r\n"
    assert events == [Line(b"show")]


def test_backspace_on_an_empty_line_sends_nothing() -> None:
    assert feed(LineEditor(), b"\x7f\x08") == (b"", [])


def test_backspace_erases_a_multibyte_character_whole() -> None:
    editor = LineEditor()
    echo, _ = feed(editor, "aæ".encode() + b"\x7f")
    assert echo == "aæ".encode() + b"\b \b"
    assert editor.pending == b"a"


def test_ctrl_u_kills_the_line() -> None:
    editor = LineEditor()
    echo, events = feed(editor, b"abc\x15xy\r")
    assert echo == b"abc" + b"\b \b" * 3 + b"xy\r\n"
    assert events == [Line(b"xy")]


def test_ctrl_w_erases_the_last_word() -> None:
    editor = LineEditor()
    echo, _ = feed(editor, b"show conf  \x17")
    assert editor.pending == b"show "
    assert echo.endswith(b"\b \b" * 6)


def test_ctrl_c_cancels_the_line() -> None:
    editor = LineEditor()
    echo, events = feed(editor, b"show\x03")
    assert echo == b"show^C\r\n"
    assert events == [Interrupt()]
    assert feed(editor, b"\r")[1] == [Line(b"")]


@pytest.mark.parametrize(
    "keys",
    [
        b"\x1b[A",  # up
        b"\x1b[B\x1b[C\x1b[D",  # down, right, left
        b"\x1b[1;5C",  # ctrl-right
        b"\x1b[3~",  # delete
        b"\x1bOP",  # F1
        b"\x1bOA",  # up in application mode
        b"\x1bx",  # alt-x
        b"\x1b\x1b[A",  # ESC ESC [ A
    ],
)
def test_escape_sequences_are_swallowed(keys: bytes) -> None:
    editor = LineEditor()
    echo, events = feed(editor, b"ab" + keys + b"c\r")
    assert echo == b"abc\r\n"
    assert events == [Line(b"abc")]


def test_a_control_key_cuts_an_escape_sequence_short() -> None:
    assert feed(LineEditor(), b"a\x1b[1\r")[1] == [Line(b"a")]
    assert feed(LineEditor(), b"a\x1b\r")[1] == [Line(b"a")]


def test_an_endless_escape_sequence_is_abandoned() -> None:
    editor = LineEditor()
    feed(editor, b"\x1b[" + b"1" * 100)
    assert editor.pending == b"1" * (100 - 33)  # the editor did not stay stuck in it


def test_other_control_characters_are_ignored() -> None:
    echo, events = feed(LineEditor(), b"a\tb\x00\x04\x07\x0cc\r")
    assert echo == b"abc\r\n"
    assert events == [Line(b"abc")]


def test_line_length_is_bounded_with_a_bell() -> None:
    editor = LineEditor(max_length=4)
    echo, events = feed(editor, b"abcdef\r")
    assert echo == b"abcd\x07\x07\r\n"
    assert events == [Line(b"abcd")]


def test_default_bound_is_256() -> None:
    _, events = feed(LineEditor(), b"x" * 1000 + b"\r")
    assert events == [Line(b"x" * 256)]


def test_hidden_input_is_edited_but_never_echoed() -> None:
    editor = LineEditor()
    editor.echo = False
    echo, events = feed(editor, b"secrex\x7ft\x15secret\r")
    assert echo == b"\r\n"
    assert events == [Line(b"secret")]


def test_reset_drops_the_line() -> None:
    editor = LineEditor()
    feed(editor, b"abc\x1b[")
    editor.reset()
    assert feed(editor, b"A\r")[1] == [Line(b"A")]
