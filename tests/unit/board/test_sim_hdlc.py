"""HDLC D-channels: one whole frame per read, both ways, as DAHDI and libpri expect."""

from __future__ import annotations

import os
import select
import socket

from board.sim import SimBoard
from board.sim.hdlc import MAX_FRAME, HdlcChannel

from .conftest import open_fds

SABME = bytes([0x00, 0x01, 0x7F])  # TEI assignment-style SAPI 0 / TEI 0 SABME
UA = bytes([0x00, 0x01, 0x73])
I_FRAME = bytes([0x00, 0x01, 0x00, 0x00]) + bytes([0x08, 0x01, 0x01, 0x05]) + b"\xa1" * 200


def test_one_frame_per_read_both_ways() -> None:
    ch = HdlcChannel("hdlc0")
    for frame in (SABME, I_FRAME, UA):
        ch.peer.send(frame)
    # three frames queued: each read returns exactly one, even with a big buffer
    assert [os.read(ch.fd, MAX_FRAME) for _ in range(3)] == [SABME, I_FRAME, UA]
    os.write(ch.fd, UA)
    os.write(ch.fd, I_FRAME)
    assert ch.peer.recv(MAX_FRAME) == UA
    assert ch.peer.recv(MAX_FRAME) == I_FRAME
    ch.close()
    assert ch.closed


def test_fd_is_pollable_and_seqpacket() -> None:
    ch = HdlcChannel("hdlc1")
    assert ch.firmware.type == socket.SOCK_SEQPACKET
    assert select.select([ch.fd], [], [], 0)[0] == []
    ch.peer.send(SABME)
    assert select.select([ch.fd], [], [], 0)[0] == [ch.fd]
    ch.close()


def test_board_has_a_channel_per_isdn_port(sim_board: SimBoard) -> None:
    pri = sim_board.definition.device("pri1")
    ch = sim_board.hdlc(pri.bus)
    assert ch.name == "hdlc2"
    ch.peer.send(SABME)
    assert os.read(ch.fd, MAX_FRAME) == SABME
    assert sorted(sim_board.hdlc_channels) == ["hdlc0", "hdlc1", "hdlc2"]


def test_close_releases_both_ends() -> None:
    before = open_fds()
    ch = HdlcChannel("hdlc0")
    assert open_fds() == before + 2
    ch.close()
    ch.close()
    assert open_fds() == before
