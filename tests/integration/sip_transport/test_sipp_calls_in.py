"""SIPp calls our endpoint (a test UAS on it): UDP, TCP, OPTIONS, packet loss, CANCEL,
and RFC 4475 garbage thrown at the same socket while calls run."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import pytest

from firmware.sip.endpoint import SipEndpoint

from .conftest import (
    HERE,
    TORTURE_DIR,
    TestUas,
    needs_sipp,
    production_loop,
    run_sipp,
    udp_probe,
)

pytestmark = [pytest.mark.peer, needs_sipp, production_loop]

Uas = tuple[SipEndpoint, TestUas]


def target(endpoint: SipEndpoint, kind: str = "udp") -> str:
    address = endpoint.address(kind)  # type: ignore[arg-type]
    assert address is not None
    return f"{address[0]}:{address[1]}"


async def test_uac_scenario_over_udp(uas: Uas, tmp_path: Path) -> None:
    endpoint, tu = uas
    result = await run_sipp(["-sn", "uac", target(endpoint), "-m", "50", "-r", "100"], tmp_path)
    assert result.returncode == 0, result.explain()
    assert tu.counters.requests == {"INVITE": 50, "BYE": 50}
    assert tu.counters.acks == 50  # SIPp's 2xx ACKs reached the TU


async def test_uac_scenario_over_tcp(uas: Uas, tmp_path: Path) -> None:
    endpoint, tu = uas
    result = await run_sipp(
        ["-sn", "uac", target(endpoint, "tcp"), "-t", "t1", "-m", "50", "-r", "100"], tmp_path
    )
    assert result.returncode == 0, result.explain()
    assert tu.counters.requests == {"INVITE": 50, "BYE": 50}
    assert endpoint.transport.stats.connections_accepted == 1  # one socket, as -t t1 asks
    # reliable transport: completed transactions do not linger (J = 0); only the
    # INVITEs wait out timer L (RFC 6026)
    assert endpoint.layer.server_count <= 50


async def test_options_ping(uas: Uas, tmp_path: Path) -> None:
    endpoint, tu = uas
    result = await run_sipp(
        ["-sf", str(HERE / "options_uac.xml"), target(endpoint), "-m", "20", "-r", "50"], tmp_path
    )
    assert result.returncode == 0, result.explain()
    assert tu.counters.requests == {"OPTIONS": 20}


async def test_packet_loss_recovered_by_retransmissions(uas: Uas, tmp_path: Path) -> None:
    """SIPp drops 10% of what it sends and receives; every call must still succeed."""
    endpoint, tu = uas
    result = await run_sipp(
        ["-sn", "uac", target(endpoint), "-m", "40", "-r", "40", "-lost", "10", "-timeout", "50s"],
        tmp_path,
        timeout=70,
    )
    assert result.returncode == 0, result.explain()
    assert tu.counters.requests["INVITE"] == 40
    # SIPp's built-in uac does not check the CSeq method of the 200 it awaits for its
    # BYE: when its ACK and then its BYE are lost, our retransmitted INVITE 2xx can end
    # the call on its side before the BYE retransmission arrives.
    assert tu.counters.requests["BYE"] >= 35
    stats = endpoint.layer.stats
    print(
        f"\n-lost 10: requests absorbed as retransmissions {stats.retransmissions_absorbed}, "
        f"2xx retransmitted by the TU {tu.counters.retransmitted_2xx}"
    )
    assert stats.retransmissions_absorbed + tu.counters.retransmitted_2xx > 0


async def test_cancel_before_answer(uas: Uas, tmp_path: Path) -> None:
    endpoint, tu = uas
    result = await run_sipp(
        ["-sf", str(HERE / "cancel_uac.xml"), target(endpoint), "-m", "10", "-r", "20"], tmp_path
    )
    assert result.returncode == 0, result.explain()
    assert tu.counters.requests == {"INVITE": 10}  # CANCEL never reaches the TU as a request
    assert tu.counters.cancels == 10
    assert endpoint.layer.stats.cancels_unmatched == 0


# What the parser refuses among RFC 4475's invalid messages: answered status, or None
# when it cannot be answered (a response, or nothing to copy into one).
MALFORMED: dict[str, int | None] = {
    "badinv01": 400,
    "clerr": 400,
    "ncl": 400,
    "scalar02": 400,
    "scalarlg": None,
    "quotbal": 400,
    "ltgtruri": 400,
    "lwsruri": 400,
    "lwsstart": 400,
    "trws": 400,
    "escruri": 400,
    "badaspec": 400,
    "baddn": None,
    "badvers": 505,
    "mismatch01": 400,
    "mismatch02": 400,
    "bigcode": None,
    "insuf": None,
    "multi01": 400,
    "mcl01": 400,
}


def torture_messages() -> dict[str, bytes]:
    if not TORTURE_DIR.is_dir():
        pytest.fail(f"RFC 4475 torture messages not found at {TORTURE_DIR}")
    with (TORTURE_DIR / "manifest.tsv").open(newline="", encoding="utf-8") as f:
        names = {row["name"] for row in csv.DictReader(f, delimiter="\t")}
    assert set(MALFORMED) <= names
    return {name: (TORTURE_DIR / f"{name}.dat").read_bytes() for name in MALFORMED}


async def test_malformed_datagrams_during_calls(uas: Uas, tmp_path: Path) -> None:
    """Garbage gets 400 (505) sent back to its source, or silence; calls carry on."""
    endpoint, tu = uas
    messages = torture_messages()
    host, port = endpoint.address("udp") or ("", 0)
    calls = asyncio.create_task(
        run_sipp(["-sn", "uac", target(endpoint), "-m", "40", "-r", "20"], tmp_path)
    )
    answers: dict[str, int | None] = {}
    async with udp_probe() as probe:
        for name, data in messages.items():
            probe.send(data, (host, port))
            try:
                reply = await probe.recv(0.5)
            except TimeoutError:
                answers[name] = None
                continue
            # the status line only: the answer copies the broken headers as received
            version, status, _ = reply.split(b" ", 2)
            assert version == b"SIP/2.0"
            answers[name] = int(status)
    result = await calls
    assert answers == MALFORMED
    assert result.returncode == 0, result.explain()
    assert tu.counters.requests == {"INVITE": 40, "BYE": 40}
    stats = endpoint.transport.stats
    assert stats.malformed == len(MALFORMED)
    assert stats.answered_malformed == sum(1 for v in MALFORMED.values() if v is not None)
