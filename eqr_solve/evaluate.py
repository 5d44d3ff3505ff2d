"""Evaluation over a depth x breadth grid from ONE trajectory pass (plus one ACT pass).

Every depth is a snapshot of the same trajectories (``record_depths``); every breadth b uses
the first b restarts of each puzzle (restarts are i.i.d., so any b of them are a fair sample).
A puzzle counts as solved when the chosen answer passes the task checker, which for puzzles
with a unique solution is the same as every cell matching the label.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eqr_solve import data as D
from eqr_solve.data import Dataset
from eqr_solve.errors import InputError
from eqr_solve.model import EqR
from eqr_solve.solver import Snapshot, SolveConfig, auto_select, run_trajectories, select_restart
from eqr_solve.tasks import Puzzle, PuzzleError, get_task, puzzle_files, read_puzzles

RULES = ("residual", "vote", "q")


def load_eval_data(kind: str, specs: Sequence[str], limit: int | None = None,
                   on_skip: Callable[[PuzzleError], None] | None = None) -> Dataset:
    """The evaluation set of ``--data`` values: a saved dataset (``eqr-solve data``),
    ``shared:FILE[:split]`` (a shared collection, test split by default;
    ``shared:FILE:holdout:N`` is the last N of its train split, a training run's held-out set),
    or puzzle files and folders (labelled by the exact solver). ``limit`` caps each part;
    ``on_skip`` hears of every puzzle or directory entry left out."""
    parts = []
    for spec in specs:
        if spec.startswith("shared:"):
            _, name, *rest = spec.split(":")
            split, *count = rest or ["test"]
            holdout = int(count[0]) if count and count[0].isdigit() else 0
            if len(count) != (split == "holdout") or (split == "holdout" and not holdout):
                raise InputError(f"{spec}: write shared:FILE, shared:FILE:SPLIT or "
                                 "shared:FILE:holdout:N")
            ds = D.load_collection(name, split, limit, holdout=holdout)
        elif spec.endswith((".npz", ".json")) or Path(spec + ".npz").exists():
            ds = D.Dataset.load(spec)
            if limit:
                ds = ds.subset(np.arange(min(limit, len(ds))))
        else:
            files, skipped = puzzle_files(Path(spec))
            items = skipped + read_puzzles(kind, files)
            for item in items:
                if isinstance(item, PuzzleError) and on_skip is not None:
                    on_skip(item)
            puzzles = [p for p in items if isinstance(p, Puzzle)][:limit]
            if not puzzles:
                raise InputError(f"{spec}: no usable puzzle")
            if len({p.grid.shape for p in puzzles}) > 1:
                raise InputError(f"{spec}: puzzles of several board sizes; evaluate one at a "
                                 "time")
            ds = D.from_puzzles(kind, puzzles, spec)
        if ds.kind != kind:
            raise InputError(f"{spec} holds {ds.kind} puzzles, not {kind}")
        parts.append(ds)
    if not parts:
        raise InputError("no --data given")
    return D.concat(parts) if len(parts) > 1 else parts[0]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: 1 - C(n-c, k) / C(n, k)."""
    if c == 0:
        return 0.0
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def rankdata(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties sharing their mean rank."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting half; NaN if one class."""
    pos, neg = positive.sum(), (~positive).sum()
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - pos * (pos + 1) / 2) / (pos * neg))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2:
        return float("nan")
    rx, ry = rankdata(x), rankdata(y.astype(np.float64))
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


@dataclass
class Pass:
    """The outcome of one trajectory pass over a dataset (rows puzzle-major)."""

    snapshots: dict[int, Snapshot]
    correct: dict[int, np.ndarray]  # depth -> [P*B] bool
    cells: dict[int, np.ndarray]  # depth -> [P*B] fraction of cells equal to the label
    seconds: float
    segments: int  # segments actually run in this pass


def run_pass(model: EqR, ds: Dataset, depths: Sequence[int], breadth: int, halt: str,
             seed: int, progress=None, tol: float = 0.05, fp32_latents: bool = False,
             noise: float | None = None, min_steps: int = 2) -> Pass:
    task = get_task(ds.kind)
    cfg = SolveConfig(depth=max(depths), breadth=breadth, halt=halt, seed=seed,
                      record_depths=tuple(depths), tol=tol, fp32_latents=fp32_latents,
                      noise=noise, min_steps=min_steps)
    run, seconds = run_trajectories(model, ds.inputs, cfg, progress)
    snaps = run.snapshots_out()
    puzzles = np.repeat(ds.inputs, breadth, axis=0)
    labels = np.repeat(ds.labels, breadth, axis=0)
    correct, cells = {}, {}
    for d, snap in snaps.items():
        correct[d] = np.array([task.is_solution(p, a) for p, a in zip(puzzles, snap.answers)])
        cells[d] = (snap.answers == labels).reshape(len(labels), -1).mean(1)
    return Pass(snaps, correct, cells, seconds, int(run.steps.sum()))


