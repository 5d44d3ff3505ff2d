"""Terminal drawings (Rich): boards, mazes, convergence traces, summary tables."""

from __future__ import annotations

import math

import numpy as np
from rich import box
from rich.console import Group
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
    if kind == "sudoku":
        return sudoku_board(puzzle, answer)
    text = maze_board(puzzle, answer)
    if answer is not None and get_task("maze").marks_no_path(answer):
        text.append("no path from S to G\n", style="bold")
    return text


def frame(kind: str, puzzle: np.ndarray, answer: np.ndarray, segment: int, total: int) -> Group:
    """One segment of a watched trajectory: what the answer is after ``segment`` segments
    (maze: the path cells so far, Sudoku: the cells in conflict)."""
    task = get_task(kind)
    wrong = int(task.conflicts(puzzle, answer).sum())
    if kind == "maze":
        what = f"{int((answer == task.PATH).sum())} path cells, {wrong} misplaced"
    else:
        what = f"{wrong} cells in conflict"
    caption = Text(f"segment {segment}/{total} · {what}", style="bold cyan")
    return Group(caption, board(kind, puzzle, answer))


def frame_picks(n: int) -> list[int]:
    """Segments to print when frames cannot be animated: 1, 2, 4, 8, ... and the last."""
    picks = [k for k in (2**i for i in range(n.bit_length())) if k <= n]
    return picks if picks[-1] == n else picks + [n]


def trace_line(result, depth: int, halt: str) -> Text:
    """Residual sparkline, halting step, chosen restart, NFE, time and validity."""
    text = Text()
    if result.residuals:
        text.append("residual ", style="dim")
        text.append(sparkline(result.residuals), style="magenta")
        text.append(f" {result.residuals[-1]:.2e}\n", style="dim")
    depth = result.depth or depth  # an escalated restart had its own attempt's depth
    stopped = "ran all" if result.steps >= depth else f"halted ({halt}) at"
    restarts = len(result.restart_steps) if result.restart_steps is not None else 1
    text.append(f"{stopped} {result.steps}/{depth} segments · restart {result.restart + 1} of "
                f"{restarts} · NFE {result.nfe} · {result.seconds:.2f}s  ", style="dim")
    if getattr(result, "rejected", False):
        text.append("halting head rejected every answer found · ", style="yellow")
    if result.valid:
        text.append("✓ valid", style="bold green")
    elif result.valid is False:
        text.append("✗ not a valid solution", style="bold red")
    return text


