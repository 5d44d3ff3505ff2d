"""``eqr-solve data``: build and save a dataset with its provenance manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from eqr_solve.cli import (
    DataDirOpt,
    Kind,
    app,
    check_range,
    emit,
    out,
    output_dir,
    skipped,
    use_data_dir,
)
from eqr_solve.errors import EqrError, InputError, ResourceError

MAX_COUNT = 10_000_000


def int_range(option: str, text: str) -> tuple[int, int]:
    """``N`` or ``LO-HI`` -> (lo, hi)."""
    lo, _, hi = text.partition("-")
    try:
        a, b = int(lo), int(hi or lo)
    except ValueError:
        raise InputError(f"{option} takes N or LO-HI, not {text!r}") from None
    if not 0 <= a <= b:
        raise InputError(f"{option} takes N or LO-HI with 0 <= LO <= HI, not {text!r}")
    return a, b


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
    no_path: Annotated[float, typer.Option(help="Maze: share of mazes made unsolvable (one "
                                                "path cell walled; answer: no path).")] = 0.0,
    collection: Annotated[str | None, typer.Option(help="Instead of generating: a shared "
                                                        "collection file name.")] = None,
    split: Annotated[str, typer.Option(help="Split of --collection: train or test.")] = "test",
    from_path: Annotated[Path | None, typer.Option("--from", help="Instead of generating: "
                         "puzzle files (e.g. Sudoku-Extreme CSV), labelled by the exact "
                         "solver.")] = None,
    exclude: Annotated[list[Path] | None, typer.Option(help="Drop puzzles that occur in this "
                       "dataset, up to symmetry (e.g. a training set; repeatable).")] = None,
    text: Annotated[bool, typer.Option("--text", help="Also write the puzzles as NAME.txt, "
                                                      "the input of the solve commands.")] = False,
    data_dir: DataDirOpt = None,
    json_: Annotated[bool, typer.Option("--json", help="A summary record (count, shape, "
                                                       "files, manifest) on stdout.")] = False,
) -> None:
    """Build and save a dataset (generated, or a split of a shared collection) with a JSON
    manifest of its provenance, so a run or an evaluation can be repeated exactly."""
    from eqr_solve import data as D
    from eqr_solve.evaluate import load_eval_data
    from eqr_solve.solver import MAX_SEED

    use_data_dir(data_dir)
    check_range("--count", count, 1, MAX_COUNT)
    check_range("--seed", seed, 0, MAX_SEED)
    if split not in ("train", "test"):
        raise InputError(f"--split is train or test, not {split!r}")
    npz = out_path.with_suffix(".npz")
    output_dir(npz.parent)
    if npz.is_dir() or npz.with_suffix(".json").is_dir():
        raise ResourceError(f"--out {out_path}: a folder is in the way of {npz.name}")
    try:
        if from_path is not None:
            ds = load_eval_data(kind.value, [str(from_path)], None, on_skip=skipped)
        elif collection:
            ds = D.load_collection(collection, split)
        elif kind == Kind.sudoku:
            from eqr_solve.tasks.sudoku import SIZES

            if size not in SIZES:  # the solve commands read only these sizes
                raise InputError(f"--size {size}: a Sudoku is "
                                 f"{', '.join(map(str, SIZES))} cells wide")
            params: dict = {"n": size}
            if minimal:
                params["minimal"] = True
            else:
                blanks_spec = blanks or str(size * size // 2)
                lo, hi = int_range("--blanks", blanks_spec)
                params["blanks"] = [lo, hi] if "-" in blanks_spec else lo
            ds = D.generate("sudoku", count, seed, **params)
        else:
            lo, hi = int_range("--path-length", path_length)
            check_range("--no-path", no_path, 0, 1)
            extra = {"no_path": no_path} if no_path else {}
            ds = D.generate("maze", count, seed, height=size, width=size, min_path=lo,
                            max_path=hi, **extra)
        dropped = 0
        if exclude:
            ds, dropped = D.drop_seen(ds, [D.Dataset.load(p) for p in exclude])
    except EqrError:
        raise
    except ValueError as e:  # the generators' refusals of impossible settings
        raise InputError(str(e)) from None
    if not len(ds):
        raise InputError("every puzzle occurs in --exclude; nothing to save")
    from eqr_solve.tasks import get_task

    try:
        ds.save(out_path)
        if text:
            npz.with_suffix(".txt").write_text(get_task(ds.kind).format_file(ds.inputs))
    except OSError as e:
        raise ResourceError(f"--out {out_path}: cannot write the dataset "
                            f"({e.strerror or e})") from None
    if json_:
        emit({"kind": ds.kind, "count": len(ds), "shape": list(ds.shape), "npz": str(npz),
              "manifest_file": str(npz.with_suffix(".json")), "dropped": dropped,
              "text_file": str(npz.with_suffix(".txt")) if text else None,
              "manifest": ds.manifest})
        return
    out.print(f"[green]✓[/] {len(ds)} {ds.kind} puzzles ({ds.shape[0]}x{ds.shape[1]}) -> "
              f"{escape(str(npz))} (+ .json manifest{', .txt' if text else ''})"
              + (f"; {dropped} dropped as seen in --exclude" if exclude else ""),
              soft_wrap=True)
