"""Relay throughput: 20k RTP packets through 50 sessions on loopback, both directions.

Prints packets/s and the relay process's CPU µs per packet, next to a bare relay (one
protocol per port, a plain ``sendto``) measured in the same run; run with ``-s`` to see
it. Not a timed assertion (machines differ); it asserts only that nothing was lost.
The relay runs in a child process so its CPU time is not mixed with the generator's.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("_relay_bench_child.py")
ROOT = Path(__file__).resolve().parents[3]
HOST = "127.0.0.1"
SESSIONS = 50
PACKETS = 20_000
WINDOW = 4  # rounds in flight (each round: one packet per session and direction)
PACKET = b"\x80\x08" + bytes(170)  # 172 bytes: 12-byte header + 20 ms of G.711


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.settimeout(2.0)
    return sock


def _run(loop_name: str, kind: str, burst: bool) -> tuple[float, float, int, int]:
    """Returns (packets/s, CPU µs per packet, forwarded, lost).

    ``burst`` keeps WINDOW rounds in flight (several packets per loop wake-up, as under
    load); otherwise one packet at a time (one wake-up each: the dearest case).
    """
    a_side = [_socket() for _ in range(SESSIONS)]
    b_side = [_socket() for _ in range(SESSIONS)]
    remotes = [
        [a.getsockname()[1], b.getsockname()[1]] for a, b in zip(a_side, b_side, strict=True)
    ]
    child = subprocess.Popen(
        [sys.executable, str(CHILD), loop_name, kind, json.dumps(remotes)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        ports = json.loads(child.stdout.readline())

        def cpu() -> tuple[float, int]:
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write("cpu\n")
            child.stdin.flush()
            seconds, count = json.loads(child.stdout.readline())
            return float(seconds), int(count)

        cpu_before, count_before = cpu()
        began = time.perf_counter()
        lost = 0
        rounds = PACKETS // (2 * SESSIONS)
        window = WINDOW if burst else 1
        for start in range(0, rounds, window):
            batch = min(window, rounds - start)
            for _ in range(batch):
                for (port_a, port_b), a, b in zip(ports, a_side, b_side, strict=True):
                    if burst:
                        a.sendto(PACKET, (HOST, port_a))
                        b.sendto(PACKET, (HOST, port_b))
                        continue
                    for src, dst, port in ((a, b, port_a), (b, a, port_b)):
                        src.sendto(PACKET, (HOST, port))
                        try:
                            dst.recv(2048)
                        except TimeoutError:
                            lost += 1
            if not burst:
                continue
            for _ in range(batch):
                for a, b in zip(a_side, b_side, strict=True):
                    for sock in (b, a):
                        try:
                            sock.recv(2048)
                        except TimeoutError:
                            lost += 1
        wall = time.perf_counter() - began
        cpu_after, count_after = cpu()
        forwarded = count_after - count_before
        return (
            forwarded / wall,
            (cpu_after - cpu_before) / max(forwarded, 1) * 1e6,
            forwarded,
            lost,
        )
    finally:
        child.stdin.write("quit\n")
        child.stdin.close()
        child.wait(timeout=10)
        child.stdout.close()
        for sock in a_side + b_side:
            sock.close()


@pytest.mark.parametrize("burst", [True, False], ids=["burst", "one-by-one"])
@pytest.mark.parametrize("loop_name", ["uvloop", "asyncio"])
def test_relay_throughput(loop_name: str, burst: bool) -> None:
    rate, cost, forwarded, lost = _run(loop_name, "relay", burst)
    bare_rate, bare_cost, _, _ = _run(loop_name, "bare", burst)
    mode = "burst" if burst else "one-by-one"
    print(
        f"\nrelay ({loop_name}, {mode}, {SESSIONS} sessions, {forwarded} packets): "
        f"{rate:,.0f} packets/s, {cost:.1f} µs CPU/packet; "
        f"bare relay {bare_rate:,.0f} packets/s, {bare_cost:.1f} µs CPU/packet; "
        f"relay/bare CPU {cost / bare_cost:.2f}"
    )
    assert lost == 0 and forwarded == PACKETS
