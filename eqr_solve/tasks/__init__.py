"""Puzzle kinds. Each module knows one kind: parse, format, validate, check, augment, generate,
and a canonical key (which puzzles are the same up to symmetry).

Everything outside this package sees a puzzle as a 2-D grid of integer *tokens*
(``np.ndarray`` of shape ``(H, W)``, dtype uint8). Token 0 is padding and never appears
in a real puzzle. The model, the solver and the trainer only ever handle token grids;
the text forms live here.
"""

from __future__ import annotations

import errno
import importlib
import stat
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eqr_solve.errors import InputError  # noqa: F401  (re-exported: the old import path)


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


KINDS = ("sudoku", "maze")  # the registry: one module per kind in this package


def get_task(kind: str):
    """The module that implements puzzle kind ``kind``."""
    if kind not in KINDS:
        raise InputError(f"unknown puzzle kind {kind!r}; choose one of {', '.join(KINDS)}")
    return importlib.import_module(f"eqr_solve.tasks.{kind}")


STDIN = Path("-")  # the path argument "-": puzzles piped in, named "stdin" in messages


def display_name(path: Path) -> str:
    return "stdin" if path == STDIN else str(path)


MAX_FILE_BYTES = 64 * 2**20  # a puzzle file bigger than this is refused, not read to the end
_CHUNK = 2**20


def read_text(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    """Read a puzzle file as text, with a one-line error for an unreadable, binary or too big
    file. At most ``limit`` bytes are ever read, so a fifo or a device (/dev/zero) ends in
    that error instead of filling the memory."""
    chunks: list[bytes] = []
    size = 0
    name = display_name(path)
    try:
        with nullcontext(sys.stdin.buffer) if path == STDIN else open(path, "rb") as f:
            while chunk := f.read(min(_CHUNK, limit + 1 - size)):
                if b"\0" in chunk:
                    raise InputError(f"{name}: not a text file")
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise InputError(f"{name}: bigger than {limit / 2**20:g} MiB, the limit for "
                                     "a puzzle file (split it)")
    except OSError as e:
        raise InputError(f"{name}: cannot read ({e.strerror or e})") from e
    try:
        return b"".join(chunks).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{name}: not UTF-8 text") from e


def _not_a_file(path: Path) -> str | None:
    """Why a directory entry is not read as a puzzle file, or None for a regular file."""
    try:
        mode = path.stat().st_mode
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symbolic link loop"
        if path.is_symlink():
            return "a broken symbolic link"
        return f"cannot read ({e.strerror or e})"
    if stat.S_ISDIR(mode):
        return "a directory (folders are not searched)"
    return None if stat.S_ISREG(mode) else "not a regular file"


def puzzle_files(path: Path) -> tuple[list[Path], list[PuzzleError]]:
    """The files a path argument names: the path itself, or the visible regular files of a
    directory (sorted, not recursive). The directory's other entries (folders, fifos, broken
    or looping symbolic links) come back as skipped, each with its reason. ``-`` is standard
    input."""
    if path == STDIN:
        return [path], []
    if path.is_symlink() and not path.exists():
        raise InputError(f"{path}: {_not_a_file(path)}")
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if not path.is_dir():
        return [path], []
    try:
        entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    except OSError as e:
        raise InputError(f"{path}: cannot list the directory ({e.strerror or e})") from e
    files, skipped = [], []
    for p in entries:
        reason = _not_a_file(p)
        if reason:
            skipped.append(PuzzleError(str(p), reason))
        else:
            files.append(p)
    if not files:
        raise InputError(f"{path}: the directory holds no puzzle files")
    return files, skipped


def read_puzzles(kind: str, files: list[Path]) -> list[Puzzle | PuzzleError]:
    """Parse every file; a file that cannot be used at all becomes one PuzzleError, so one bad
    file never stops the others."""
    task = get_task(kind)
    items: list[Puzzle | PuzzleError] = []
    for f in files:
        name = display_name(f)
        try:
            found = task.parse(read_text(f), name)
        except InputError as e:
            found = [PuzzleError(name, str(e).removeprefix(f"{name}: "))]
        items += found or [PuzzleError(name, "no puzzles in the file")]
    return items
