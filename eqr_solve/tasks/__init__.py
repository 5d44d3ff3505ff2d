"""Puzzle kinds. Each module knows one kind: parse, format, validate, check, augment, generate,
and a canonical key (which puzzles are the same up to symmetry).

Everything outside this package sees a puzzle as a 2-D grid of integer *tokens*
(``np.ndarray`` of shape ``(H, W)``, dtype uint8). Token 0 is padding and never appears
in a real puzzle. The model, the solver and the trainer only ever handle token grids;
the text forms live here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Puzzle:
    """One parsed puzzle: its token grid and where it came from (``file:line``)."""

    grid: np.ndarray
    source: str


@dataclass
class PuzzleError:
    """A puzzle that could not be used, with a one-line reason for the user."""

    source: str
    message: str


class InputError(ValueError):
    """Raised for user input that cannot be used at all (bad file, bad format)."""


KINDS = ("sudoku", "maze")  # the registry: one module per kind in this package


def get_task(kind: str):
    """The module that implements puzzle kind ``kind``."""
    if kind not in KINDS:
        raise InputError(f"unknown puzzle kind {kind!r}; choose one of {', '.join(KINDS)}")
    return importlib.import_module(f"eqr_solve.tasks.{kind}")


def read_text(path: Path) -> str:
    """Read a puzzle file as text, with a clear error for unreadable or binary files."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from e
    if b"\0" in data:
        raise InputError(f"{path}: not a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text") from e
