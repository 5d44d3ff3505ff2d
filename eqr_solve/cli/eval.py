"""``eqr-solve eval`` (accuracy over a depth x breadth grid) and ``eqr-solve landscape``
(the attractors of one puzzle)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from eqr_solve import precision, render
from eqr_solve.cli import (
    DEFAULT_MIN_STEPS,
    DEFAULT_TOL,
    DataDirOpt,
    DepthOpt,
    DeviceOpt,
    DtypeOpt,
    JsonOpt,
    Kind,
    MinStepsOpt,
    NoiseOpt,
    Protocol,
    ProtocolOpt,
    QAcceptOpt,
    SeedOpt,
    TolOpt,
    WeightsOpt,
    app,
    check_range,
    dumps,
    emit,
    err,
    int_list,
    line,
    out,
    output_dir,
    pick_device,
    pick_dtype,
    skipped,
    use_data_dir,
)
from eqr_solve.errors import InputError

HALTS = ("both", "none", "act", "residual")


@app.command("eval")
def eval_(
    kind: Annotated[Kind, typer.Argument(help="Puzzle kind.")],
    data_specs: Annotated[list[str], typer.Option("--data", help="A dataset from `eqr-solve "
                          "data`, shared:FILE[:split] (shared:FILE:holdout:N: the last N of its "
                          "train split), or a puzzle file/folder (repeatable).")],
    weights_name: WeightsOpt = None,
    depth: Annotated[str, typer.Option("--depth", "-d", help="Depths, e.g. 1,4,16,64.")
                     ] = "1,4,16,64",
    breadth: Annotated[str, typer.Option("--breadth", "-b", help="Breadths, e.g. 1,8,64.")
                       ] = "1,8",
    limit: Annotated[int | None, typer.Option(help="At most N puzzles per --data.")] = None,
    halt: Annotated[str | None, typer.Option(
        help="Passes to run: 'both' (every segment, and learned halting), 'none', 'act' or "
             "'residual'. Default: both (none with --protocol paper).", show_default=False)
    ] = None,
    tol: TolOpt = None,
    min_steps: MinStepsOpt = None,
    q_accept: QAcceptOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    fp32_latents: Annotated[bool, typer.Option(
        help="Keep the latents in fp32 under a bf16 network (to measure bf16's effect).")
    ] = False,
    noise: NoiseOpt = None,
    protocol: ProtocolOpt = Protocol.default,
    json_: Annotated[bool, typer.Option("--json", help="The whole result (as result.json) as "
                                                       "one JSON line on stdout.")] = False,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write cells.csv, result.json "
                                                 "and PNG figures here.")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Accuracy over a depth x breadth grid (residual / vote / q selection, pass@k, ACT,
    residual-error alignment), stratified by source file and difficulty.

    --protocol paper reproduces the paper's evaluation: every trajectory runs all D segments,
    top-1 by the mean logit change over the last 3 segments (the "resid." column), pass@k for
    k < B, any-correct and the majority vote, at the final segment."""
    from eqr_solve import evaluate as E
    from eqr_solve import protocol as P
    from eqr_solve import weights
    from eqr_solve.solver import MAX_BREADTH, MAX_DEPTH, MAX_SEED

    use_data_dir(data_dir)
    depths = int_list(depth, "--depth", MAX_DEPTH)
    breadths = int_list(breadth, "--breadth", MAX_BREADTH)
    halt = P.apply(protocol.value, {"halt": halt})["halt"] or "both"
    if halt not in HALTS:
        raise InputError(f"--halt must be {', '.join(HALTS[:-1])} or {HALTS[-1]}, not {halt!r}")
    if limit is not None:
        check_range("--limit", limit, 1)
    check_range("--seed", seed, 0, MAX_SEED)
    if tol is not None:
        check_range("--tol", tol, 0)
    if noise is not None:
        check_range("--noise", noise, 0)
    if min_steps is None:
        min_steps = DEFAULT_MIN_STEPS[kind.value]
    check_range("--min-steps", min_steps, 0)
    if q_accept is not None and not math.isfinite(q_accept):
        raise InputError(f"--q-accept must be a finite number, not {q_accept}")
    if out_dir is not None:
        output_dir(out_dir)
    dev = pick_device(device)
    dt = pick_dtype(dtype, dev)
    ds = E.load_eval_data(kind.value, data_specs, limit, on_skip=skipped)
    model, info = weights.load(weights_name or weights.default_name(kind.value, ds.shape), dev,
                               dt)
    weights.check_compatible(info, kind.value, ds.shape)
    if tol is None:
        tol = weights.model_setting(info, "tol", DEFAULT_TOL[kind.value], max(ds.shape))
    if q_accept is None:
        q_accept = weights.model_setting(info, "q_accept", 0.0, max(ds.shape))
    if not json_:
        line("protocol:", "bold", P.DESCRIPTIONS[protocol.value] + f" (--halt {halt})")
    total = len(ds) * max(breadths) * (2 if halt == "both" else 1)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err, transient=True, redirect_stdout=False,
                  redirect_stderr=False) as progress:
        bar = progress.add_task(f"eval {info.name}", total=total)
        result = E.evaluate(model, ds, depths, breadths, halt=halt, seed=seed, tol=tol,
                            progress=lambda n: progress.advance(bar, n),
                            fp32_latents=fp32_latents, noise=noise, q_accept=q_accept,
                            min_steps=min_steps)
    result["model"] = info.name
    if noise is not None:
        result["noise"] = noise
    result["dtype"] = precision.NAMES[dt] + (" (fp32 latents)" if fp32_latents else "")
    result["data"] = data_specs
    result["protocol"] = protocol.value
    if json_:
        emit(result)
    else:
        for table in render.eval_tables(result):
            out.print(table)
    if out_dir is not None:
        from eqr_solve import figures

        written = figures.write_eval(result, out_dir)
        if not json_:
            out.print(f"wrote {', '.join(str(p) for p in written)}", style="dim", markup=False,
                      soft_wrap=True)


