"""A dial-in conference room on the box with three pjsua2 phones: each plays its own
tone and records what it hears; each must hear the other two tones and not its own."""

from __future__ import annotations

import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from peers.audio import tone_wav
from peers.box import Daemon, free_port, start_daemon, stop_daemon
from peers.pjsua import PjPhone

pytestmark = [pytest.mark.peer, pytest.mark.slow]

PHONES = {"101": 600.0, "201": 1000.0, "202": 1400.0}
CONFIG = (
    "users:\n"
    + "".join(
        f'  - {{extension: "{ext}", name: User {ext}, sip_password: "pass-{ext}-secret"}}\n'
        for ext in PHONES
    )
    + 'sip: {conference_rooms: ["800"]}\n'
)


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Daemon]:
    d = start_daemon(tmp_path, CONFIG)
    try:
        d.wait_healthy()
        yield d
    finally:
        stop_daemon(d)


def levels(path: Path, freqs: list[float]) -> dict[float, float]:
    """Spectral magnitude near each frequency over the recording's loud part."""
    with wave.open(str(path)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
    samples = samples[len(samples) // 3 :]  # everyone has joined by then
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    hz = np.fft.rfftfreq(len(samples), 1 / 8000)
    return {f: float(spectrum[(hz > f - 15) & (hz < f + 15)].max()) for f in freqs}


def test_three_parties_each_hear_the_other_two(box: Daemon, tmp_path: Path) -> None:
    phones: dict[str, PjPhone] = {}
    recordings = {ext: tmp_path / f"heard-{ext}.wav" for ext in PHONES}
    try:
        for ext, freq in PHONES.items():
            tone_wav(tmp_path / f"tone-{ext}.wav", freq, seconds=15.0)
            p = PjPhone(
                domain=f"127.0.0.1:{box.sip_port}",
                user=ext,
                password=f"pass-{ext}-secret",
                port=free_port(),
                register=True,
            )
            phones[ext] = p
            p.wait_for("reg_state", code=200)
        for ext, p in phones.items():
            p.send("play", wav=str(tmp_path / f"tone-{ext}.wav"))
            p.send("record", wav=str(recordings[ext]))
            p.send("call", uri=f"sip:800@127.0.0.1:{box.sip_port}")
            p.wait_for("call_state", state="CONFIRMED")
        time.sleep(4)
        for p in phones.values():
            p.send("hangup")
            p.wait_for("call_state", state="DISCONNECTED")
    finally:
        for p in phones.values():
            p.close()
    for ext, own in PHONES.items():
        heard = levels(recordings[ext], list(PHONES.values()))
        others = [heard[f] for f in PHONES.values() if f != own]
        assert min(others) > 20 * heard[own], (ext, heard)  # > 26 dB above its own tone
