"""The ``eqr-solve`` command line: one thin module per command group (solve, train, eval,
weights, bench, data), each parsing its options, calling the library and rendering the result
(``eqr_solve.render`` draws the Rich views). This module holds the Typer ``app``, the options
the commands share, and the one place that turns errors into messages and exit codes.

Exit codes:

====  =========================================================================================
0     success
1     ``sudoku``/``maze``: some puzzle got no valid answer (every puzzle is still reported)
2     a problem the user can fix, as one line ``error: <message>`` on stderr: bad puzzle text,
      data or option value (``InputError``), an unusable model file (``WeightsError``), a bad
      recipe, ``--set`` or ``--resume`` (``RecipeError``), no CUDA, a size limit or an output
      that cannot be written (``ResourceError``), a command-line usage error; ``sudoku``/
      ``maze`` also exit 2 when some puzzles were skipped as unusable (the rest are solved)
3     internal error (a bug): one line ``internal error: <type>: <message> (set EQR_DEBUG=1
      for the traceback)``; with ``EQR_DEBUG=1`` the traceback is printed as well
130   interrupted (Ctrl-C); ``train`` instead saves a checkpoint and exits 0
141   stdout was closed by its reader (``… --json | head``), as a tool killed by SIGPIPE
====  =========================================================================================

``--json`` means the same everywhere: machine-readable records, one JSON object per line, on
stdout, and no human text there (progress and warnings stay on stderr).
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
import traceback
from enum import Enum
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from eqr_solve.errors import EqrError, InputError, ResourceError
from eqr_solve.tasks import PuzzleError

try:  # typer carries its own copy of click since 0.2x; before, its errors were click's
    from typer import TyperException as UsageProblem
except ImportError:  # pragma: no cover
    from click import ClickException as UsageProblem

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


# -- messages and exit codes ----------------------------------------------------------------------
def line(label: str, style: str, message: str) -> None:
    """One line on stderr, never wrapped and never read as markup (messages quote files)."""
    err.print(Text.assemble((label, style), " ", " ".join(str(message).splitlines())),
              soft_wrap=True)


def warn(message: str, label: str = "skipped") -> None:
    line(label, "yellow", message)


def skipped(item: PuzzleError) -> None:
    warn(f"{item.source}: {item.message}")


def debug() -> bool:
    return os.environ.get("EQR_DEBUG", "") not in ("", "0")


class OutputClosed(Exception):
    """stdout's reader went away; click would turn this into exit 1, "no valid answer"."""


class Interrupted(Exception):
    """Ctrl-C inside a command; typer would turn it into a silent exit 130."""


class Commands(TyperGroup):
    """The app's command group: runs a command and maps what escapes it to an exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise OutputClosed from None
        except KeyboardInterrupt:
            raise Interrupted from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except UsageProblem as e:  # a usage error: one line, not a panel
            if type(e).__name__ != "NoArgsIsHelpError":  # (that one printed the help)
                where = getattr(e, "ctx", None)
                hint = f" (see '{where.command_path} --help')" if where is not None else ""
                line("error:", "bold red", e.format_message() + hint)
            code = e.exit_code
        except OutputClosed:  # quietly, and no second error when stdout is flushed at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            code = 141
        except (Interrupted, typer.Abort, KeyboardInterrupt):  # Ctrl-C
            err.print("aborted", style="yellow")
            code = 130
        except EqrError as e:
            line("error:", "bold red", str(e))
            code = 2
        except Exception as e:  # the one broad handler: anything else is a bug
            if debug():
                traceback.print_exc()
            hint = "" if debug() else " (set EQR_DEBUG=1 for the traceback)"
            line("internal error:", "bold red", f"{type(e).__name__}: {e}{hint}")
            code = 3
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=Commands,
    help="Solve Sudoku and mazes with Equilibrium Reasoners; train, evaluate and diagnose them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# -- shared choices and options -----------------------------------------------------------------
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


class Protocol(str, Enum):
    default = "default"
    paper = "paper"


DepthOpt = Annotated[int, typer.Option("--depth", "-d", help="Segments per trajectory (D).")]
WeightsOpt = Annotated[str | None, typer.Option(
    "--weights", "-w", help="Model: bundled name, .safetensors file or hf://REPO/FILE.")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu or cuda (auto: CUDA when available, "
                                             "else the CPU; the number type is --dtype).")]
DtypeOpt = Annotated[str, typer.Option(
    "--dtype", help="auto, fp32 or bf16. auto: bf16 on CUDA and on CPUs whose bf16 matmul is "
                    "at least 2x faster than fp32 (measured once, cached), else fp32.")]
SeedOpt = Annotated[int, typer.Option(help="Random seed (initial latents and noise).")]
TolOpt = Annotated[float | None, typer.Option(
    help="Residual threshold for --halt residual. Default: the model's own (measured for it, "
         "in its metadata), else 0.05 for Sudoku and 0.3 for mazes.", show_default=False)]
DEFAULT_TOL = {"sudoku": 0.05, "maze": 0.3}
MinStepsOpt = Annotated[int | None, typer.Option(
    help="No halting before this many segments. Default: 4 for sudoku, 2 for maze.",
    show_default=False)]
# sudoku: 4, chosen with the bundled model's q_accept 2 on 600 generated minimal puzzles x 3
# seeds (98.44% at 2 segments and q_accept 0, 99.44% at 4 and 2): the halting head is over-sure
# of some wrong grids in the first segments (docs/models.md, "Choosing the defaults";
# train/tune-sudoku-q-accept.sh)
DEFAULT_MIN_STEPS = {"sudoku": 4, "maze": 2}
QAcceptOpt = Annotated[float | None, typer.Option(
    help="Under --select q, the halting logit an answer must exceed to be accepted (else it "
         "does not settle, and a maze none of whose answers is accepted has no path). "
         "Default: the model's own (measured for it, in its metadata), else 0.",
    show_default=False)]
NoiseOpt = Annotated[float | None, typer.Option(help="Noise scale β at inference "
                                                     "(default: the model's).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON Lines records on stdout (one per "
                                                      "result, written as each is done), no human "
                                                      "text.")]
ProtocolOpt = Annotated[Protocol, typer.Option(
    help="paper: the EqR paper's evaluation (every trajectory runs all D segments, no "
         "halting or retries, top-1 by the mean logit change over the last 3 segments); "
         "default: eqr-solve's own settings.")]
DataDirOpt = Annotated[Path | None, typer.Option(
    "--data-dir", help="Folder of the shared puzzle collections (sets EQR_DATA_DIR; default: "
                       "$EQR_DATA_DIR, else ../shared/data beside the repository).")]


# -- helpers the commands share -----------------------------------------------------------------
def pick_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ResourceError("--device cuda was requested but CUDA is not available on this "
                            "machine")
    if name not in ("cpu", "cuda"):
        raise InputError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


def pick_dtype(name: str, device):
    from eqr_solve import precision

    if name not in ("auto", *precision.DTYPES):
        raise InputError(f"unknown dtype {name!r}; choose auto, fp32 or bf16")
    return precision.resolve(name, device)


def int_list(text: str, what: str, most: int | None = None) -> list[int]:
    """``1,4,16`` -> [1, 4, 16]: positive integers, at most ``most``."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"{what}: not a comma-separated list of integers: {text!r}") from None
    if not values or min(values) < 1 or (most is not None and max(values) > most):
        bound = f" up to {most:,}" if most is not None else ""
        raise InputError(f"{what}: values must be integers from 1{bound}: {text!r}")
    return values


