"""The console's command words and how typed words resolve to a command.

There is no Tab on a dumb terminal, so every word may be cut to a unique prefix
("sh ver"); an exact word always wins over a longer one it is a prefix of. "?" in
place of a word lists what may follow.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]
    summary: str
    argument: str | None = None  # name of one optional argument, e.g. "SECTION"

    @property
    def usage(self) -> str:
        text = " ".join(self.words)
        return f"{text} [{self.argument}]" if self.argument else text


SHOW_VERSION = Command(("show", "version"), "firmware version, board, hostname, uptime")
SHOW_SERVICES = Command(("show", "services"), "state of every service")
SHOW_CONFIG = Command(("show", "config"), "configuration as YAML, secrets masked", "SECTION")
SET_PASSWORD = Command(("set", "password"), "change the admin password")
LOGOUT = Command(("logout",), "end the session")
HELP = Command(("help",), "list commands")

COMMANDS: tuple[Command, ...] = (
    SHOW_VERSION,
    SHOW_SERVICES,
    SHOW_CONFIG,
    SET_PASSWORD,
    LOGOUT,
    HELP,
)


@dataclass(frozen=True)
class Invocation:
    """A resolved command and its (still unresolved) arguments."""

    command: Command
    args: tuple[str, ...]


@dataclass(frozen=True)
class Listing:
    """The answer to "?": text to print."""

    text: str


@dataclass(frozen=True)
class Refusal:
    """Why the words do not make a command, as one line."""

    message: str


class Ambiguous(ValueError):
    def __init__(self, word: str, matches: Sequence[str]) -> None:
        super().__init__(f"'{word}' could be {', '.join(matches)}")
        self.matches = matches


def match_word(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` names: exactly, or as a unique prefix (case-insensitive).

    Returns None when nothing matches; raises ``Ambiguous`` when several do.
    """
    word = word.lower()
    options = sorted(set(choices))
    if word in options:
        return word
    hits = [c for c in options if c.startswith(word)]
    if len(hits) > 1:
        raise Ambiguous(word, hits)
    return hits[0] if hits else None


def help_text(commands: Iterable[Command] = COMMANDS) -> str:
    rows = [("help, ?" if c is HELP else c.usage, c.summary) for c in commands]
    width = max(len(u) for u, _ in rows)
    lines = [f"  {usage.ljust(width)}  {summary}" for usage, summary in rows]
    return "\n".join(lines) + "\n"


def full_help() -> str:
    return (
        'Commands (words may be shortened, e.g. "sh ver"):\n'
        + help_text()
        + "Keys: Backspace erases, Ctrl-W erases a word, Ctrl-U the line, Ctrl-C cancels.\n"
    )


def parse(tokens: Sequence[str]) -> Invocation | Listing | Refusal:
    """Resolve typed words (at least one) against ``COMMANDS``."""
    if tokens[0] == "?":
        return Listing(full_help())
    candidates = list(COMMANDS)
    typed: list[str] = []
    for depth, token in enumerate(tokens):
        longer = [c for c in candidates if len(c.words) > depth]
        leaf = next((c for c in candidates if len(c.words) == depth), None)
        if token == "?" and leaf is None:
            return Listing(help_text(longer))
        if token == "?" and leaf is not None and not leaf.argument:
            return Listing(f"  {leaf.usage}  (takes no arguments)\n")
        try:
            word = match_word(token, (c.words[depth] for c in longer)) if longer else None
        except Ambiguous as exc:
            return Refusal(f"ambiguous {_what(typed)}: {exc}")
        if word is not None:
            typed.append(word)
            candidates = [c for c in longer if c.words[depth] == word]
            continue
        if leaf is not None:
            return _with_args(leaf, tokens[depth:])
        if not typed:
            return Refusal(f"unknown command '{token}'; type ? for help")
        choices = ", ".join(sorted({c.words[depth] for c in longer}))
        return Refusal(f"unknown word '{token}' after '{' '.join(typed)}'; expected {choices}")
    leaf = next((c for c in candidates if len(c.words) == len(tokens)), None)
    if leaf is not None:
        return Invocation(leaf, ())
    choices = ", ".join(sorted({c.words[len(tokens)] for c in candidates}))
    return Refusal(f"incomplete command '{' '.join(typed)}'; add one of: {choices}")


def _what(typed: list[str]) -> str:
    return f"word after '{' '.join(typed)}'" if typed else "command"


def _with_args(command: Command, args: Sequence[str]) -> Invocation | Refusal:
    allowed = 1 if command.argument else 0
    if len(args) > allowed:
        return Refusal(f"unexpected '{args[allowed]}' after '{' '.join(command.words)}'")
    return Invocation(command, tuple(args))