def summary_table(title: str, rows: list[dict]) -> Table:
    """One row per model/shape group: count, valid, how many needed more than the first
    attempt (retries, escalation: "retried"), mean steps, mean NFE, puzzles/s."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)  # 9 columns in 80
    for col in ("model", "board", "puzzles", "valid", "retried", "mean\nsteps", "mean\nNFE",
                "time", "puzzles\nper s"):
        table.add_column(col, justify="right" if col not in ("model", "board") else "left")
    for r in rows:
        n = max(1, r["count"])
        table.add_row(
            r["model"], r["board"], str(r["count"]),
            f"{r['valid']} ({100 * r['valid'] / n:.1f}%)", str(r["retried"]),
            f"{r['steps'] / n:.1f}", f"{r['nfe'] / n:.1f}", f"{r['seconds']:.1f}s",
            f"{r['count'] / max(r['seconds'], 1e-9):.2f}",
        )
    return table


def _pct(x: float) -> str:
    return "-" if x != x else f"{100 * x:.1f}"


def eval_tables(result: dict) -> list[Table]:
    """Terminal view of ``evaluate.evaluate``: the grid, ACT, alignment and strata."""
    cells = [c for c in result["cells"] if c["stratum"] == "all"]
    passes = {"both": "every segment", "none": "every segment", "act": "learned halting",
              "residual": f"residual halting, tol {result.get('tol')}"}
    grid = Table(title=f"{result.get('model', '')}: {result['puzzles']} puzzles, exact "
                       f"accuracy % by selection rule ({passes[result.get('halt', 'both')]})",
                 title_justify="left")
    for col in ("D", "B", "resid.", "vote", "q", "any", "cells", "steps", "NFE", "time~",
                "retry (NFE)", "race (NFE)", "race q (NFE)"):
        grid.add_column(col, justify="right")
    for c in cells:
        retry = (f"{_pct(c['acc_retry'])} ({c['mean_nfe_retry']:.0f})" if c["breadth"] > 1
                 and "acc_retry" in c else "")
        race, race_q = ((f"{_pct(c[f'acc_{k}'])} ({c[f'mean_nfe_{k}']:.0f})"
                         if c["breadth"] > 1 and f"acc_{k}" in c else "")
                        for k in ("race", "race_q"))
        grid.add_row(str(c["depth"]), str(c["breadth"]), _pct(c["acc_residual"]),
                     _pct(c["acc_vote"]), _pct(c["acc_q"]), _pct(c["any_correct"]),
                     _pct(c["cell_acc"]), f"{c['mean_steps']:.1f}", f"{c['mean_nfe']:.0f}",
                     f"{c['seconds_est']:.3g}s", retry, race, race_q)
    grid.caption = ("resid./vote/q: exact % of the restart chosen by that rule; any: some "
                    "restart exact (pass@B); ~: estimated from the pass's share of segments; "
                    "retry: B-1 more restarts only when the first did not halt early "
                    "(--breadth 1 --retries B-1); race: the B restarts side by side, the first "
                    "to settle answers (--breadth B --race); race q: the same, settling only "
                    f"with q > {result.get('q_accept', 0.0):g} (--breadth B --race --select q)")
    tables = [grid]
    act = {(c["depth"], c["breadth"]): c for c in result.get("act", []) if c["stratum"] == "all"}
    if act:
        t = Table(title="learned halting (ACT) vs running every segment", title_justify="left")
        for col in ("D", "B", "fixed acc", "fixed NFE", "ACT acc", "ACT NFE", "NFE saved"):
            t.add_column(col, justify="right")
        for c in cells:
            a = act[(c["depth"], c["breadth"])]
            t.add_row(str(c["depth"]), str(c["breadth"]), _pct(c["acc_residual"]),
                      f"{c['mean_nfe']:.0f}", _pct(a["acc_residual"]), f"{a['mean_nfe']:.1f}",
                      f"{c['mean_nfe'] / max(a['mean_nfe'], 1e-9):.2f}x")
        tables.append(t)
    t = Table(title="alignment: does the residual flag wrong answers? (per trajectory)",
              title_justify="left")
    for col in ("D", "wrong %", "AUROC", "Spearman", "median res. correct", "median res. wrong"):
        t.add_column(col, justify="right")
    for a in result["alignment"]:
        t.add_row(str(a["depth"]), _pct(a["wrong_rate"]), f"{a['auroc']:.3f}",
                  f"{a['spearman']:.3f}", f"{a['median_residual_correct']:.3g}",
                  f"{a['median_residual_wrong']:.3g}")
    tables.append(t)
    strata = sorted({c["stratum"] for c in result["cells"]} - {"all"})
    if strata:
        dmin, dmax = min(result["depths"]), max(result["depths"])
        bmin, bmax = min(result["breadths"]), max(result["breadths"])
        t = Table(title="by source and difficulty (residual selection, exact %)",
                  title_justify="left")
        for col in ("stratum", "puzzles", f"D{dmin} B{bmin}", f"D{dmax} B{bmin}",
                    f"D{dmax} B{bmax}",
                    f"any of {bmax}"):
            t.add_column(col, justify="right" if col != "stratum" else "left")
        index = {(c["stratum"], c["depth"], c["breadth"]): c for c in result["cells"]}
        for s in strata:
            lo, hi1, hi = (index[(s, dmin, bmin)], index[(s, dmax, bmin)],
                           index[(s, dmax, bmax)])
            t.add_row(s, str(lo["puzzles"]), _pct(lo["acc_residual"]),
                      _pct(hi1["acc_residual"]), _pct(hi["acc_residual"]),
                      _pct(hi["any_correct"]))
        tables.append(t)
    return tables


def bench_tables(report: dict) -> list[Table]:
    m = report["machine"]
    peaks = report.get("peaks") or {"fp32": report["peak"]}
    peak_text = ", ".join(f"{k} {v['gflops_max']:.0f}" for k, v in peaks.items())
    tables = []
    t = Table(title=f"segment inference ({m['cpu']}, {m['threads']} threads, torch {m['torch']}"
                    f"; matmul peak GFLOP/s: {peak_text})", title_justify="left")
    for col in ("model", "mode", "dtype", "batch", "segments/s (max)", "median", "GFLOP/s",
                "% own peak", "% paired", "same-shape GEMM", "% of it"):
        t.add_column(col, justify="left" if col in ("model", "mode", "dtype") else "right",
                     no_wrap=col == "model")
    for r in report["inference"]:
        t.add_row(r["model"], r["mode"], r.get("dtype", "float32"), str(r["batch"]),
                  f"{r['segments_per_s_max']:.1f}", f"{r['segments_per_s_median']:.1f}",
                  f"{r['gflops_max']:.0f}", f"{r['pct_peak']:.0f}%",
                  f"{r['pct_peak_paired']:.0f}%", f"{r['gemm_gflops']:.0f}",
                  f"{r['pct_gemm']:.0f}%")
    if report["inference"]:
        tables.append(t)
    ratio = speedup_table(report["inference"], ("model", "mode", "batch"),
                          "segments_per_s_max", "inference: bf16 / fp32 segments per second")
    if ratio is not None:
        tables.append(ratio)
    if report["solving"]:
        t = Table(title="end-to-end solving, sudoku-9x9 (generated 40-50 blanks)",
                  title_justify="left")
        for col in ("dtype", "D", "B", "halt", "puzzles", "puzzles/s", "mean NFE", "seconds"):
            t.add_column(col, justify="right")
        for r in report["solving"]:
            t.add_row(r.get("dtype", "float32"), str(r["depth"]), str(r["breadth"]), r["halt"],
                      str(r["puzzles"]), f"{r['puzzles_per_s']:.2f}", f"{r['mean_nfe']:.1f}",
                      f"{r['seconds']:.1f}")
        tables.append(t)
    if report["training"]:
        t = Table(title="training step (forward + backward + AdamW; bf16 = autocast)",
                  title_justify="left")
        for col in ("recipe", "mode", "dtype", "batch", "samples/s (max)", "median", "GFLOP/s",
                    "% own peak", "% paired", "same-shape GEMM", "% of it"):
            t.add_column(col, justify="left" if col in ("recipe", "mode", "dtype") else "right",
                         no_wrap=col == "recipe")
        for r in report["training"]:
            t.add_row(r["recipe"], r["mode"], r.get("dtype", "float32"), str(r["batch"]),
                      f"{r['samples_per_s_max']:.1f}", f"{r['samples_per_s_median']:.1f}",
                      f"{r['gflops_max']:.0f}", f"{r['pct_peak']:.0f}%",
                      f"{r['pct_peak_paired']:.0f}%", f"{r['gemm_gflops']:.0f}",
                      f"{r['pct_gemm']:.0f}%")
        tables.append(t)
        ratio = speedup_table(report["training"], ("recipe", "mode", "batch"),
                              "samples_per_s_max", "training: bf16 / fp32 samples per second")
        if ratio is not None:
            tables.append(ratio)
    return tables


def speedup_table(rows: list[dict], keys: tuple[str, ...], value: str,
                  title: str) -> Table | None:
    """bf16 over fp32 for every row measured in both dtypes (None when there is none)."""
    by_key: dict[tuple, dict] = {}
    for r in rows:
        by_key.setdefault(tuple(r[k] for k in keys), {})[r.get("dtype", "float32")] = r[value]
    pairs = [(k, v["bfloat16"] / v["float32"]) for k, v in by_key.items()
             if "bfloat16" in v and "float32" in v]
    if not pairs:
        return None
    t = Table(title=title, title_justify="left")
    for col in (*keys, "bf16 / fp32"):
        t.add_column(col, justify="right" if col in ("batch", "bf16 / fp32") else "left")
    for k, x in pairs:
        t.add_row(*map(str, k), f"{x:.2f}x")
    return t


def landscape_view(kind: str, item, land) -> Group:
    """Basins as bars, the mode with its numbers, and residual traces of a few inits."""
    t = Table(title=f"{item.source}: {land.inits} inits x {land.depth} segments, "
                    f"{len(land.attractors)} attractors", title_justify="left")
    for col in ("#", "basin", "share", "answer", "residual", "enters at", "latents"):
        t.add_column(col, justify="left" if col in ("basin", "answer", "latents") else "right")
    for i, a in enumerate(land.attractors[:12]):
        bar = "█" * max(1, round(30 * a.share))
        t.add_row(str(i), Text(bar, style="green" if a.valid else "red"), f"{a.share:.1%}",
                  Text("✓ valid" if a.valid else "✗ wrong", style="green" if a.valid else "red"),
                  f"{a.mean_residual:.2e}", f"{a.entry_step:.1f}",
                  "converged" if a.stable else f"moving ({a.moving_share:.0%})")
    if len(land.attractors) > 12:
        rest = land.attractors[12:]
        t.add_row("…", "", f"{sum(a.share for a in rest):.1%}", f"{len(rest)} more", "", "", "")
    from eqr_solve.landscape import MODES

    mode = Text(f"mode ({land.mode}): {MODES[land.mode]} — {land.reason}",
                style="bold green" if land.mode == "d" else "bold yellow")
    traces = Text("residual traces (one init per attractor):\n", style="dim")
    for k in range(min(4, len(land.attractors))):
        init = int(np.flatnonzero(land.final == k)[0])
        traces.append(f"  #{k} ", style="dim")
        traces.append(sparkline(list(land.residuals[init, 1:])) + "\n", style="magenta")
    best = land.attractors[0]
    return Group(t, mode, traces, Text("most common answer:", style="dim"),
                 board(kind, item.grid, best.answer))
