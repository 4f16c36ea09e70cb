"""Client of the daemon's local API socket (DATA/api.sock), for the ``skillepunkt`` CLI.

The daemon serves its REST API on a unix socket beside the data, readable only by the
firmware's user: whoever can open it could read the database anyway, so requests on
it are trusted as admin without a session. Stdlib only, so the CLI starts fast.
"""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any

API_SOCKET = "api.sock"


class LocalApiError(Exception):
    """The daemon could not be reached, or refused the request."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def request(data_dir: Path, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
    """One JSON request to the running daemon; returns the decoded JSON answer."""
    sock_path = Path(data_dir) / API_SOCKET
    conn = _UnixConnection(str(sock_path), timeout)
    headers = {"Accept": "application/json"}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        text = response.read().decode()
    except (FileNotFoundError, ConnectionRefusedError):
        raise LocalApiError(
            f"no daemon is running with data directory {data_dir} ({sock_path})"
        ) from None
    except OSError as exc:
        raise LocalApiError(f"daemon unreachable: {exc}") from None
    finally:
        conn.close()
    try:
        result = json.loads(text) if text else None
    except json.JSONDecodeError:
        result = text
    if response.status >= 400:
        message = result.get("error") if isinstance(result, dict) else result
        raise LocalApiError(f"{response.status}: {message}")
    return result
