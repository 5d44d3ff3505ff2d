"""``eqr-solve weights ...``: list, inspect, download, convert, mix and bundle models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from eqr_solve.cli import JsonOpt, app, check_range, emit, out, warn
from eqr_solve.errors import InputError

weights_app = typer.Typer(help="List, inspect, download, convert, mix and bundle models.",
                          no_args_is_help=True)
app.add_typer(weights_app, name="weights")

BoardOpt = Annotated[str | None, typer.Option(
    "--board", help="HxW the model was trained on, for an attention checkpoint that does not "
    "record it (the released models need none).")]


def info_record(info) -> dict:
    from eqr_solve import weights

    return {"name": info.name, "kind": info.kind,
            "board": list(info.board) if info.board else None,
            "hidden_size": info.config.hidden_size,
            "sample_segments": info.meta.get("sample_segments"),
            "settings": {k: info.meta[k] for k in weights.MODEL_SETTINGS if k in info.meta},
            "path": str(info.path)}


def info_row(info) -> list[str]:
    board = f"{info.board[0]}x{info.board[1]}" if info.board else "any"
    trained = info.meta.get("sample_segments")
    return [info.name, info.kind, board, f"{info.config.hidden_size}",
            f"{trained:,}" if trained else "-", str(info.path)]


def check_output(dst: Path) -> None:
    from eqr_solve import weights

    if dst.suffix != weights.SUFFIX:
        raise InputError(f"{dst}: the output must be a {weights.SUFFIX} file")


def parse_board(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    h, sep, w = text.lower().partition("x")
    if not (sep and h.isdigit() and w.isdigit() and 0 < int(h) <= 4096 and 0 < int(w) <= 4096):
        raise InputError(f"bad --board {text!r}; expected HxW, e.g. 30x30")
    return int(h), int(w)


@weights_app.command("list")
def weights_list(json_: JsonOpt = False) -> None:
    """Bundled models, registered (converted official) models and models downloaded to the
    Hugging Face cache."""
    from eqr_solve import weights

    infos = weights.list_bundled() + weights.list_user() + weights.list_downloaded()
    for reason in weights.unreadable():
        warn(reason)
    if json_:
        for info in infos:
            emit(info_record(info))
        return
    if not infos:
        out.print("No models yet: train one with `eqr-solve train sudoku` or download one "
                  "with `eqr-solve weights pull REPO_ID`.", markup=False, soft_wrap=True)
        return
    table = Table(title="eqr-solve models")
    for col in ("name", "kind", "board", "hidden", "trained (sample-segments)", "file"):
        table.add_column(col)
    for info in infos:
        table.add_row(*(escape(x) for x in info_row(info)))
    out.print(table)


@weights_app.command("info")
def weights_info(name: Annotated[str, typer.Argument(help="Name, file or hf:// address.")],
                 json_: JsonOpt = False) -> None:
    """Show a model's config, provenance and measured accuracy."""
    from eqr_solve import weights
    from eqr_solve.cli import dumps
    from eqr_solve.model import count_parameters

    model, info = weights.load(name)
    record = {**info_record(info), "parameters": count_parameters(model),
              "config": info.config.to_dict(), "meta": info.meta}
    if json_:
        emit(record)
        return
    out.print(f"[bold]{escape(info.name)}[/]  {escape(info.kind)}, board "
              f"{'x'.join(map(str, info.board)) if info.board else 'any size'}, "
              f"{record['parameters']:,} parameters\n[dim]{escape(str(info.path))}[/]")
    out.print_json(dumps({"config": record["config"], **info.meta}))


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
    json_: JsonOpt = False,
) -> None:
    """Download a model from the Hugging Face Hub into its cache (HF_HOME, HF_HUB_OFFLINE
    and revisions are respected). An official .pth checkpoint (locuslab/EqR-model) is
    converted once and registered in $EQR_MODELS_DIR (~/.local/share/eqr-solve/models)."""
    from eqr_solve import official, weights

    if file.endswith((".pth", ".pt")):
        conv, dst = official.pull(repo_id, file, revision, name, parse_board(board))
        if json_:
            return emit(info_record(weights.read_info(dst)))
        out.print(f"[green]✓[/] {escape(dst.stem)}: {escape(conv.describe())}; use it with "
                  f"--weights {escape(dst.stem)}", soft_wrap=True)
        return
    path = weights.hub_download(repo_id, file, revision)
    info = weights.read_info(path)
    address = f"hf://{repo_id}{'@' + revision if revision else ''}/{file}"
    if json_:
        return emit(dict(info_record(info), address=address))
    out.print(f"[green]✓[/] {escape(info.kind)} model at {escape(str(path))}\n"
              f"use it with --weights {escape(address)}", soft_wrap=True)


