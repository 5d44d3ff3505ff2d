"""``eqr-solve bench``: throughput of this machine (the measuring is ``eqr_solve.bench.run``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from eqr_solve import render
from eqr_solve.cli import JsonOpt, app, dumps, emit, err, int_list, open_output, out


@app.command()
def bench(
    batches: Annotated[str, typer.Option(help="Batch sizes for segment inference.")
                       ] = "1,16,64,256",
    repeats: Annotated[int, typer.Option(help="Timed repeats per measurement (min and "
                                              "median are reported).")] = 3,
    compiled: Annotated[bool, typer.Option("--compile/--no-compile",
                                           help="Also measure torch.compile'd blocks.")] = True,
    json_: JsonOpt = False,
    out_path: Annotated[Path | None, typer.Option("--out", help="Also write the whole report "
                                                  "(JSON) to this file.")] = None,
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
    dtype is reported against its own peak, and bf16 against fp32.

    --json prints the report as one JSON line on stdout; --out also writes it to a file."""
    from eqr_solve import bench as Bn

    sizes = int_list(batches, "--batches", 1 << 16)
    wanted = [p.strip() for p in parts.split(",") if p.strip()]
    report_file = open_output(out_path) if out_path is not None else None
    try:
        report = Bn.run(sizes, repeats, compiled, quick, wanted, dtype,
                        models.split(",") if models else None,
                        recipes.split(",") if recipes else None,
                        progress=lambda text: err.print(text, markup=False, soft_wrap=True))
        if report_file is not None:
            report_file.write(dumps(report, indent=1) + "\n")
    finally:
        if report_file is not None:
            report_file.close()
    if json_:
        emit(report)
    else:
        for table in render.bench_tables(report):
            out.print(table)