# -- landscape ----------------------------------------------------------------------------------
def guess_kind(text: str) -> str:
    from eqr_solve.tasks import maze

    return "maze" if maze.looks_like(text) else "sudoku"


@app.command()
def landscape(
    path: Annotated[Path, typer.Argument(help="A puzzle file (the first puzzle is used, or "
                                              "--index).")],
    inits: Annotated[int, typer.Option(help="Random initialisations.")] = 256,
    depth: DepthOpt = 256,
    index: Annotated[int, typer.Option(help="Which puzzle of the file (0-based).")] = 0,
    kind: Annotated[Kind | None, typer.Option(help="Puzzle kind (default: guessed from the "
                                                   "file).")] = None,
    weights_name: WeightsOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    seed: SeedOpt = 0,
    json_: JsonOpt = False,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write landscape.json and a "
                                                 "PCA picture of the trajectories here.")
                       ] = None,
) -> None:
    """Map the attractors of one puzzle: basins, validity, residuals, and the paper's mode
    ((a) no correct attractor ... (d) broad stable correct basin)."""
    from eqr_solve import weights
    from eqr_solve.landscape import check_size, explore
    from eqr_solve.solver import MAX_BREADTH, MAX_DEPTH, MAX_SEED
    from eqr_solve.tasks import PuzzleError, get_task, read_text

    check_range("--inits", inits, 1, MAX_BREADTH)
    check_range("--depth", depth, 1, MAX_DEPTH)
    check_range("--seed", seed, 0, MAX_SEED)
    if out_dir is not None:
        output_dir(out_dir)
    dev = pick_device(device)
    text = read_text(path)
    k = kind.value if kind else guess_kind(text)
    items = get_task(k).parse(text, str(path))
    if not 0 <= index < len(items):
        raise InputError(f"{path} holds {len(items)} puzzles; --index {index} is out of range")
    item = items[index]
    if isinstance(item, PuzzleError):
        raise InputError(f"{item.source}: {item.message}")
    check_size(item.grid.shape, inits, depth)
    model, info = weights.load(weights_name or weights.default_name(k, item.grid.shape), dev,
                               pick_dtype(dtype, dev))
    weights.check_compatible(info, k, item.grid.shape)
    with err.status(f"running {inits} inits x {depth} segments ..."):
        land = explore(model, k, item.grid, inits=inits, depth=depth, seed=seed,
                       project=out_dir is not None)
    record = {"source": item.source, "model": info.name, **land.to_json()}
    if json_:
        emit(record)
    else:
        out.print(render.landscape_view(k, item, land))
    if out_dir is not None:
        from eqr_solve import figures

        (out_dir / "landscape.json").write_text(dumps(record) + "\n")
        written = figures.write_landscape(land, out_dir)
        if not json_:
            out.print(f"wrote {out_dir / 'landscape.json'}"
                      f"{', ' + str(written) if written else ' (no matplotlib: no PNG)'}",
                      style="dim", markup=False, soft_wrap=True)
