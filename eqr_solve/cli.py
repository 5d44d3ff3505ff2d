"""The ``eqr-solve`` command line. With render.py, the only module that talks to the user."""

from __future__ import annotations

import json
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from eqr_solve import render
from eqr_solve.tasks import InputError, Puzzle, PuzzleError, get_task, read_text

app = typer.Typer(
    help="Solve Sudoku and mazes with Equilibrium Reasoners; train, evaluate and diagnose them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
weights_app = typer.Typer(help="List, inspect and download models.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


class Halt(str, Enum):
    none = "none"
    act = "act"
    residual = "residual"


class Select(str, Enum):
    auto = "auto"
    residual = "residual"
    vote = "vote"
    q = "q"
    verify = "verify"


class Kind(str, Enum):
    sudoku = "sudoku"
    maze = "maze"


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def pick_dtype(name: str, device):
    from eqr_solve import precision

    try:
        return precision.resolve(name, device)
    except ValueError as e:
        raise fail(str(e)) from None


def pick_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise fail("--device cuda was requested but CUDA is not available on this machine")
    if name not in ("cpu", "cuda"):
        raise fail(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


def puzzle_files(path: Path) -> list[Path]:
    if not path.exists():
        raise fail(f"{path}: no such file or directory")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise fail(f"{path}: the directory holds no puzzle files")
        return files
    return [path]


def read_puzzles(kind: str, files: list[Path]) -> list[Puzzle | PuzzleError]:
    task = get_task(kind)
    items: list[Puzzle | PuzzleError] = []
    for f in files:
        try:
            items += task.parse(read_text(f), str(f))
        except InputError as e:
            items.append(PuzzleError(str(f), str(e).removeprefix(f"{f}: ")))
    return items


def puzzle_text(kind: str, grid: np.ndarray):
    task = get_task(kind)
    return task.to_line(grid) if kind == "sudoku" else task.to_rows(grid)


# -- solving ------------------------------------------------------------------------------------
def solve_command(kind: str, path: Path, depth: int, breadth: int, retries: int, halt: Halt,
                  min_steps: int, tol: float, select: Select, weights_name: str | None,
                  device: str, seed: int, noise: float | None, as_json: bool, out_dir: Path | None,
                  boards: bool | None, dtype_name: str = "auto", budget: int = 0) -> None:
    from eqr_solve import precision, weights
    from eqr_solve.solver import SolveConfig, auto_select, solve

    if depth < 1 or breadth < 1 or retries < 0 or budget < 0:
        raise fail("--depth and --breadth must be at least 1, --retries and --budget at "
                   "least 0")
    dev = pick_device(device)
    dtype = pick_dtype(dtype_name, dev)
    files = puzzle_files(path)
    items = read_puzzles(kind, files)
    puzzles = [p for p in items if isinstance(p, Puzzle)]
    bad = [p for p in items if isinstance(p, PuzzleError)]
    for b in bad:
        err.print(f"[yellow]skipped[/] {b.source}: {b.message}")
    if not puzzles:
        raise fail("no usable puzzle found" + (f" in {path}" if not bad else ""))
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        out_file = out_dir / f"eqr-solve-{kind}.jsonl"
        if out_file.resolve() in {f.resolve() for f in files}:
            raise fail(f"--out would overwrite the input {out_file}")
    task = get_task(kind)
    if select == Select.auto:
        select = Select(auto_select(halt.value))
    cfg = SolveConfig(depth=depth, breadth=breadth, retries=retries, budget=budget,
                      halt=halt.value,
                      min_steps=min_steps, tol=tol, select=select.value, noise=noise, seed=seed)
    show_boards = boards if boards is not None else (len(puzzles) <= 10 and not as_json)
    if select == Select.verify and not as_json:
        err.print("[yellow]note:[/] --select verify uses the puzzle checker to choose among "
                  "restarts (a verifier), unlike the paper's verifier-free selection")

    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(puzzles):
        groups.setdefault(p.grid.shape, []).append(i)
    results: list = [None] * len(puzzles)
    summary = []
    for shape, idx in groups.items():
        name = weights_name or weights.default_name(kind, shape)
        try:
            model, info = weights.load(name, dev, dtype)
            weights.check_compatible(info, kind, shape)
        except weights.WeightsError as e:
            raise fail(str(e)) from None
        grids = np.stack([puzzles[i].grid for i in idx])
        t0 = time.perf_counter()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err, transient=True,
                      disable=len(idx) * breadth < 8) as progress:
            bar = progress.add_task(f"{info.name} {shape[0]}x{shape[1]}",
                                    total=len(idx) * breadth)
            res = solve(model, grids, cfg, check=task.is_solution,
                        progress=lambda n, bar=bar: progress.advance(bar, n),
                        on_retry=lambda n, bar=bar: progress.update(
                            bar, total=progress.tasks[bar].total + n))
        seconds = time.perf_counter() - t0
        for i, r in zip(idx, res):
            results[i] = (info.name, r)
        summary.append({"model": info.name, "board": f"{shape[0]}x{shape[1]}",
                        "count": len(idx), "valid": sum(bool(r.valid) for r in res),
                        "steps": sum(r.steps for r in res), "nfe": sum(r.nfe for r in res),
                        "seconds": seconds})

    records = []
    for p, (model_name, r) in zip(puzzles, results):
        records.append({
            "source": p.source, "kind": kind, "model": model_name,
            "puzzle": puzzle_text(kind, p.grid), "solution": puzzle_text(kind, r.answer),
            "valid": bool(r.valid), "steps": r.steps, "nfe": r.nfe, "stages": r.stages,
            "restart": r.restart,
            "residuals": [round(x, 6) for x in r.residuals], "q": [round(x, 4) for x in r.q],
            "seconds": round(r.seconds, 4), "depth": depth, "breadth": breadth,
            "retries": retries, "budget": budget,
            "halt": halt.value, "select": select.value, "seed": seed,
            "dtype": precision.NAMES[dtype], "device": dev.type,
        })
    if out_dir is not None:
        out_file.write_text("".join(json.dumps(rec) + "\n" for rec in records))
    if as_json:
        for rec in records:
            sys.stdout.write(json.dumps(rec) + "\n")
    else:
        for p, (_, r) in zip(puzzles, results):
            if show_boards:
                out.print(f"[bold]{p.source}[/]")
                out.print(render.board(kind, p.grid, r.answer), end="")
                out.print(render.trace_line(r, depth, halt.value))
                out.print()
            elif not r.valid:
                out.print(f"[red]✗[/] {p.source}: no valid solution found")
        if len(puzzles) > 1 or not show_boards:
            more = f" (+{retries} if unconverged)" if retries else ""
            out.print(render.summary_table(f"{kind}: depth {depth}, breadth {breadth}{more}, "
                                           f"halt {halt.value}, select {select.value}, "
                                           f"{dev.type} {precision.NAMES[dtype]}", summary))
        if out_dir is not None:
            out.print(f"[dim]records written to {out_file}[/]")
    n_invalid = sum(not rec["valid"] for rec in records)
    if bad:
        raise typer.Exit(2)
    if n_invalid:
        raise typer.Exit(1)


DepthOpt = Annotated[int, typer.Option("--depth", "-d", help="Segments per trajectory (D).")]
BreadthOpt = Annotated[int, typer.Option("--breadth", "-b",
                                         help="Independent random restarts per puzzle (B).")]
HaltOpt = Annotated[Halt, typer.Option(help="Stop a trajectory early: learned halting head "
                                            "(act), small logit change (residual), or never.")]
BudgetOpt = Annotated[int, typer.Option(
    help="NFE per puzzle for escalation: a puzzle still unsettled after the retries gets 4x "
         "deeper, 2x broader attempts while its worst-case NFE stays within this (0: none).")]
RetriesOpt = Annotated[int, typer.Option(
    help="More restarts for a puzzle none of whose restarts halted before --depth (no "
         "attractor found); the answer is then chosen among all of them.")]
MinStepsOpt = Annotated[int, typer.Option(help="No halting before this many segments.")]
TolOpt = Annotated[float, typer.Option(help="Residual threshold for --halt residual.")]
SelectOpt = Annotated[Select, typer.Option(
    help="Pick one restart: smallest residual (no verifier), majority vote, highest halting "
         "confidence (q), or 'verify' (first answer the checker accepts: uses a verifier). "
         "auto = q with --halt act, residual otherwise.")]
WeightsOpt = Annotated[str | None, typer.Option(
    "--weights", "-w", help="Model: bundled name, .safetensors file or hf://REPO/FILE.")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu or cuda (auto: CUDA with bf16 when "
                                             "available, else CPU fp32).")]
DtypeOpt = Annotated[str, typer.Option(
    "--dtype", help="auto, fp32 or bf16. auto: bf16 on CUDA and on CPUs whose bf16 matmul is "
                    "at least 2x faster than fp32 (measured once, cached), else fp32.")]
SeedOpt = Annotated[int, typer.Option(help="Random seed (initial latents and noise).")]
NoiseOpt = Annotated[float | None, typer.Option(help="Noise scale β at inference "
                                                     "(default: the model's).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON Lines on stdout, one per puzzle.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Also write the JSONL records to "
                                                           "this directory.")]
BoardsOpt = Annotated[bool | None, typer.Option(
    "--boards/--no-boards", help="Draw every board (default: only for up to 10 puzzles).")]


@app.command()
def sudoku(
    path: Annotated[Path, typer.Argument(help="Puzzle file (one per line, grid, or CSV) or a "
                                              "directory of them.")],
    depth: DepthOpt = 16, breadth: BreadthOpt = 1, retries: RetriesOpt = 7,
    budget: BudgetOpt = 0, halt: HaltOpt = Halt.act, min_steps: MinStepsOpt = 2,
    tol: TolOpt = 0.05,
    select: SelectOpt = Select.auto,
    weights: WeightsOpt = None, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
    seed: SeedOpt = 0, noise: NoiseOpt = None, json_: JsonOpt = False, out_dir: OutOpt = None,
    boards: BoardsOpt = None,
) -> None:
    """Solve Sudoku puzzles (4x4, 6x6, 9x9, ...)."""
    solve_command("sudoku", path, depth, breadth, retries, halt, min_steps, tol, select, weights,
                  device, seed, noise, json_, out_dir, boards, dtype, budget)


@app.command()
def maze(
    path: Annotated[Path, typer.Argument(help="Maze file (# wall, space open, S, G; several "
                                              "mazes separated by blank lines) or a directory.")],
    depth: DepthOpt = 64, breadth: BreadthOpt = 1, retries: RetriesOpt = 7,
    budget: BudgetOpt = 0, halt: HaltOpt = Halt.residual, min_steps: MinStepsOpt = 2,
    tol: TolOpt = 0.3,
    select: SelectOpt = Select.auto,
    weights: WeightsOpt = None, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
    seed: SeedOpt = 0, noise: NoiseOpt = None, json_: JsonOpt = False, out_dir: OutOpt = None,
    boards: BoardsOpt = None,
) -> None:
    """Find the shortest path through mazes (defaults: up to 64 segments, stopping once the
    answer stops changing, and 7 more restarts for a maze whose first one never settles; the
    bundled model's halting head stops too early on mazes bigger than it was trained on, its
    residual does not: README "maze")."""
    solve_command("maze", path, depth, breadth, retries, halt, min_steps, tol, select, weights,
                  device, seed, noise, json_, out_dir, boards, dtype, budget)


# -- weights ------------------------------------------------------------------------------------
def info_row(info) -> list[str]:
    meta = info.meta
    board = f"{info.board[0]}x{info.board[1]}" if info.board else "any"
    trained = meta.get("sample_segments")
    return [info.name, info.kind, board, f"{info.config.hidden_size}",
            f"{trained:,}" if trained else "-", str(info.path)]


@weights_app.command("list")
def weights_list() -> None:
    """Bundled models, registered (converted official) models and models downloaded to the
    Hugging Face cache."""
    from eqr_solve import weights

    table = Table(title="eqr-solve models")
    for col in ("name", "kind", "board", "hidden", "trained (sample-segments)", "file"):
        table.add_column(col)
    infos = weights.list_bundled() + weights.list_user() + weights.list_downloaded()
    for info in infos:
        table.add_row(*info_row(info))
    if not infos:
        out.print("No models yet: train one with `eqr-solve train sudoku` or download one "
                  "with `eqr-solve weights pull REPO_ID`.")
        return
    out.print(table)


@weights_app.command("info")
def weights_info(name: Annotated[str, typer.Argument(help="Name, file or hf:// address.")]
                 ) -> None:
    """Show a model's config, provenance and measured accuracy."""
    from eqr_solve import weights
    from eqr_solve.model import count_parameters

    try:
        model, info = weights.load(name)
    except weights.WeightsError as e:
        raise fail(str(e)) from None
    out.print(f"[bold]{info.name}[/]  {info.kind}, board "
              f"{'x'.join(map(str, info.board)) if info.board else 'any size'}, "
              f"{count_parameters(model):,} parameters\n[dim]{info.path}[/]")
    out.print_json(json.dumps({"config": info.config.to_dict(), **info.meta}, default=str))


def fail_line(message: str, code: int = 2) -> typer.Exit:
    """``fail`` for messages that hold paths or file contents: no markup, never wrapped."""
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def parse_board(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    h, sep, w = text.lower().partition("x")
    if not (sep and h.isdigit() and w.isdigit() and int(h) > 0 and int(w) > 0):
        raise fail_line(f"bad --board {text!r}; expected HxW, e.g. 30x30")
    return int(h), int(w)


BoardOpt = Annotated[str | None, typer.Option(
    "--board", help="HxW the model was trained on, for an attention checkpoint that does not "
    "record it (the released models need none).")]


@weights_app.command("pull")
def weights_pull(
    repo_id: Annotated[str, typer.Argument(help="Hugging Face repo, e.g. owner/eqr-sudoku.")],
    file: Annotated[str, typer.Argument(
        help="File in the repo: an eqr-solve .safetensors, or an official EqR .pth "
             "(e.g. sudoku-extreme/eqr.pth), converted and registered.")] = "model.safetensors",
    revision: Annotated[str | None, typer.Option(help="Branch, tag or commit to pin.")] = None,
    name: Annotated[str | None, typer.Option(
        help="Name to register a converted .pth under (default from the file path: "
             "sudoku-extreme/eqr.pth -> eqr-sudoku-extreme).")] = None,
    board: BoardOpt = None,
) -> None:
    """Download a model from the Hugging Face Hub into its cache (HF_HOME, HF_HUB_OFFLINE
    and revisions are respected). An official .pth checkpoint (locuslab/EqR-model) is
    converted once and registered in $EQR_MODELS_DIR (~/.local/share/eqr-solve/models)."""
    from eqr_solve import official, weights

    if file.endswith((".pth", ".pt")):
        try:
            conv, dst = official.pull(repo_id, file, revision, name, parse_board(board))
        except weights.WeightsError as e:
            raise fail_line(str(e)) from None
        out.print(f"[green]✓[/] {dst.stem}: {conv.describe()}; use it with --weights "
                  f"{dst.stem}", soft_wrap=True)
        return
    try:
        path = weights.hub_download(repo_id, file, revision)
        info = weights.read_info(path)
    except weights.WeightsError as e:
        raise fail(str(e)) from None
    out.print(f"[green]✓[/] {info.kind} model at {path}\n"
              f"use it with --weights hf://{repo_id}{'@' + revision if revision else ''}/{file}")


@weights_app.command("convert")
def weights_convert(
    src: Annotated[Path, typer.Argument(help="An official EqR checkpoint (.pth).")],
    dst: Annotated[Path, typer.Argument(help="The eqr-solve model to write (.safetensors).")],
    board: BoardOpt = None,
) -> None:
    """Convert an official EqR training checkpoint (torch.save .pth, read without running
    any of its code) into an eqr-solve model; EMA weights when the checkpoint has them."""
    from eqr_solve import official, weights

    if dst.suffix != weights.SUFFIX:
        raise fail_line(f"{dst}: the output must be a {weights.SUFFIX} file")
    try:
        conv = official.convert_file(src, dst, parse_board(board))
    except weights.WeightsError as e:
        raise fail_line(str(e)) from None
    out.print(f"[green]✓[/] {dst.stem}: {conv.describe()}", soft_wrap=True)


@weights_app.command("bundle")
def weights_bundle(
    src: Annotated[Path, typer.Argument(help="A trained model.safetensors.")],
    name: Annotated[str, typer.Argument(help="Bundled name, e.g. sudoku-9x9.")],
    evals: Annotated[list[Path] | None, typer.Option("--eval", help="result.json files of "
                     "`eqr-solve eval --out` to record as measured accuracy.")] = None,
) -> None:
    """Publish a trained model into weights/ with its measured accuracy in the metadata."""
    from eqr_solve import weights

    accuracy = {}
    for path in evals or []:
        try:
            r = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise fail(f"{path}: not an eval result ({e})") from None
        keys = ("depth", "breadth", "puzzles", "acc_residual", "acc_vote", "acc_q",
                "any_correct", "mean_nfe", "acc_retry", "mean_nfe_retry")
        accuracy[str(path)] = {
            "data": r.get("data"), "halt": r.get("halt"), "tol": r.get("tol"),
            "cells": [{k: c[k] for k in keys if k in c}
                      for c in r["cells"] if c["stratum"] == "all"]}
    try:
        dst = weights.bundle(src, name, {"accuracy": accuracy} if accuracy else {})
    except weights.WeightsError as e:
        raise fail(str(e)) from None
    out.print(f"[green]✓[/] {dst}")


# -- training -----------------------------------------------------------------------------------
@app.command()
def train(
    kind: Annotated[Kind, typer.Argument(help="Puzzle kind to train on.")],
    recipe: Annotated[str | None, typer.Option(help="Recipe name in train/ or a TOML path "
                                                    "(default: the CPU recipe for KIND).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Run directory "
                                                 "(default: runs/RECIPE).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out exactly where it "
                                              "stopped.")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a recipe field, "
                                                   "e.g. --set train.lr=3e-4 (repeatable).")
                    ] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Train an EqR model (segmented online training with ACT); checkpoints every few
    minutes and on Ctrl-C; the run directory's model.safetensors works with --weights."""
    from eqr_solve import train as trainer

    name = recipe or ("sudoku-9x9-cpu" if kind == Kind.sudoku else "maze-cpu")
    try:
        rec = trainer.apply_overrides(trainer.load_recipe(name), set_ or [])
        if rec.get("kind") != kind.value:
            raise fail(f"recipe {name} trains a {rec.get('kind')} model, not {kind.value}")
        trainer.config_summary(rec)  # validates the recipe before any work
    except (FileNotFoundError, ValueError, TypeError, KeyError) as e:
        raise fail(f"bad recipe: {e}") from None
    if device != "auto":
        pick_device(device)
    run_dir = out_dir or Path("runs") / rec["name"]
    resumable = {f"train.{k}" for k in trainer.RESUMABLE_KEYS}
    keys = [item.partition("=")[0].strip() for item in set_ or []]
    fixed = [k for k in keys if k not in resumable]
    if resume and fixed and (run_dir / "state.pt").exists():
        raise fail(f"--resume continues the run with its own recipe; --set {fixed[0]} would not "
                   "apply (only train.max_steps, max_minutes and the log/checkpoint/eval "
                   "intervals may change): start a new run, e.g. with init_from")

    def report(kind_: str, rec_: dict) -> None:
        if kind_ == "info":
            err.print(f"[cyan]{rec_['message']}[/]")
        elif kind_ == "eval":
            e = rec_["eval"]
            err.print(f"[bold]eval[/] step {rec_['step']}: exact {e['exact']:.1%}, cells "
                      f"{e['cells']:.1%}; ACT exact {e['act_exact']:.1%} in "
                      f"{e['act_steps']} steps (n={e['n']}, {e['seconds']}s)")
        else:
            err.print(
                f"step {rec_['step']:>6}  loss {rec_['lm_loss']:.4f}  q {rec_['q_loss']:.3f}  "
                f"train-exact {rec_['train_exact']:.1%}  halt@ {rec_['halt_steps']:.1f}  "
                f"q-fired {rec_['q_fired']:.0%}  {rec_['samples_per_s']:.1f} samples/s  "
                f"{rec_['train_hours']:.2f} h", soft_wrap=True)

    err.print(f"training [bold]{rec['name']}[/] into {run_dir} "
              f"({'resuming' if resume else 'new run'}); Ctrl-C saves and stops")
    try:
        trainer.run(rec, run_dir, resume=resume, device=device, report=report)
    except (FileExistsError, FileNotFoundError, ValueError, InputError) as e:
        raise fail(str(e)) from None
    err.print(f"[green]✓[/] weights: {run_dir / 'model.safetensors'}  "
              f"state: {run_dir / 'state.pt'}")


# -- data -------------------------------------------------------------------------------------
@app.command()
def data(
    kind: Annotated[Kind, typer.Argument(help="Puzzle kind.")],
    out_path: Annotated[Path, typer.Option("--out", help="Dataset path (writes NAME.npz and "
                                                         "NAME.json).")],
    count: Annotated[int, typer.Option(help="Puzzles to generate.")] = 1000,
    seed: Annotated[int, typer.Option(help="Generator seed (the set is reproducible).")] = 0,
    size: Annotated[int, typer.Option(help="Sudoku n (4, 6, 9, ...) or maze side.")] = 9,
    blanks: Annotated[str | None, typer.Option(help="Sudoku blanks: N or LO-HI.")] = None,
    minimal: Annotated[bool, typer.Option(help="Sudoku: minimal puzzles (no removable "
                                               "given).")] = False,
    path_length: Annotated[str, typer.Option(help="Maze shortest-path length LO-HI "
                                                  "(edges).")] = "100-140",
    collection: Annotated[str | None, typer.Option(help="Instead of generating: a shared "
                                                        "collection file name.")] = None,
    split: Annotated[str, typer.Option(help="Split of --collection: train or test.")] = "test",
    from_path: Annotated[Path | None, typer.Option("--from", help="Instead of generating: "
                         "puzzle files (e.g. Sudoku-Extreme CSV), labelled by the exact "
                         "solver.")] = None,
    exclude: Annotated[list[Path] | None, typer.Option(help="Drop puzzles that occur in this "
                       "dataset, up to symmetry (e.g. a training set; repeatable).")] = None,
) -> None:
    """Build and save a dataset (generated, or a split of a shared collection) with a JSON
    manifest of its provenance, so a run or an evaluation can be repeated exactly."""
    from eqr_solve import data as D

    try:
        if from_path is not None:
            ds = load_eval_data(kind.value, [str(from_path)], None)
        elif collection:
            ds = D.load_collection(collection, split)
        elif kind == Kind.sudoku:
            params = {"n": size}
            if minimal:
                params["minimal"] = True
            else:
                lo, _, hi = (blanks or str(size * size // 2)).partition("-")
                params["blanks"] = [int(lo), int(hi)] if hi else int(lo)
            ds = D.generate("sudoku", count, seed, **params)
        else:
            lo, _, hi = path_length.partition("-")
            ds = D.generate("maze", count, seed, height=size, width=size, min_path=int(lo),
                            max_path=int(hi or lo))
        dropped = 0
        if exclude:
            ds, dropped = D.drop_seen(ds, [D.Dataset.load(p) for p in exclude])
    except (ValueError, InputError) as e:
        raise fail(str(e)) from None
    if not len(ds):
        raise fail("every puzzle occurs in --exclude; nothing to save")
    ds.save(out_path)
    out.print(f"[green]✓[/] {len(ds)} {ds.kind} puzzles ({ds.shape[0]}x{ds.shape[1]}) -> "
              f"{out_path.with_suffix('.npz')} (+ .json manifest)"
              + (f"; {dropped} dropped as seen in --exclude" if exclude else ""))


def load_eval_data(kind: str, specs: list[str], limit: int | None):
    """--data values: a saved dataset, ``shared:FILE[:split]``, or puzzle files/folders."""
    from eqr_solve import data as D

    parts = []
    for spec in specs:
        if spec.startswith("shared:"):
            _, name, *rest = spec.split(":")
            ds = D.load_collection(name, rest[0] if rest else "test", limit)
        elif spec.endswith((".npz", ".json")) or Path(spec + ".npz").exists():
            ds = D.Dataset.load(spec)
            if limit:
                ds = ds.subset(np.arange(min(limit, len(ds))))
        else:
            items = read_puzzles(kind, puzzle_files(Path(spec)))
            for b in items:
                if isinstance(b, PuzzleError):
                    err.print(f"[yellow]skipped[/] {b.source}: {b.message}")
            puzzles = [p for p in items if isinstance(p, Puzzle)][:limit]
            if not puzzles:
                raise InputError(f"{spec}: no usable puzzle")
            ds = D.from_puzzles(kind, puzzles, spec)
        if ds.kind != kind:
            raise InputError(f"{spec} holds {ds.kind} puzzles, not {kind}")
        parts.append(ds)
    return D.concat(parts) if len(parts) > 1 else parts[0]


def int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise fail(f"not a comma-separated list of integers: {text!r}") from None
    if not values or min(values) < 1:
        raise fail(f"values must be positive integers: {text!r}")
    return values


@app.command("eval")
def eval_(
    kind: Annotated[Kind, typer.Argument(help="Puzzle kind.")],
    data_specs: Annotated[list[str], typer.Option("--data", help="A dataset from `eqr-solve "
                          "data`, shared:FILE[:split], or a puzzle file/folder (repeatable).")],
    weights_name: WeightsOpt = None,
    depth: Annotated[str, typer.Option("--depth", "-d", help="Depths, e.g. 1,4,16,64.")
                     ] = "1,4,16,64",
    breadth: Annotated[str, typer.Option("--breadth", "-b", help="Breadths, e.g. 1,8,64.")
                       ] = "1,8",
    limit: Annotated[int | None, typer.Option(help="At most N puzzles per --data.")] = None,
    halt: Annotated[str, typer.Option(help="Passes to run: 'both' (every segment, and "
                                           "learned halting), 'none', 'act' or 'residual'.")
                    ] = "both",
    tol: TolOpt = 0.05,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    fp32_latents: Annotated[bool, typer.Option(
        help="Keep the latents in fp32 under a bf16 network (to measure bf16's effect).")
    ] = False,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write cells.csv, result.json "
                                                 "and PNG figures here.")] = None,
) -> None:
    """Accuracy over a depth x breadth grid (residual / vote / q selection, pass@k, ACT,
    residual-error alignment), stratified by source file and difficulty."""
    from eqr_solve import evaluate as E
    from eqr_solve import weights

    depths, breadths = int_list(depth), int_list(breadth)
    if halt not in ("both", "none", "act", "residual"):
        raise fail("--halt must be both, none, act or residual")
    dev = pick_device(device)
    dt = pick_dtype(dtype, dev)
    try:
        ds = load_eval_data(kind.value, data_specs, limit)
        name = weights_name or weights.default_name(kind.value, ds.shape)
        model, info = weights.load(name, dev, dt)
        weights.check_compatible(info, kind.value, ds.shape)
    except (InputError, weights.WeightsError) as e:
        raise fail(str(e)) from None
    total = len(ds) * max(breadths) * (2 if halt == "both" else 1)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err, transient=True) as progress:
        bar = progress.add_task(f"eval {info.name}", total=total)
        result = E.evaluate(model, ds, depths, breadths, halt=halt, seed=seed, tol=tol,
                            progress=lambda n: progress.advance(bar, n),
                            fp32_latents=fp32_latents)
    result["model"] = info.name
    result["dtype"] = str(dt).removeprefix("torch.") + (" (fp32 latents)" if fp32_latents
                                                         else "")
    result["data"] = data_specs
    for table in render.eval_tables(result):
        out.print(table)
    if out_dir is not None:
        from eqr_solve import figures

        written = figures.write_eval(result, out_dir)
        out.print(f"[dim]wrote {', '.join(str(p) for p in written)}[/]")


# -- landscape ----------------------------------------------------------------------------------
def guess_kind(text: str) -> str:
    return "maze" if "S" in text and "G" in text and "#" in text else "sudoku"


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
    from eqr_solve.landscape import explore

    dev = pick_device(device)
    try:
        text = read_text(path)
    except (InputError, OSError) as e:
        raise fail(str(e)) from None
    k = kind.value if kind else guess_kind(text)
    try:
        items = get_task(k).parse(text, str(path))
    except InputError as e:
        raise fail(str(e)) from None
    if not 0 <= index < len(items):
        raise fail(f"{path} holds {len(items)} puzzles; --index {index} is out of range")
    item = items[index]
    if isinstance(item, PuzzleError):
        raise fail(f"{item.source}: {item.message}")
    try:
        model, info = weights.load(weights_name or weights.default_name(k, item.grid.shape),
                                   dev, pick_dtype(dtype, dev))
        weights.check_compatible(info, k, item.grid.shape)
    except weights.WeightsError as e:
        raise fail(str(e)) from None
    with err.status(f"running {inits} inits x {depth} segments ..."):
        land = explore(model, k, item.grid, inits=inits, depth=depth, seed=seed,
                       project=out_dir is not None)
    record = {"source": item.source, "model": info.name, **land.to_json()}
    if json_:
        sys.stdout.write(json.dumps(record) + "\n")
    else:
        out.print(render.landscape_view(k, item, land))
    if out_dir is not None:
        from eqr_solve import figures

        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "landscape.json").write_text(json.dumps(record) + "\n")
        written = figures.write_landscape(land, out_dir)
        if not json_:
            out.print(f"[dim]wrote {out_dir / 'landscape.json'}"
                      f"{', ' + str(written) if written else ' (no matplotlib: no PNG)'}[/]")


# -- benchmark ----------------------------------------------------------------------------------
@app.command()
def bench(
    batches: Annotated[str, typer.Option(help="Batch sizes for segment inference.")
                       ] = "1,16,64,256",
    repeats: Annotated[int, typer.Option(help="Timed repeats per measurement (min and "
                                              "median are reported).")] = 3,
    compiled: Annotated[bool, typer.Option("--compile/--no-compile",
                                           help="Also measure torch.compile'd blocks.")] = True,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write all numbers here.")
                         ] = None,
    quick: Annotated[bool, typer.Option(help="Fewer, smaller measurements (for a smoke "
                                             "test).")] = False,
    parts: Annotated[str, typer.Option(help="What to measure: any of inference, solving, "
                                            "training.")] = "inference,solving,training",
    dtype: Annotated[str, typer.Option(
        "--dtype", help="fp32, bf16, both, or auto (the dtype the tool picks here).")] = "both",
    models: Annotated[str | None, typer.Option(
        help="Only these models (comma-separated: paper-sudoku and bundled names).")] = None,
    recipes: Annotated[str | None, typer.Option(
        help="Only these CPU recipes for the training rows (comma-separated names).")] = None,
) -> None:
    """Measure each dtype's matmul peak, segment inference (paper Sudoku model and bundled
    models), end-to-end solving with and without ACT halting, and training throughput; each
    dtype is reported against its own peak, and bf16 against fp32."""
    import copy

    import torch

    from eqr_solve import bench as Bn
    from eqr_solve import precision, weights
    from eqr_solve import train as trainer
    from eqr_solve.data import generate
    from eqr_solve.model import EqR

    sizes = int_list(batches)
    wanted = {p.strip() for p in parts.split(",")}
    if not wanted <= {"inference", "solving", "training"}:
        raise fail(f"--parts takes inference, solving and/or training, not {parts!r}")
    if dtype == "both":
        dtypes = [torch.float32, torch.bfloat16]
    else:
        dtypes = [pick_dtype(dtype, torch.device("cpu"))]
    machine = dict(Bn.machine(), cpu_bf16=precision.cpu_has_bf16(),
                   auto_dtype=precision.NAMES[precision.resolve("auto", torch.device("cpu"))])
    report: dict = {"machine": machine, "peaks": {}, "inference": [], "solving": [],
                    "training": []}
    peak_n = 512 if quick else 2048
    for dt in dtypes:
        peak = Bn.matmul_peak(peak_n, repeats, dt)
        report["peaks"][precision.NAMES[dt]] = peak
        each = ", ".join(f"{k} {v:.0f}" for k, v in peak["by_backend"].items())
        err.print(f"peak: {peak['gflops_max']:.0f} GFLOP/s ({peak['what']}; {each})")
    report["peak"] = report["peaks"][precision.NAMES[dtypes[0]]]
    torch.manual_seed(0)
    todo = [("paper-sudoku", EqR(Bn.PAPER_SUDOKU).eval(), (9, 9))]
    for info in weights.list_bundled():
        m, _ = weights.load(str(info.path))
        todo.append((info.name, m, info.board or (15, 15)))
    if models:
        todo = [t for t in todo if t[0] in models.split(",")]
    if quick:
        todo = todo[:1]
    if compiled:  # every model and batch size recompiles the shared Block.forward; past the
        # default limit (8) dynamo silently runs eager, and "compiled" rows would be mislabelled
        import torch._dynamo.config as dynamo_config

        dynamo_config.recompile_limit = 256
    for dt in dtypes:
        peak = report["peaks"][precision.NAMES[dt]]
        backend = peak["backend"]
        for name, model, shape in todo if "inference" in wanted else []:
            m = copy.deepcopy(model).to(dt)
            variants = [("eager", m)]
            if compiled:
                c = copy.deepcopy(m)
                if c.compile_blocks():
                    variants.append(("compiled", c))
            for mode, v in variants:
                for b in sizes:
                    r = Bn.inference(v, b, shape, repeats, peak_n, backend)
                    gemm = Bn.model_gemm(v, b, shape, backend=backend, dtype=dt)
                    r.update(model=name, mode=mode, gemm_gflops=gemm,
                             pct_gemm=100 * r["gflops_max"] / gemm,
                             pct_peak=100 * r["gflops_max"] / peak["gflops_max"])
                    report["inference"].append(r)
                    err.print(f"  {name} {mode} {r['dtype']} batch {b}: "
                              f"{r['segments_per_s_max']:.1f} seg/s")
    if weights.list_bundled() and not quick and "solving" in wanted:
        report["load_seconds"] = Bn.load_time("sudoku-9x9")
        grids = generate("sudoku", 16, seed=123, n=9, blanks=[40, 50]).inputs
        for dt in dtypes:
            model, _ = weights.load("sudoku-9x9", "cpu", dt)
            for depth, breadth, n in ((16, 1, 16), (64, 8, 4)):
                for halt in ("none", "act"):
                    r = Bn.solving(model, grids[:n], depth, breadth, halt)
                    report["solving"].append(r)
                    err.print(f"  solve {r['dtype']} D{depth} B{breadth} {halt}: "
                              f"{r['puzzles_per_s']:.2f}/s")
    recipe_files = ([] if quick or "training" not in wanted
                    else sorted(trainer.RECIPES_DIR.glob("*cpu*.toml")))
    if recipes:
        recipe_files = [p for p in recipe_files if p.stem in recipes.split(",")]
    for path in recipe_files:
        rec = trainer.load_recipe(str(path))
        if rec.get("init_from"):  # a fine-tune stage: the same shapes as the recipe it starts from
            continue
        shape = tuple(rec["board"]) if rec.get("board") else (15, 15)
        batch = trainer.train_config(rec).batch_size
        for dt in dtypes:
            peak = report["peaks"][precision.NAMES[dt]]
            model = EqR(trainer.model_config(rec))
            modes = ["eager"] + (["compiled"] if compiled else [])
            for mode in modes:  # compiled last: compile_blocks changes the model in place
                if mode == "compiled" and not model.compile_blocks():
                    continue
                r = Bn.training(model, batch, shape, repeats, peak_n, peak["backend"], dt)
                gemm = Bn.model_gemm(model, batch, shape, training=True,
                                     backend=peak["backend"], dtype=dt)
                r.update(recipe=path.stem, mode=mode, gemm_gflops=gemm,
                         pct_gemm=100 * r["gflops_max"] / gemm,
                         pct_peak=100 * r["gflops_max"] / peak["gflops_max"])
                report["training"].append(r)
                err.print(f"  train {path.stem} {mode} {r['dtype']}: "
                          f"{r['samples_per_s_max']:.1f} samples/s")
    for table in render.bench_tables(report):
        out.print(table)
    if json_path:
        json_path.write_text(json.dumps(report, indent=1) + "\n")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
