"""``eqr-solve train``: train or resume a model from a recipe."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from eqr_solve.cli import (
    DataDirOpt,
    DeviceOpt,
    Kind,
    app,
    emit,
    err,
    pick_device,
    use_data_dir,
)

DEFAULT_RECIPE = {"sudoku": "sudoku-9x9-cpu", "maze": "maze-cpu"}


def show(kind: str, record: dict) -> None:
    """A training report for a person, on stderr; progress lines start with the wall-clock
    time (a slow start-up or a stall shows in the log)."""
    clock = time.strftime("%H:%M:%S ")
    if kind == "info":
        err.print(record["message"], style="cyan", markup=False, soft_wrap=True)
    elif kind == "eval":
        e = record["eval"]
        err.print(f"[dim]{clock}[/][bold]eval[/] step {record['step']}: exact "
                  f"{e['exact']:.1%}, cells {e['cells']:.1%}; ACT exact {e['act_exact']:.1%} in "
                  f"{e['act_steps']} steps (n={e['n']}, {e['seconds']}s)", soft_wrap=True)
    else:
        err.print(
            f"[dim]{clock}[/]step {record['step']:>6}  loss {record['lm_loss']:.4f}  "
            f"q {record['q_loss']:.3f}  "
            f"train-exact {record['train_exact']:.1%}  halt@ {record['halt_steps']:.1f}  "
            f"q-fired {record['q_fired']:.0%}  {record['samples_per_s']:.1f} samples/s  "
            f"{record['train_hours']:.2f} h", soft_wrap=True)


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
    data_dir: DataDirOpt = None,
    json_: Annotated[bool, typer.Option("--json", help="The log and eval records (as in "
                                                       "metrics.jsonl) as JSON Lines on "
                                                       "stdout.")] = False,
) -> None:
    """Train an EqR model (segmented online training with ACT); checkpoints every few
    minutes and on Ctrl-C; the run directory's model.safetensors works with --weights.

    On several processes: torchrun --nproc-per-node N -m eqr_solve train ..."""
    from eqr_solve import train as trainer

    use_data_dir(data_dir)
    rec, run_dir = trainer.prepare(kind.value, recipe or DEFAULT_RECIPE[kind.value], set_ or [],
                                   out_dir, resume)
    if device != "auto":
        pick_device(device)

    def report(what: str, record: dict) -> None:
        if json_ and what != "info":
            emit(record)
        else:
            show(what, record)

    err.print(f"training [bold]{escape(rec['name'])}[/] into {escape(str(run_dir))} "
              f"({'resuming' if resume else 'new run'}); Ctrl-C saves and stops", soft_wrap=True)
    trainer.run(rec, run_dir, resume=resume, device=device, report=report)
    err.print(f"[green]✓[/] weights: {escape(str(run_dir / 'model.safetensors'))}  "
              f"state: {escape(str(run_dir / 'state.pt'))}", soft_wrap=True)
