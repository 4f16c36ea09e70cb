"""The console session as a sans-I/O state machine: bytes in, bytes out, no clock of its own.

Login, first-boot password, lockout, idle logout and the commands all live here, so
they can be tested byte for byte with a fake clock. The adapter feeds received bytes
to ``receive``, sends what comes back, and calls ``tick`` at ``Output.wake_at`` so that
a lockout ends or an idle session is logged out without anyone typing.

Nothing typed is ever logged: a "user name" is often a password typed one prompt early.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from ..config import ConfigError
from ..config.admin import ADMIN
from . import commands, views
from .backend import ConsoleBackend
from .lineedit import MAX_LINE, Interrupt, Line, LineEditor

log = logging.getLogger(__name__)

LOCKOUT_S = 30.0
MAX_FAILURES = 3
IDLE_TIMEOUT_S = 15 * 60.0


class State(enum.Enum):
    FIRST_NEW = "first-boot: new password"
    FIRST_CONFIRM = "first-boot: retype password"
    LOGIN_USER = "login: user"
    LOGIN_PASSWORD = "login: password"
    LOCKED = "locked after failed logins"
    COMMAND = "command prompt"
    CHANGE_CURRENT = "set password: current"
    CHANGE_NEW = "set password: new"
    CHANGE_CONFIRM = "set password: retype"


_LOGGED_IN = frozenset(
    {State.COMMAND, State.CHANGE_CURRENT, State.CHANGE_NEW, State.CHANGE_CONFIRM}
)
_IDLE_ENDS = _LOGGED_IN | {State.LOGIN_PASSWORD}
_VISIBLE = frozenset({State.LOGIN_USER, State.COMMAND})  # every other prompt hides what is typed
_PROMPTS = {
    State.FIRST_NEW: "New admin password: ",
    State.FIRST_CONFIRM: "Retype new password: ",
    State.LOGIN_USER: "login: ",
    State.LOGIN_PASSWORD: "Password: ",
    State.LOCKED: "",
    State.CHANGE_CURRENT: "Current password: ",
    State.CHANGE_NEW: "New password: ",
    State.CHANGE_CONFIRM: "Retype new password: ",
}


@dataclass(frozen=True)
class Output:
    """Bytes to send, and when to call ``tick`` next (clock time; None: no timer needed)."""

    data: bytes
    wake_at: float | None


class ConsoleSession:
    """One serial line's session; lives as long as the line (a hang-up keeps the lockout)."""

    def __init__(
        self,
        backend: ConsoleBackend,
        clock: Callable[[], float],
        *,
        lockout_s: float = LOCKOUT_S,
        max_failures: int = MAX_FAILURES,
        idle_timeout_s: float | None = IDLE_TIMEOUT_S,
        max_line: int = MAX_LINE,
    ) -> None:
        self._backend = backend
        self._clock = clock
        self.lockout_s = lockout_s
        self.max_failures = max_failures
        self.idle_timeout_s = idle_timeout_s
        self._editor = LineEditor(max_line)
        self._out = bytearray()
        self.state = State.LOGIN_USER
        self._failures = 0
        self._locked_until = 0.0
        self._last_input = clock()
        self._user_ok = False
        self._new_password: str | None = None
        self._handlers: dict[commands.Command, Callable[[tuple[str, ...]], None]] = {
            commands.SHOW_VERSION: self._show_version,
            commands.SHOW_SERVICES: self._show_services,
            commands.SHOW_CONFIG: self._show_config,
            commands.SET_PASSWORD: self._set_password,
            commands.LOGOUT: self._logout,
            commands.HELP: self._help,
        }

    # -- the adapter's interface ------------------------------------------------------------

    def start(self) -> Output:
        """The banner and first prompt, sent when the line is first opened."""
        self._say(f"\nSkillepunkt {views.printable(self._backend.version().firmware)}\n")
        self._to_login()
        return self._flush()

    def receive(self, data: bytes) -> Output:
        """Bytes as they came off the line; returns echo and answers in one ``Output``."""
        self._expire()
        self._last_input = self._clock()
        for byte in data:
            echo, event = self._editor.key(byte)
            self._out += echo
            if event is not None:
                self._handle(event)
        return self._flush()

    def tick(self) -> Output:
        """Run timers: end a lockout, log out an idle session."""
        self._expire()
        return self._flush()

    def hangup(self) -> Output:
        """The line dropped and came back: whoever is there now must log in again.

        A lockout stays in force, or hanging up would be a way around it.
        """
        self._editor.reset()
        if self.state is State.LOCKED:
            return self._flush()
        if self.state in _LOGGED_IN:
            log.info("console session ended by hang-up")
        self._say("\n")
        self._to_login()
        return self._flush()

    # -- plumbing ---------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        """Queue text for the terminal; a dumb terminal needs CRLF at each line end."""
        self._out += text.replace("\n", "\r\n").encode("utf-8", "replace")

    def _flush(self) -> Output:
        data = bytes(self._out)
        self._out.clear()
        return Output(data, self._wake_at())

    def _wake_at(self) -> float | None:
        if self.state is State.LOCKED:
            return self._locked_until
        if self.state in _IDLE_ENDS and self.idle_timeout_s is not None:
            return self._last_input + self.idle_timeout_s
        return None

    def _expire(self) -> None:
        now = self._clock()
        if self.state is State.LOCKED:
            if now >= self._locked_until:
                self._editor.reset()
                self._to_login()
            return
        if (
            self.state in _IDLE_ENDS
            and self.idle_timeout_s is not None
            and now - self._last_input >= self.idle_timeout_s
        ):
            self._editor.reset()
            if self.state in _LOGGED_IN:
                log.info("console idle logout", extra={"idle_s": self.idle_timeout_s})
                minutes = max(1, round(self.idle_timeout_s / 60))
                self._say(f"\nIdle for {minutes} min; logged out.\n\n")
            else:
                self._say("\n")
            self._to_login()

    def _prompt(self, state: State) -> None:
        self.state = state
        self._editor.echo = state in _VISIBLE
        if state is State.COMMAND:
            self._say(f"{views.printable(self._backend.hostname())}> ")
        else:
            self._say(_PROMPTS[state])

    def _to_login(self) -> None:
        """Back to the login prompt, or to the first-boot prompt while there is no password."""
        self._new_password = None
        self._user_ok = False
        if self._backend.admin_is_set():
            self._prompt(State.LOGIN_USER)
        else:
            self._say(
                "No admin password is set yet. Choose one now; the console and the web UI use it.\n"
            )
            self._prompt(State.FIRST_NEW)

    def _problems(self, reasons: list[str]) -> None:
        for reason in reasons:
            self._say(f"  - {reason}\n")

    def _seconds_left(self) -> int:
        return max(1, math.ceil(self._locked_until - self._clock()))

    def _failed(self) -> bool:
        """Count a wrong password; True when that started a lockout."""
        self._failures += 1
        log.warning("console login failed", extra={"failures": self._failures})
        if self._failures < self.max_failures:
            return False
        self._failures = 0
        self._locked_until = self._clock() + self.lockout_s
        log.warning("console locked after failed logins", extra={"lockout_s": self.lockout_s})
        self._say(f"Too many failed logins; wait {self._seconds_left()} s\n")
        self._prompt(State.LOCKED)
        return True

    # -- events -----------------------------------------------------------------------------

    def _handle(self, event: Line | Interrupt) -> None:
        if isinstance(event, Interrupt):
            self._interrupt()
            return
        text = _decode(event.data)
        match self.state:
            case State.FIRST_NEW | State.CHANGE_NEW:
                self._new_entered(text)
            case State.FIRST_CONFIRM | State.CHANGE_CONFIRM:
                self._confirm_entered(text)
            case State.LOGIN_USER:
                self._user_entered(text)
            case State.LOGIN_PASSWORD:
                self._password_entered(text)
            case State.LOCKED:
                self._say(f"Too many failed logins; wait {self._seconds_left()} s\n")
            case State.COMMAND:
                self._command_entered(text)
            case State.CHANGE_CURRENT:
                self._current_entered(text)

    def _interrupt(self) -> None:
        match self.state:
            case State.LOCKED:
                self._say(f"Too many failed logins; wait {self._seconds_left()} s\n")
            case State.FIRST_NEW | State.FIRST_CONFIRM:
                self._new_password = None
                self._prompt(State.FIRST_NEW)
            case State.CHANGE_CURRENT | State.CHANGE_NEW | State.CHANGE_CONFIRM:
                self._new_password = None
                self._say("Password not changed.\n")
                self._prompt(State.COMMAND)
            case State.COMMAND:
                self._prompt(State.COMMAND)
            case _:
                self._to_login()

    def _user_entered(self, text: str | None) -> None:
        name = (text or "").strip()
        if not name:
            self._prompt(State.LOGIN_USER)
            return
        self._user_ok = name == ADMIN
        self._prompt(State.LOGIN_PASSWORD)

    def _password_entered(self, text: str | None) -> None:
        # verify even for an unknown user: the same delay either way tells nothing
        ok = self._backend.verify_admin(text or "") and self._user_ok and text is not None
        self._user_ok = False
        if not ok:
            self._say("Login incorrect\n")
            if not self._failed():
                self._say("\n")
                self._to_login()
            return
        self._failures = 0
        log.info("console login", extra={"user": ADMIN})
        info = self._backend.version()
        self._say(
            f"\nSkillepunkt {views.printable(info.firmware)} on {views.printable(info.hostname)}."
            " Type ? for help.\n"
        )
        self._prompt(State.COMMAND)

    def _new_entered(self, text: str | None) -> None:
        if text == "":  # Enter alone: someone waking the console up, or giving up
            if self.state is State.FIRST_NEW:
                self._to_login()  # says again why a password is asked for
            else:
                self._say("Password not changed.\n")
                self._prompt(State.COMMAND)
            return
        if text is None:
            self._problems(["not valid UTF-8 text"])
            self._prompt(self.state)
            return
        problems = self._backend.password_problems(text)
        if problems:
            self._say("Password refused:\n")
            self._problems([p.reason for p in problems])
            self._prompt(self.state)
            return
        self._new_password = text
        first = self.state is State.FIRST_NEW
        self._prompt(State.FIRST_CONFIRM if first else State.CHANGE_CONFIRM)

    def _confirm_entered(self, text: str | None) -> None:
        first = self.state is State.FIRST_CONFIRM
        password, self._new_password = self._new_password, None
        if password is None or text != password:
            self._say("Passwords do not match; try again.\n")
            self._prompt(State.FIRST_NEW if first else State.CHANGE_NEW)
            return
        try:
            self._backend.set_admin_password(password, first_time=first)
        except ConfigError as exc:
            self._say("Password not set:\n")
            self._problems([p.reason for p in exc.problems])
            if first:
                self._to_login()
            else:
                self._prompt(State.COMMAND)
            return
        log.info("admin password set on the console", extra={"first_time": first})
        if first:
            self._say("Admin password set. Log in with user 'admin'.\n\n")
            self._to_login()
        else:
            self._say("Password changed.\n")
            self._prompt(State.COMMAND)

    def _current_entered(self, text: str | None) -> None:
        if text == "":
            self._say("Password not changed.\n")
            self._prompt(State.COMMAND)
            return
        if text is not None and self._backend.verify_admin(text):
            self._prompt(State.CHANGE_NEW)
            return
        self._say("Wrong password; password not changed.\n")
        if not self._failed():  # counts: an unattended session must not be a guessing oracle
            self._prompt(State.COMMAND)

    def _command_entered(self, text: str | None) -> None:
        if text is None:
            self._say("% input is not UTF-8 text\n")
            self._prompt(State.COMMAND)
            return
        tokens = text.split()
        if not tokens:
            self._prompt(State.COMMAND)
            return
        match commands.parse(tokens):
            case commands.Refusal(message):
                self._say(f"% {message}\n")
            case commands.Listing(listing):
                self._say(listing)
            case commands.Invocation(command, args):
                self._handlers[command](args)
                return  # the handler chose the next prompt
        self._prompt(State.COMMAND)

    # -- commands ---------------------------------------------------------------------------

    def _show_version(self, args: tuple[str, ...]) -> None:
        self._say(views.version(self._backend.version()))
        self._prompt(State.COMMAND)

    def _show_services(self, args: tuple[str, ...]) -> None:
        self._say(views.services(self._backend.services(), self._backend.overall()))
        self._prompt(State.COMMAND)

    def _show_config(self, args: tuple[str, ...]) -> None:
        sections = self._backend.sections()
        document = self._backend.config_document()
        if not args:
            self._say(views.config_yaml(document))
        elif args[0] == "?":
            self._say(f"  SECTION is one of: {', '.join(sections)}\n")
        else:
            try:
                section = commands.match_word(args[0], sections)
            except commands.Ambiguous as exc:
                self._say(f"% ambiguous section: {exc}\n")
            else:
                if section is None:
                    self._say(
                        f"% unknown section '{args[0]}'; sections are {', '.join(sections)}\n"
                    )
                else:
                    self._say(views.config_yaml({section: document[section]}))
        self._prompt(State.COMMAND)

    def _set_password(self, args: tuple[str, ...]) -> None:
        self._prompt(State.CHANGE_CURRENT)

    def _logout(self, args: tuple[str, ...]) -> None:
        log.info("console logout")
        self._say("Logged out.\n\n")
        self._to_login()

    def _help(self, args: tuple[str, ...]) -> None:
        self._say(commands.full_help())
        self._prompt(State.COMMAND)


def _decode(data: bytes) -> str | None:
    """A typed line as text; None when it is not UTF-8 (it then matches no password)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
