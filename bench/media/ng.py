"""A small client of rtpengine's NG control protocol: bencode over UDP, on 127.0.0.1.

Each request is ``<cookie> <bencoded dict>``; the reply echoes the cookie. Used by
bench/media_relay.py to set up the anchor's sessions the way a SIP proxy would (offer with
the caller's SDP, answer with the callee's) and to delete them.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
from typing import Any

Value = int | bytes | str | list[Any] | dict[str, Any]


class NgError(RuntimeError):
    """rtpengine answered an error, or did not answer."""


def bencode(value: Value) -> bytes:
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans")
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def bdecode(data: bytes) -> Any:
    value, end = _decode(data, 0)
    if end != len(data):
        raise ValueError(f"{len(data) - end} bytes after the bencoded value")
    return value


def _decode(data: bytes, i: int) -> tuple[Any, int]:
    lead = data[i : i + 1]
    if lead == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1 : end]), end + 1
    if lead == b"l":
        items, i = [], i + 1
        while data[i : i + 1] != b"e":
            item, i = _decode(data, i)
            items.append(item)
        return items, i + 1
    if lead == b"d":
        out, i = {}, i + 1
        while data[i : i + 1] != b"e":
            key, i = _decode(data, i)
            out[key.decode()], i = _decode(data, i)
        return out, i + 1
    if lead.isdigit():
        colon = data.index(b":", i)
        size = int(data[i:colon])
        start = colon + 1
        if start + size > len(data):
            raise ValueError("bencoded string runs past the end")
        return data[start : start + size], start + size
    raise ValueError(f"bad bencode at offset {i}")


class NgClient:
    """Blocking NG requests with a timeout and a few retries (UDP may drop)."""

    def __init__(self, address: tuple[str, int], timeout: float = 1.0, retries: int = 3) -> None:
        self.address = address
        self.timeout = timeout
        self.retries = retries
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(timeout)
        self._cookies = itertools.count()
        self._prefix = os.urandom(4).hex()

    def close(self) -> None:
        self.sock.close()

    def request(self, command: dict[str, Value]) -> dict[str, Any]:
        cookie = f"{self._prefix}_{next(self._cookies)}".encode()
        message = cookie + b" " + bencode(command)
        for _ in range(self.retries):
            self.sock.sendto(message, self.address)
            try:
                while True:
                    data, _ = self.sock.recvfrom(65535)
                    got, _, body = data.partition(b" ")
                    if got == cookie:
                        break
            except TimeoutError:
                continue
            reply = bdecode(body)
            if reply.get("result") not in (b"ok", b"pong"):
                reason = reply.get("error-reason", b"?")
                raise NgError(f"{command.get('command')!r}: {reply.get('result')!r} {reason!r}")
            return dict(reply)
        raise NgError(f"no answer from rtpengine at {self.address} to {command.get('command')!r}")

    def ping(self) -> None:
        self.request({"command": "ping"})

    def offer(self, call_id: str, from_tag: str, sdp: str) -> str:
        reply = self.request(
            {
                "command": "offer",
                "call-id": call_id,
                "from-tag": from_tag,
                "sdp": sdp,
                "replace": ["origin", "session-connection"],
                "ICE": "remove",
            }
        )
        return str(reply["sdp"].decode())

    def answer(self, call_id: str, from_tag: str, to_tag: str, sdp: str) -> str:
        reply = self.request(
            {
                "command": "answer",
                "call-id": call_id,
                "from-tag": from_tag,
                "to-tag": to_tag,
                "sdp": sdp,
                "replace": ["origin", "session-connection"],
                "ICE": "remove",
            }
        )
        return str(reply["sdp"].decode())

    def delete(self, call_id: str, from_tag: str) -> None:
        self.request({"command": "delete", "call-id": call_id, "from-tag": from_tag})


def audio_sdp(port: int, session: int, pt: int = 8) -> str:
    """A G.711 offer/answer from a phone on 127.0.0.1 receiving on ``port``."""
    name = {0: "PCMU", 8: "PCMA"}[pt]
    return (
        f"v=0\r\no=- {session} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP {pt}\r\na=rtpmap:{pt} {name}/8000\r\na=ptime:20\r\n"
        "a=sendrecv\r\n"
    )


def sdp_port(sdp: str) -> int:
    match = re.search(r"^m=audio (\d+) ", sdp, re.MULTILINE)
    if match is None:
        raise NgError(f"no audio port in rtpengine's SDP: {sdp!r}")
    return int(match.group(1))
