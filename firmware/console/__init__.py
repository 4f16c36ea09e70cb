"""Serial console CLI: login, first-boot password, and show/set commands on a dumb terminal.

``ConsoleSession`` is the sans-I/O core (bytes in, bytes out, injected clock);
``ConsoleService`` runs it on a serial port under the supervisor.
"""

from .backend import AppBackend, ConsoleBackend, VersionInfo
from .service import ConsoleService
from .session import ConsoleSession, Output, State

__all__ = [
    "AppBackend",
    "ConsoleBackend",
    "ConsoleService",
    "ConsoleSession",
    "Output",
    "State",
    "VersionInfo",
]
