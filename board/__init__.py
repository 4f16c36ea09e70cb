"""Board definitions (which chip sits on which bus) and the boards that carry them."""

from __future__ import annotations

from pathlib import Path

from .base import Board, BoardError


def open_board(name: str, data_dir: Path) -> Board:
    """Open the board called ``name`` ("sim" is the simulated reference board)."""
    if name == "sim":
        from .sim import SimBoard

        return SimBoard(data_dir)
    raise BoardError(f"unknown board {name!r}; known boards: sim")


__all__ = ["Board", "BoardError", "open_board"]
