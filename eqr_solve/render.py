"""Terminal drawings (Rich): boards, mazes, convergence traces, summary tables."""

from __future__ import annotations

import math

import numpy as np
from rich.table import Table
from rich.text import Text

from eqr_solve.tasks import get_task

SPARK = "▁▂▃▄▅▆▇█"
SUDOKU_CHARS = ".123456789ABCDEFG"


def sparkline(values: list[float], width: int = 48) -> str:
    """Log-scale sparkline of positive values (residuals span orders of magnitude)."""
    vals = [v for v in values if v == v and v > 0]  # drop NaN / zero
    if not vals:
        return ""
    if len(vals) > width:  # keep the shape: sample evenly, always keep the last value
        idx = np.linspace(0, len(vals) - 1, width).round().astype(int)
        vals = [vals[i] for i in idx]
    logs = [math.log10(v) for v in vals]
    lo, hi = min(logs), max(logs)
    span = hi - lo or 1.0
    return "".join(SPARK[min(7, int((x - lo) / span * 7.999))] for x in logs)


def sudoku_board(puzzle: np.ndarray, answer: np.ndarray | None = None) -> Text:
    """Givens bold, model-filled digits cyan, cells in conflict red."""
    sudoku = get_task("sudoku")
    n = puzzle.shape[0]
    br, bc = sudoku.box_shape(n)
    shown = puzzle if answer is None else answer
    bad = sudoku.conflicts(puzzle, answer) if answer is not None else np.zeros_like(puzzle, bool)
    text = Text()
    rule = "+".join("-" * (2 * bc + 1) for _ in range(n // bc))
    for r in range(n):
        if r and r % br == 0:
            text.append(rule + "\n", style="dim")
        for c in range(n):
            if c and c % bc == 0:
                text.append("| ", style="dim")
            elif c == 0:
                text.append(" ")
            token = int(shown[r, c])
            ch = SUDOKU_CHARS[token - 1] if 1 <= token <= len(SUDOKU_CHARS) else "?"
            if bad[r, c]:
                style = "bold white on red"
            elif puzzle[r, c] > 1:
                style = "bold"
            elif token > 1:
                style = "cyan"
            else:
                style = "dim"
            text.append(ch, style=style)
            text.append(" ")
        text.append("\n")
    return text


def maze_board(puzzle: np.ndarray, answer: np.ndarray | None = None) -> Text:
    """Walls as blocks, the path as dots; path cells in the wrong place red."""
    maze = get_task("maze")
    shown = puzzle if answer is None else answer
    bad = maze.conflicts(puzzle, answer) if answer is not None else np.zeros_like(puzzle, bool)
    glyph = {1: ("██", "grey50"), 2: ("  ", ""), 3: ("S ", "bold green"), 4: ("G ", "bold red"),
             5: ("··", "bold yellow")}
    text = Text()
    for r in range(shown.shape[0]):
        for c in range(shown.shape[1]):
            ch, style = glyph.get(int(shown[r, c]), ("??", "red"))
            if bad[r, c]:
                style = "bold white on red"
                ch = "××" if ch.strip() in ("", "··", "██") else ch
            text.append(ch, style=style)
        text.append("\n")
    return text


def board(kind: str, puzzle: np.ndarray, answer: np.ndarray | None = None) -> Text:
    return sudoku_board(puzzle, answer) if kind == "sudoku" else maze_board(puzzle, answer)


def trace_line(result, depth: int, halt: str) -> Text:
    """Residual sparkline, halting step, chosen restart, NFE, time and validity."""
    text = Text()
    if result.residuals:
        text.append("residual ", style="dim")
        text.append(sparkline(result.residuals), style="magenta")
        text.append(f" {result.residuals[-1]:.2e}\n", style="dim")
    stopped = "ran all" if result.steps >= depth else f"halted ({halt}) at"
    text.append(f"{stopped} {result.steps}/{depth} segments · restart {result.restart} · "
                f"NFE {result.nfe} · {result.seconds:.2f}s  ", style="dim")
    if result.valid:
        text.append("✓ valid", style="bold green")
    elif result.valid is False:
        text.append("✗ not a valid solution", style="bold red")
    return text


def summary_table(title: str, rows: list[dict]) -> Table:
    """One row per model/shape group: count, valid, mean steps, mean NFE, puzzles/s."""
    table = Table(title=title, title_justify="left")
    for col in ("model", "board", "puzzles", "valid", "mean steps", "mean NFE", "time",
                "puzzles/s"):
        table.add_column(col, justify="right" if col not in ("model", "board") else "left")
    for r in rows:
        n = max(1, r["count"])
        table.add_row(
            r["model"], r["board"], str(r["count"]),
            f"{r['valid']} ({100 * r['valid'] / n:.1f}%)",
            f"{r['steps'] / n:.1f}", f"{r['nfe'] / n:.1f}", f"{r['seconds']:.1f}s",
            f"{r['count'] / max(r['seconds'], 1e-9):.2f}",
        )
    return table
