"""``eqr-solve sudoku`` and ``eqr-solve maze``: solve puzzle files (a file or a folder)."""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from eqr_solve import render
from eqr_solve.cli import (
    DEFAULT_MIN_STEPS,
    DEFAULT_TOL,
    DepthOpt,
    DeviceOpt,
    DtypeOpt,
    Halt,
    JsonOpt,
    MinStepsOpt,
    NoiseOpt,
    Protocol,
    ProtocolOpt,
    QAcceptOpt,
    SeedOpt,
    Select,
    TolOpt,
    WeightsOpt,
    app,
    check_range,
    emit,
    err,
    line,
    open_output,
    out,
    output_dir,
    pick_device,
    pick_dtype,
    skipped,
)
from eqr_solve.errors import InputError

DEFAULT_HALT = {"sudoku": "act", "maze": "residual"}
# mazes: 8 restarts side by side, the first to settle answers (--breadth 8 --race): on 100
# unseen 30x30 mazes as accurate as one restart + 7 retries (90.0% both) at 2/3 of the NFE,
# and as accurate on 15x15 (100%): docs/models.md, "Choosing the defaults"
DEFAULT_BREADTH = {"sudoku": 1, "maze": 8}
DEFAULT_RETRIES = {"sudoku": 7, "maze": 0}
# escalation budget (NFE per puzzle); sudoku: measured on the hard test-only collections with
# the bundled model (docs/models.md, "Choosing the defaults"); mazes: none unless the model
# carries its own per board size (the bundled maze model: from 45x45 on, docs/models.md)
DEFAULT_BUDGET = {"sudoku": 2000, "maze": 0}
# race (stop a puzzle at its first settled restart): measured on mazes only
DEFAULT_RACE = {"sudoku": False, "maze": True}
# mazes: the halting head's q picks the restart (and a restart settles only with q above the
# model's q_accept, see solver.accepts): on 100 unseen 30x30 mazes, D64 B8 raced, 96%
# against 94% for the smallest residual at the same NFE (docs/models.md, maze card);
# sudoku: by the halting mode
DEFAULT_SELECT = {"sudoku": None, "maze": "q"}

BreadthOpt = Annotated[int | None, typer.Option(
    "--breadth", "-b", help="Independent random restarts per puzzle (B). Default: 1 for "
                            "sudoku, 8 for maze.", show_default=False)]
HaltOpt = Annotated[Halt | None, typer.Option(
    help="Stop a trajectory early: learned halting head (act), small logit change (residual), "
         "or never. Default: act for sudoku, residual for maze.", show_default=False)]
BudgetOpt = Annotated[int | None, typer.Option(
    help="NFE per puzzle for escalation: a puzzle still unsettled after the retries gets 4x "
         "deeper, 2x broader attempts while its worst-case NFE stays within this. "
         "Default: 2000 for sudoku; for maze the model's own per board size, else 0 (none).",
    show_default=False)]
RetriesOpt = Annotated[int | None, typer.Option(
    help="More restarts for a puzzle none of whose restarts halted before --depth (no "
         "attractor found); the answer is then chosen among all of them. Default: 7 for "
         "sudoku, 0 for maze.",
    show_default=False)]
RaceOpt = Annotated[bool | None, typer.Option(
    "--race/--no-race", help="Run a puzzle's restarts side by side and stop it at the first "
                             "one that settles (the others are cut): the wait of the fastest "
                             "restart, not of all. Default: off for sudoku, on for maze.",
    show_default=False)]
SelectOpt = Annotated[Select, typer.Option(
    help="Pick one restart: smallest residual (no verifier), majority vote, highest halting "
         "confidence (q), or 'verify' (first answer the checker accepts: uses a verifier). "
         "auto = q for mazes and with --halt act, residual otherwise. Under q a restart "
         "counts as settled only when its halting head accepts its answer (q > --q-accept).")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Also write the JSONL records to "
                                                           "this directory.")]
BoardsOpt = Annotated[bool | None, typer.Option(
    "--boards/--no-boards", help="Draw every board (default: only for up to 10 puzzles).")]