def grid_cells(ds: Dataset, full: Pass, depths: Sequence[int], breadths: Sequence[int],
               B: int, rows: np.ndarray | None = None, retry_rule: str = "residual",
               q_accept: float = 0.0) -> list[dict]:
    """Metrics for every (depth, breadth) cell, optionally over a subset of puzzles.

    ``retry`` columns replay ``--breadth 1 --retries b-1`` on the same trajectories: the first
    restart alone when its halting rule stopped it before depth d (and, when ``retry_rule`` is
    q, with q > ``q_accept``), else ``retry_rule`` over all b (restarts are independent, so this
    is that policy's outcome, at its NFE). ``race``
    columns replay ``--breadth b --race``: the b restarts side by side until the first one
    settles (ties: the smallest residual score), which is the answer, at b times its steps;
    none settled: ``retry_rule`` over all b. ``race_q`` columns replay ``--breadth b --race
    --select q``: a restart settles only with q > ``q_accept`` (``solver.accepts``), the first
    such answers (ties: the highest q) while the others run up to its step; none: q over all
    b. Where the task has a "no answer" (mazes: no path), the q and race q columns give it
    when the chosen restart's q <= ``q_accept``, as ``solver.solve`` does."""
    P = len(ds)
    puzzles = np.arange(P) if rows is None else rows
    task = get_task(ds.kind)
    no_answer = getattr(task, "no_answer", None)
    # is the task's "no answer" right for each puzzle (mazes: it has no path)?
    none_ok = np.zeros(P, dtype=bool) if no_answer is None else np.array(
        [task.is_solution(g, no_answer(g)) for g in ds.inputs])

    def q_ok(chosen) -> np.ndarray:  # the q rules' answers, "no answer" where not accepted
        chosen = np.asarray(chosen)
        if no_answer is None:
            return ok[chosen]
        return np.where(snap.q[chosen] > q_accept, ok[chosen], none_ok[chosen // B])

    out = []
    for d in depths:
        snap, ok = full.snapshots[d], full.correct[d]
        for b in breadths:
            idx = puzzles[:, None] * B + np.arange(b)[None, :]  # [p, b] trajectory ids
            chosen = {rule: [] for rule in RULES}
            for row in idx:
                for rule in RULES:
                    k = select_restart(rule, snap.answers[row], snap.scores[row], snap.q[row])
                    chosen[rule].append(row[k])
            c = ok[idx].sum(1)
            steps = snap.steps[idx]  # [p, b]; d for a restart that did not settle
            nfe = steps.sum(1)
            q = snap.q[idx]
            accepted = (steps < d) & (q > q_accept)  # settled under q (solver.accepts)
            first_done = accepted[:, 0] if retry_rule == "q" else steps[:, 0] < d
            retry = np.where(first_done, idx[:, 0], np.array(chosen[retry_rule]))
            retry_nfe = np.where(first_done, steps[:, 0], nfe)
            first = steps.min(1)
            ties = np.where(steps == first[:, None], snap.scores[idx], np.inf)
            race = np.where(first < d, idx[np.arange(len(idx)), ties.argmin(1)],
                            np.array(chosen[retry_rule]))
            race_nfe = np.where(first < d, b * first, nfe)
            first_q = np.where(accepted, steps, d).min(1)
            best_q = np.where(accepted & (steps == first_q[:, None]), q, -np.inf).argmax(1)
            race_q = np.where(first_q < d, idx[np.arange(len(idx)), best_q],
                              np.array(chosen["q"]))
            race_q_nfe = np.where(first_q < d, np.minimum(steps, first_q[:, None]).sum(1), nfe)
            cell = {
                "depth": d, "breadth": b, "puzzles": len(puzzles),
                **{f"acc_{rule}": float(ok[chosen[rule]].mean()) for rule in RULES},
                "acc_q": float(q_ok(chosen["q"]).mean()),
                "any_correct": float((c > 0).mean()),
                "mean_pass_rate": float((c / b).mean()),
                "cell_acc": float(full.cells[d][chosen["residual"]].mean()),
                "mean_steps": float(steps.mean()),
                "median_steps": float(np.median(steps)),
                "mean_nfe": float(nfe.mean()),
                "acc_retry": float(ok[retry].mean()),
                "mean_nfe_retry": float(retry_nfe.mean()),
                "acc_race": float(ok[race].mean()),
                "mean_nfe_race": float(race_nfe.mean()),
                "acc_race_q": float(q_ok(race_q).mean()),
                "mean_nfe_race_q": float(race_q_nfe.mean()),
            }
            # is the halting rule honest? of the trajectories it stopped before d, how many
            # were wrong (a head that halts on unsettled wrong answers shows here)
            early = steps < d
            cell["early_stop_share"] = float(early.mean())
            cell["early_stop_wrong"] = float((~ok[idx])[early].mean()) if early.any() else \
                float("nan")
            k = 1
            while k < b:
                cell[f"pass@{k}"] = float(np.mean([pass_at_k(b, int(ci), k) for ci in c]))
                k *= 2
            out.append(cell)
    return out


def alignment(full: Pass, depths: Sequence[int]) -> list[dict]:
    """Does a large final residual predict a wrong answer? (per trajectory, per depth)"""
    out = []
    for d in depths:
        scores = full.snapshots[d].scores
        wrong = ~full.correct[d]
        finite = np.isfinite(scores)
        out.append({"depth": d, "auroc": auroc(scores[finite], wrong[finite]),
                    "spearman": spearman(scores[finite], wrong[finite]),
                    "wrong_rate": float(wrong.mean()),
                    "median_residual_correct": float(np.median(scores[~wrong])) if
                    (~wrong).any() else float("nan"),
                    "median_residual_wrong": float(np.median(scores[wrong])) if
                    wrong.any() else float("nan")})
    return out


def residual_curves(full: Pass, depths: Sequence[int]) -> list[dict]:
    """Quartiles of the residual score per depth, split by correct / wrong trajectories."""
    out = []
    for d in depths:
        scores, ok = full.snapshots[d].scores, full.correct[d]
        row = {"depth": d}
        for name, mask in (("correct", ok), ("wrong", ~ok)):
            vals = scores[mask & np.isfinite(scores)]
            q = np.percentile(vals, [25, 50, 75]).tolist() if len(vals) else [float("nan")] * 3
            row.update({f"{name}_q25": q[0], f"{name}_median": q[1], f"{name}_q75": q[2],
                        f"{name}_n": int(len(vals))})
        out.append(row)
    return out


def difficulty_bands(ds: Dataset) -> np.ndarray:
    """Band labels: Sudoku by solver guesses, mazes by shortest-path length (-1: no path)."""
    d = ds.difficulty
    if ds.kind == "sudoku":
        edges, names = [0, 1, 3, 10, 30], ["0 guesses", "1-2", "3-9", "10-29", "30+"]
    else:
        edges = [-1, 0, 20, 50, 100, 141]
        names = ["no path", "path <20", "20-49", "50-99", "100-140", "141+"]
    band = np.searchsorted(edges, d, side="right") - 1
    return np.array([names[max(0, b)] for b in band])


def strata(ds: Dataset) -> dict[str, np.ndarray]:
    """Row sets to report separately: every source file and every difficulty band."""
    out = {"all": np.arange(len(ds))}
    files = np.array([s.rsplit(":", 1)[0] for s in ds.source])
    if len(set(files)) > 1:
        for f in sorted(set(files)):
            out[f"file {f}"] = np.flatnonzero(files == f)
    bands = difficulty_bands(ds)
    for b in sorted(set(bands), key=lambda s: (len(s), s)):
        out[f"band {b}"] = np.flatnonzero(bands == b)
    return out


def evaluate(model: EqR, ds: Dataset, depths: Sequence[int], breadths: Sequence[int],
             halt: str = "both", seed: int = 0, progress=None, tol: float = 0.05,
             fp32_latents: bool = False, noise: float | None = None, q_accept: float = 0.0,
             min_steps: int = 2) -> dict:
    """The whole evaluation: grid cells per stratum, ACT vs fixed depth, alignment.

    ``halt``: "both" runs every segment (the paper's protocol) and then with learned
    halting; "none", "act" or "residual" (stop once the logits change by less than ``tol``
    per segment) runs only that pass (the grid then shows that pass). ``q_accept``: the
    halting logit the q columns need to accept an answer (``SolveConfig.q_accept``);
    ``min_steps``: no halting before this many segments (the library's default is
    ``SolveConfig``'s 2; ``eqr-solve eval`` passes the CLI's per-kind default, 4 for Sudoku)."""
    depths, breadths = sorted(set(depths)), sorted(set(breadths))
    B = max(breadths)
    t0 = time.perf_counter()
    result = {"depths": depths, "breadths": breadths, "puzzles": len(ds), "halt": halt,
              **({"tol": tol} if halt == "residual" else {}), "q_accept": q_accept,
              "min_steps": min_steps,
              "cells": [], "act": [], "alignment": []}
    passes = {"both": ("none", "act"), "none": ("none",), "act": ("act",),
              "residual": ("residual",)}[halt]
    for i, mode in enumerate(passes):
        p = run_pass(model, ds, depths, B, mode, seed, progress, tol, fp32_latents, noise,
                     min_steps)
        result[f"seconds_{mode}_pass"] = p.seconds
        key = "cells" if i == 0 else "act"
        for name, rows in strata(ds).items():
            for cell in grid_cells(ds, p, depths, breadths, B, rows, auto_select(mode),
                                   q_accept):
                # wall time of a cell, estimated from the pass by its share of the segments
                cell["seconds_est"] = p.seconds * cell["mean_nfe"] * len(rows) / p.segments
                cell["puzzles_per_s_est"] = len(rows) / max(cell["seconds_est"], 1e-9)
                result[key].append({"stratum": name, **cell})
        if i == 0:
            result["alignment"] = alignment(p, depths)
            result["residual_curves"] = residual_curves(p, depths)
    result["seconds"] = time.perf_counter() - t0
    return result
