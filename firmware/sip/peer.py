"""Where a SIP message came from or goes to, as the transport layer sees it.

Shared by the transports, the transaction layer, the registrar and the B2BUA: a
registered phone behind NAT is reached at the address its REGISTER came from (and, on
TCP/TLS, over the very connection it opened), not at the address in its Contact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Transport = Literal["udp", "tcp", "tls"]


@dataclass(frozen=True, slots=True)
class Peer:
    transport: Transport
    host: str  # IP address as text; IPv6 without brackets
    port: int
    connection: int | None = None  # id of the TCP/TLS connection it arrived on; None for UDP

    @property
    def hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.transport}:{self.hostport}"