WatchOpt = Annotated[bool, typer.Option(
    "--watch", help="Follow one puzzle segment by segment: the chosen restart's answer is "
                    "animated in a terminal (printed at segments 1, 2, 4, ... otherwise; "
                    "with --json, every segment's answer is in the record).")]


def solve_config(kind: str, protocol: Protocol, depth: int, breadth: int | None,
                 retries: int | None,
                 budget: int | None, halt: Halt | None, min_steps: int | None,
                 tol: float | None,
                 select: Select, noise: float | None, seed: int, race: bool | None = None,
                 q_accept: float | None = None):
    """The SolveConfig of the options after ``--protocol``. SolveConfig checks the bounds;
    its one-line refusal is given back under the option's name (min_steps: --min-steps)."""
    from eqr_solve import protocol as P
    from eqr_solve.solver import SolveConfig, auto_select

    if tol is not None:  # finite, as eval asks (the library also takes inf: settle at once)
        check_range("--tol", tol, 0)
    given = {"halt": halt.value if halt else None, "retries": retries, "budget": budget,
             "select": None if select == Select.auto else select.value}
    s = P.apply(protocol.value, given)
    halt_mode = s["halt"] or DEFAULT_HALT[kind]
    try:
        return SolveConfig(
            depth=depth, breadth=DEFAULT_BREADTH[kind] if breadth is None else breadth,
            halt=halt_mode,
            min_steps=DEFAULT_MIN_STEPS[kind] if min_steps is None else min_steps,
            tol=DEFAULT_TOL[kind] if tol is None else tol,
            select=s["select"] or DEFAULT_SELECT[kind] or auto_select(halt_mode),
            window=P.PROTOCOLS[protocol.value].get("window", 3), noise=noise,
            retries=DEFAULT_RETRIES[kind] if s["retries"] is None else s["retries"],
            budget=DEFAULT_BUDGET[kind] if s["budget"] is None else s["budget"], seed=seed,
            race=DEFAULT_RACE[kind] if race is None else race,
            q_accept=0.0 if q_accept is None else q_accept)
    except InputError as e:
        field, _, rest = str(e).partition(" ")
        raise InputError(f"--{field.replace('_', '-')} {rest}") from None


