"""Solving parsed puzzles as the command line does: grouped by board shape (one model per
group), and one JSON record per solved puzzle (what ``--json`` prints and ``--out`` writes)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from eqr_solve import precision, solver, weights
from eqr_solve.solver import Result, SolveConfig
from eqr_solve.tasks import Puzzle, PuzzleError, get_task


def puzzle_text(kind: str, grid: np.ndarray) -> str | list[str]:
    """The text form a record holds: a Sudoku line, or a maze's rows."""
    task = get_task(kind)
    return task.to_line(grid) if kind == "sudoku" else task.to_rows(grid)


def solve_record(kind: str, puzzle: Puzzle, model_name: str, result: Result, cfg: SolveConfig,
                 dtype, device) -> dict:
    """The JSON record of one solved puzzle: the answer, its trace and every setting used."""
    record = {
        "source": puzzle.source, "kind": kind, "model": model_name,
        "puzzle": puzzle_text(kind, puzzle.grid), "solution": puzzle_text(kind, result.answer),
        "valid": bool(result.valid), "steps": result.steps, "nfe": result.nfe,
        "stages": result.stages, "restart": result.restart, "rejected": result.rejected,
        "residuals": [round(x, 6) for x in result.residuals],
        "q": [round(x, 4) for x in result.q],
        "seconds": round(result.seconds, 4), "depth": cfg.depth, "breadth": cfg.breadth,
        "retries": cfg.retries, "budget": cfg.budget, "race": cfg.race, "halt": cfg.halt,
        "min_steps": cfg.min_steps,
        "tol": cfg.tol, "select": cfg.select, "q_accept": cfg.q_accept,
        "seed": cfg.seed, "dtype": precision.NAMES[dtype], "device": device.type,
    }
    if kind == "maze":
        record["no_path"] = get_task("maze").marks_no_path(result.answer)
    if result.frames is not None:  # --watch
        record["frames"] = [puzzle_text(kind, f) for f in result.frames]
    return record


@dataclass
class Group:
    """The puzzles of one board shape, solved by one model."""

    model: str
    shape: tuple[int, int]
    index: list[int]  # positions of the group's puzzles in the list given to ``solve_groups``
    results: list[Result]
    seconds: float
    cfg: SolveConfig  # as solved: the run's settings, with the model's own tol if it has one

    def summary(self) -> dict:
        return {"model": self.model, "board": f"{self.shape[0]}x{self.shape[1]}",
                "count": len(self.index), "valid": sum(bool(r.valid) for r in self.results),
                "retried": sum(r.stages > 1 for r in self.results),
                "steps": sum(r.steps for r in self.results),
                "nfe": sum(r.nfe for r in self.results), "seconds": self.seconds}


def shape_groups(puzzles: list[Puzzle]) -> dict[tuple[int, int], list[int]]:
    """Puzzle positions by board shape, in order of first appearance."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, p in enumerate(puzzles):
        groups.setdefault(p.grid.shape, []).append(i)
    return groups


def split_by_model(kind: str, puzzles: list[Puzzle], weights_name: str | None
                   ) -> tuple[list[Puzzle], list[PuzzleError]]:
    """With no model named, the puzzles of a board size that no bundled or registered model
    solves become one-line errors, so the rest of a folder is still solved."""
    if weights_name is not None:
        return puzzles, []
    missing = set()
    for shape in shape_groups(puzzles):
        try:
            weights.resolve(weights.default_name(kind, shape))
        except weights.WeightsError:
            missing.add(shape)
    if not missing:
        return puzzles, []
    models = weights.list_bundled() + weights.list_user()
    names = ", ".join(i.name for i in models if i.kind == kind)
    return ([p for p in puzzles if p.grid.shape not in missing],
            [PuzzleError(p.source, f"no model for a {p.grid.shape[0]}x{p.grid.shape[1]} {kind} "
                                   f"(available: {names or 'none'}); pass --weights FILE")
             for p in puzzles if p.grid.shape in missing])


def load_models(kind: str, shapes, weights_name: str | None, device, dtype) -> dict:
    """The model (and its info) for each board shape, every one checked before any solving:
    ``weights_name``, else the bundled default for the shape. Raises WeightsError."""
    out = {}
    for shape in shapes:
        model, info = weights.load(weights_name or weights.default_name(kind, shape), device,
                                   dtype)
        weights.check_compatible(info, kind, shape)
        out[shape] = (model, info)
    return out


def solve_groups(kind: str, puzzles: list[Puzzle], cfg: SolveConfig, models: dict,
                 progress: Callable[[str, int], tuple | None] | None = None,
                 model_settings: Sequence[str] = (),
                 on_result: Callable[[int, Result, str, SolveConfig], None] | None = None,
                 ) -> Iterator[Group]:
    """Solve the puzzles one shape group at a time with ``models`` (from ``load_models``),
    yielding each group as soon as it is done; ``on_result(i, result, model_name, cfg)`` gets
    each puzzle (``i``: its position in ``puzzles``) as soon as its answer is final.
    ``progress(label, total)`` may return a pair of callbacks ``(advance(n), grow(n))`` for
    the solver's progress and retries. For each name in ``model_settings`` (``tol``,
    ``q_accept``, ``budget``: the ones the user left unset), the model's own value for this
    puzzle size (``weights.model_setting``) replaces the ``cfg`` field."""
    task = get_task(kind)
    run_cfg = cfg
    for shape, idx in shape_groups(puzzles).items():
        model, info = models[shape]
        cfg = replace(run_cfg, **{k: type(getattr(run_cfg, k))(weights.model_setting(
            info, k, getattr(run_cfg, k), max(shape))) for k in model_settings})
        grids = np.stack([puzzles[i].grid for i in idx])
        hooks = progress(f"{info.name} {shape[0]}x{shape[1]}", len(idx) * cfg.breadth) \
            if progress else None
        advance, grow = hooks if hooks else (None, None)
        t0 = time.perf_counter()
        each = None if on_result is None else \
            (lambda p, r, idx=idx, name=info.name, cfg=cfg: on_result(idx[p], r, name, cfg))
        results = solver.solve(model, grids, cfg, check=task.is_solution, progress=advance,
                               on_retry=grow, no_answer=getattr(task, "no_answer", None),
                               on_result=each)
        yield Group(info.name, shape, idx, results, time.perf_counter() - t0, cfg)