@weights_app.command("convert")
def weights_convert(
    src: Annotated[Path, typer.Argument(help="An official EqR checkpoint (.pth).")],
    dst: Annotated[Path, typer.Argument(help="The eqr-solve model to write (.safetensors).")],
    board: BoardOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Convert an official EqR training checkpoint (torch.save .pth, read without running
    any of its code) into an eqr-solve model; EMA weights when the checkpoint has them."""
    from eqr_solve import official, weights

    check_output(dst)
    conv = official.convert_file(src, dst, parse_board(board))
    if json_:
        return emit(info_record(weights.read_info(dst)))
    out.print(f"[green]✓[/] {escape(dst.stem)}: {escape(conv.describe())}", soft_wrap=True)


@weights_app.command("bundle")
def weights_bundle(
    src: Annotated[Path, typer.Argument(help="A trained model.safetensors.")],
    name: Annotated[str, typer.Argument(help="Bundled name, e.g. sudoku-9x9.")],
    evals: Annotated[list[Path] | None, typer.Option("--eval", help="result.json files of "
                     "`eqr-solve eval --out` to record as measured accuracy.")] = None,
    tol: Annotated[float | None, typer.Option(
        help="The residual tolerance measured for this model: solve and eval use it when "
             "--tol is not given.")] = None,
    q_accept: Annotated[str | None, typer.Option(
        help="The halting logit measured for this model that an answer must exceed under "
             "--select q, one number or per puzzle side (9:2,15:3,30:4: a puzzle takes the "
             "largest side not above its own): solve and eval use it when --q-accept is not "
             "given.")] = None,
    budget: Annotated[str | None, typer.Option(
        help="The escalation budget (NFE per puzzle) measured for this model, one number or "
             "per puzzle side (30:0,45:4608): solve uses it when --budget is not given.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Publish a trained model into weights/ with its measured accuracy in the metadata."""
    from eqr_solve import weights

    if tol is not None:
        check_range("--tol", tol, 0)
    settings: dict = {} if tol is None else {"tol": tol}
    for option, key, text in (("--q-accept", "q_accept", q_accept), ("--budget", "budget", budget)):
        if text is not None:
            try:
                settings[key] = weights.parse_setting(text, weights.MODEL_SETTINGS[key],
                                                      integer=key == "budget")
            except ValueError as e:
                raise InputError(f"{option}: {e}") from None
    accuracy = weights.eval_accuracy(evals or [])
    meta = ({"accuracy": accuracy} if accuracy else {}) | settings
    dst = weights.bundle(src, name, meta)
    if json_:
        return emit(info_record(weights.read_info(dst)))
    out.print(f"[green]✓[/] {escape(str(dst))}", soft_wrap=True)


@weights_app.command("mix")
def weights_mix(
    a: Annotated[Path, typer.Argument(help="The first model (its metadata is kept).")],
    b: Annotated[Path, typer.Argument(help="The second model, same configuration.")],
    dst: Annotated[Path, typer.Argument(help="The model to write (.safetensors).")],
    alpha: Annotated[float, typer.Option(help="Weight of the second model.")] = 0.5,
    json_: JsonOpt = False,
) -> None:
    """Average two models' weights, (1 - alpha)·A + alpha·B (two checkpoints of one run)."""
    from eqr_solve import weights

    check_output(dst)
    weights.mix(a, b, alpha, dst)
    if json_:
        return emit(info_record(weights.read_info(dst)))
    out.print(f"[green]✓[/] {escape(str(dst))}: (1 - {alpha})·{escape(a.name)} + "
              f"{alpha}·{escape(b.name)}", soft_wrap=True)