def solve_command(kind: str, path: Path, *, depth: int, breadth: int | None,
                  retries: int | None,
                  budget: int | None, race: bool | None, halt: Halt | None,
                  min_steps: int | None,
                  tol: float | None, select: Select, protocol: Protocol,
                  weights_name: str | None,
                  device: str, dtype_name: str, seed: int, noise: float | None, as_json: bool,
                  out_dir: Path | None, boards: bool | None, watch: bool = False,
                  q_accept: float | None = None) -> None:
    from eqr_solve import records
    from eqr_solve.tasks import Puzzle, PuzzleError, display_name, puzzle_files, read_puzzles

    cfg = solve_config(kind, protocol, depth, breadth, retries, budget, halt, min_steps, tol,
                       select, noise, seed, race, q_accept)
    dev = pick_device(device)
    dtype = pick_dtype(dtype_name, dev)
    files, entries = puzzle_files(path)
    for entry in entries:
        skipped(entry)
    items = read_puzzles(kind, files)
    puzzles = [p for p in items if isinstance(p, Puzzle)]
    bad = [p for p in items if isinstance(p, PuzzleError)]
    if not puzzles and len(bad) == 1 and not entries:  # one unusable file: say it in one line
        raise InputError(f"{bad[0].source}: {bad[0].message}")
    for b in bad:
        skipped(b)
    if not puzzles:
        raise InputError("no usable puzzle found"
                         + (f" in {display_name(path)}" if not bad else ""))
    solvable, unsolvable = records.split_by_model(kind, puzzles, weights_name)
    if solvable and unsolvable:  # when none is left, load_models below says why in one line
        for b in unsolvable:
            skipped(b)
        puzzles, bad = solvable, bad + unsolvable
    if watch:
        if len(puzzles) > 1:
            raise InputError(f"--watch follows one puzzle; {path} holds {len(puzzles)}")
        cfg = replace(cfg, keep_frames=True)
    models = records.load_models(kind, records.shape_groups(puzzles), weights_name, dev, dtype)
    if protocol != Protocol.default and not as_json:
        from eqr_solve.protocol import DESCRIPTIONS

        line("protocol:", "bold", DESCRIPTIONS[protocol.value])
    if cfg.halt != "none" and cfg.min_steps >= cfg.depth and not as_json:
        line("note:", "yellow", f"--depth {cfg.depth} leaves no segment to settle in after "
             f"--min-steps {cfg.min_steps}: every restart runs to the end unsettled (and is "
             "retried)")
    if cfg.select == "verify" and not as_json:
        line("note:", "yellow", "--select verify uses the puzzle checker to choose among "
             "restarts (a verifier), unlike the paper's verifier-free selection")

    results: list = [None] * len(puzzles)
    summary = []
    out_file = None if out_dir is None else output_dir(out_dir) / f"eqr-solve-{kind}.jsonl"
    written_to = {"file": 0, "stdout": 0}  # records out so far, for Ctrl-C's message
    try:
        with ExitStack() as stack:
            sink = None if out_file is None else stack.enter_context(open_output(out_file, files))
            progress = stack.enter_context(Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeRemainingColumn(), console=err, transient=True, redirect_stdout=False,
                redirect_stderr=False, disable=len(puzzles) * cfg.breadth < 8))

            def hooks(label: str, total: int):
                bar = progress.add_task(label, total=total)
                return (lambda n: progress.advance(bar, n),
                        lambda n: progress.update(bar, total=progress.tasks[bar].total + n))

            from eqr_solve.protocol import apply

            budget = apply(protocol.value, {"budget": budget})["budget"]  # paper: 0
            unset = [k for k, v in (("tol", tol), ("q_accept", q_accept), ("budget", budget))
                     if v is None]

            def written(i: int, r, model_name: str, group_cfg) -> None:
                """Each puzzle's record goes out as soon as it is final (a long run shows its
                progress in JSON too), in the order puzzles finish. The file first: a stdout
                reader that stalls (a pager) must not hold back the file."""
                if as_json or sink is not None:
                    record = records.solve_record(kind, puzzles[i], model_name, r, group_cfg,
                                                  dtype, dev)
                    if sink is not None:
                        emit(record, sink)
                        written_to["file"] += 1
                    if as_json:
                        emit(record)
                        written_to["stdout"] += 1

            for group in records.solve_groups(kind, puzzles, cfg, models, hooks, unset, written):
                summary.append(group.summary())
                for i, r in zip(group.index, group.results):
                    results[i] = r

        show_results(kind, puzzles, results, cfg, summary, dev, dtype, protocol, as_json,
                     boards, watch, out_file)
    except KeyboardInterrupt:  # say what is kept; the app then says "aborted"
        say_kept(written_to, len(puzzles), out_file, as_json)
        raise
    if bad:
        raise typer.Exit(2)
    if any(not r.valid for r in results):
        raise typer.Exit(1)


def say_kept(written_to: dict, total: int, out_file: Path | None, as_json: bool) -> None:
    """Ctrl-C: say how many records an interrupted run kept (the app then says 'aborted')."""
    if out_file is not None:
        err.print(f"{written_to['file']} of {total} records written to {out_file}",
                  style="yellow", markup=False, soft_wrap=True)
    elif as_json:
        err.print(f"{written_to['stdout']} of {total} records written", style="yellow")


def show_results(kind: str, puzzles: list, results: list, cfg, summary: list, dev, dtype,
                 protocol: Protocol, as_json: bool, boards: bool | None, watch: bool,
                 out_file: Path | None) -> None:
    """The human part of a solve: boards and traces, or a summary table."""
    from eqr_solve import precision

    if as_json:
        return
    show_boards = boards if boards is not None else len(puzzles) <= 10
    for p, r in zip(puzzles, results):
        if show_boards:
            out.print(Text(p.source, style="bold"), soft_wrap=True)
            if watch:
                play(kind, p.grid, r.frames)
            out.print(render.board(kind, p.grid, r.answer), end="")
            out.print(render.trace_line(r, cfg.depth, cfg.halt))
            out.print()
        elif not r.valid:
            out.print(Text.assemble(("✗", "red"), f" {p.source}: no valid solution found"),
                      soft_wrap=True)
    if len(puzzles) > 1 or not show_boards:
        more = f" (+{cfg.retries} if unconverged)" if cfg.retries else ""
        more += ", race" if cfg.race and cfg.halt != "none" else ""
        out.print(render.summary_table(
            f"{kind}: depth {cfg.depth}, breadth {cfg.breadth}{more}, halt {cfg.halt}, "
            f"select {cfg.select}, {dev.type} {precision.NAMES[dtype]}"
            + (f", protocol {protocol.value}" if protocol != Protocol.default else ""),
            summary))
    if out_file is not None:
        out.print(f"records written to {out_file}", style="dim", markup=False,
                  soft_wrap=True)