def check_range(option: str, value, lo, hi=None) -> None:
    """Refuse an option value outside ``lo..hi`` (``hi`` None: no upper bound, but finite)
    with one line."""
    finite = not isinstance(value, float) or math.isfinite(value)
    if not (finite and lo <= value and (hi is None or value <= hi)):
        bound = f"from {lo:,} to {hi:,}" if hi is not None else f"at least {lo:,}"
        raise InputError(f"{option} must be {bound}, not {value}")


def use_data_dir(path: Path | None) -> None:
    """``--data-dir``: where the data layer finds the shared collections (``EQR_DATA_DIR``,
    read at call time, and inherited by torchrun's processes)."""
    if path is None:
        return
    if not path.is_dir():
        raise InputError(f"--data-dir {path}: not a directory")
    os.environ["EQR_DATA_DIR"] = str(path.resolve())


def jsonable(x):
    """``x`` with NaN and infinities as null, so every record is strict JSON."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:  # numpy scalars
        return jsonable(x.item())
    if isinstance(x, Path):
        return str(x)
    return x


def dumps(record: dict, indent: int | None = None) -> str:
    return json.dumps(jsonable(record), allow_nan=False, default=str, indent=indent)


def emit(record: dict, file: IO[str] | None = None) -> None:
    """Write one JSON Lines record now (stdout by default), flushed so it is seen at once."""
    f = file or sys.stdout
    f.write(dumps(record) + "\n")
    f.flush()


def open_output(path: Path, inputs: list[Path] = ()) -> IO[str]:
    """Open a file to write results into, before any work, with a one-line ResourceError
    when it cannot be written (a read-only folder, a folder in the way) or is an input."""
    if path.exists() and not path.is_file():
        raise ResourceError(f"{path}: cannot write the results there (not a regular file)")
    if any(path.resolve() == Path(f).resolve() for f in inputs):
        raise ResourceError(f"--out would overwrite the input {path}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w")  # noqa: SIM115  (the caller closes it)
    except OSError as e:
        raise ResourceError(f"{path}: cannot write the results there "
                            f"({e.strerror or e})") from None


def output_dir(path: Path) -> Path:
    """Create ``--out DIR`` before any work; a one-line ResourceError if it cannot be."""
    if path.exists() and not path.is_dir():
        raise ResourceError(f"--out {path}: not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ResourceError(f"--out {path}: cannot create the folder ({e.strerror or e})") \
            from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ResourceError(f"--out {path}: the folder is not writable")
    return path


for _module in ("solve", "train", "eval", "weights", "bench", "data"):
    importlib.import_module(f"{__name__}.{_module}")
