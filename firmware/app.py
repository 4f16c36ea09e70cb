"""The running appliance as one object handed to every service: what they share.

Services get the ``App`` at construction and talk to each other through ``bus``
events, never by holding references to one another.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .config import AdminAccount, ConfigStore
from .events import EventBus
from .system.supervisor import Supervisor

if TYPE_CHECKING:
    from board.base import Board


@dataclass(frozen=True)
class Ports:
    """Where the services listen. Dev defaults (127.0.0.1) here; the box uses 443/80, 69."""

    host: str = "127.0.0.1"
    web: int = 8080
    sip: int = 5060
    sip_tls: int = 5061
    tftp: int = 6969
    rtp_first: int = 10000  # media relay ports (even RTP, odd RTCP), inclusive
    rtp_last: int = 19999


@dataclass
class App:
    data_dir: Path
    store: ConfigStore
    admin: AdminAccount
    bus: EventBus
    supervisor: Supervisor
    board: Board
    ports: Ports = field(default_factory=Ports)
    version: str = __version__
    started_at: float = field(default_factory=time.time)