def play(kind: str, puzzle, frames: list) -> None:
    """Show a trajectory's answers segment by segment: animated in a terminal (about 8 s at
    most), a few frames otherwise."""
    if out.is_terminal:
        delay = min(0.25, 8.0 / len(frames))
        with Live(console=out, refresh_per_second=30, transient=True) as live:
            for k, answer in enumerate(frames, 1):
                live.update(render.frame(kind, puzzle, answer, k, len(frames)))
                time.sleep(delay)
        return
    for k in render.frame_picks(len(frames)):
        out.print(render.frame(kind, puzzle, frames[k - 1], k, len(frames)))


@app.command()
def sudoku(
    path: Annotated[Path, typer.Argument(help="Puzzle file (one per line, grid, or CSV), a "
                                              "directory of them, or - for standard input.")],
    depth: DepthOpt = 16, breadth: BreadthOpt = None, retries: RetriesOpt = None,
    budget: BudgetOpt = None, race: RaceOpt = None, halt: HaltOpt = None,
    min_steps: MinStepsOpt = None,
    tol: TolOpt = None, select: SelectOpt = Select.auto, q_accept: QAcceptOpt = None,
    protocol: ProtocolOpt = Protocol.default,
    weights: WeightsOpt = None, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
    seed: SeedOpt = 0, noise: NoiseOpt = None, json_: JsonOpt = False, out_dir: OutOpt = None,
    boards: BoardsOpt = None, watch: WatchOpt = False,
) -> None:
    """Solve Sudoku puzzles (4x4, 6x6, 9x9, ...).

    --protocol paper solves as the paper evaluates: --halt none --retries 0 --budget 0
    --select residual (window 3)."""
    solve_command("sudoku", path, depth=depth, breadth=breadth, retries=retries, budget=budget,
                  race=race, halt=halt, min_steps=min_steps, tol=tol, select=select,
                  protocol=protocol, weights_name=weights, device=device, dtype_name=dtype,
                  seed=seed, noise=noise, as_json=json_, out_dir=out_dir, boards=boards,
                  watch=watch, q_accept=q_accept)


@app.command()
def maze(
    path: Annotated[Path, typer.Argument(help="Maze file (# wall, space open, S, G; several "
                                              "mazes separated by empty lines), a "
                                              "directory, or - for standard input.")],
    depth: DepthOpt = 64, breadth: BreadthOpt = None, retries: RetriesOpt = None,
    budget: BudgetOpt = None, race: RaceOpt = None, halt: HaltOpt = None,
    min_steps: MinStepsOpt = None,
    tol: TolOpt = None, select: SelectOpt = Select.auto, q_accept: QAcceptOpt = None,
    protocol: ProtocolOpt = Protocol.default,
    weights: WeightsOpt = None, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
    seed: SeedOpt = 0, noise: NoiseOpt = None, json_: JsonOpt = False, out_dir: OutOpt = None,
    boards: BoardsOpt = None, watch: WatchOpt = False,
) -> None:
    """Find the shortest path through mazes (defaults: 8 restarts side by side, each up to 64
    segments; the first whose answer stops changing and whose halting head accepts it answers,
    none accepted means "no path"; the model may set a budget per board size for a deeper,
    broader second attempt: docs/models.md, the maze card)."""
    solve_command("maze", path, depth=depth, breadth=breadth, retries=retries, budget=budget,
                  race=race, halt=halt, min_steps=min_steps, tol=tol, select=select,
                  protocol=protocol, weights_name=weights, device=device, dtype_name=dtype,
                  seed=seed, noise=noise, as_json=json_, out_dir=out_dir, boards=boards,
                  watch=watch, q_accept=q_accept)
