"""Model files: safetensors with the full model config and provenance in the metadata.

A model is found by a bundled name (``sudoku-9x9`` -> ``weights/sudoku-9x9.safetensors``), a
name registered in the user models directory (``eqr-sudoku-extreme``, see ``user_dir``), a
file path, or ``hf://REPO_ID[@REVISION]/FILE`` (Hugging Face Hub, through its cache).
Pickled checkpoints are never loaded here; the paper's official ``.pth`` files are converted
once by ``eqr_solve.official`` (an allow-listed unpickler, no code runs).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from eqr_solve.errors import InputError
from eqr_solve.errors import WeightsError as WeightsError  # the old import path
from eqr_solve.model import EqR, EqRConfig

FORMAT = "eqr-solve/1"
SUFFIX = ".safetensors"


@dataclass
class ModelInfo:
    path: Path
    config: EqRConfig
    kind: str  # puzzle kind: "sudoku" or "maze"
    board: tuple[int, int] | None  # (H, W) the model needs, None = any size
    meta: dict = field(default_factory=dict)  # provenance, recipe, measured accuracy, ...

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(SUFFIX)


def bundled_dir() -> Path:
    """The ``weights/`` folder: $EQR_WEIGHTS_DIR, else the one beside the package."""
    env = os.environ.get("EQR_WEIGHTS_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "weights"


def user_dir() -> Path:
    """Models the user registered (``eqr-solve weights pull`` of an official checkpoint):
    $EQR_MODELS_DIR, else $XDG_DATA_HOME/eqr-solve/models (~/.local/share/eqr-solve/models)."""
    env = os.environ.get("EQR_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data).expanduser() / "eqr-solve" / "models"


def default_name(kind: str, shape: tuple[int, int]) -> str:
    """The bundled model used when the user names none."""
    return f"sudoku-{shape[0]}x{shape[1]}" if kind == "sudoku" else "maze"


def save(model: EqR, path: Path | str, kind: str, board: tuple[int, int] | None,
         meta: dict | None = None) -> None:
    """Write weights + metadata atomically (a crash never leaves a half-written file)."""
    path = Path(path)
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    _write(path, tensors, model.cfg, kind, board, meta or {})


def _write(path: Path, tensors: dict, config: EqRConfig, kind: str,
           board: tuple[int, int] | None, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": FORMAT, "config": json.dumps(config.to_dict()), "kind": kind,
                "board": json.dumps(list(board) if board else None), "meta": json.dumps(meta)}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.chmod(tmp, 0o666 & ~_umask())  # safetensors creates its file 0600: make it an ordinary one
    os.replace(tmp, path)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def resolve(name: str) -> Path:
    """Turn a weights name, path or hf:// URL into a local file path."""
    if name.startswith("hf://"):
        return hub_download(name)
    path = Path(name).expanduser()
    if path.suffix == SUFFIX or path.exists() or os.sep in name:
        if not path.exists():
            raise WeightsError(f"weights file not found: {path}")
        return path
    for folder in (bundled_dir(), user_dir()):
        found = folder / f"{name}{SUFFIX}"
        if found.exists():
            return found
    if not bundled_dir().is_dir():  # an install from a wheel carries no weights/ folder
        raise WeightsError(f"no model named {name!r}: the bundled models are in the weights/ "
                           "folder of a clone (pip install -e .), or set EQR_WEIGHTS_DIR")
    available = ", ".join(i.name for i in list_bundled() + list_user()) or "none yet"
    raise WeightsError(
        f"no bundled or registered model named {name!r} (available: {available}); "
        "train one with `eqr-solve train` or pass --weights FILE"
    )


def read_info(path: Path) -> ModelInfo:
    """Read and check the metadata of a model file without loading the tensors."""
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: not a readable safetensors file ({e})") from e
    if metadata.get("format") != FORMAT:
        raise WeightsError(f"{path}: not an eqr-solve model (no '{FORMAT}' metadata)")
    try:
        config = EqRConfig.from_dict(json.loads(metadata["config"]))
        board = json.loads(metadata["board"])
        meta = json.loads(metadata.get("meta", "{}"))
    except (KeyError, ValueError, TypeError, RecursionError) as e:
        raise WeightsError(f"{path}: broken model metadata ({e})") from e
    kind = metadata.get("kind")
    if kind not in ("sudoku", "maze"):
        raise WeightsError(f"{path}: broken model metadata (kind {kind!r})")
    if board is not None and not (isinstance(board, list) and len(board) == 2 and all(
            isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 1000 for n in board)):
        raise WeightsError(f"{path}: broken model metadata (board {board!r})")
    if board is not None and config.mixer == "mlp_t" and board[0] * board[1] != config.seq_len:
        raise WeightsError(f"{path}: broken model metadata (board {board[0]}x{board[1]} but "
                           f"seq_len {config.seq_len})")
    if not isinstance(meta, dict):
        raise WeightsError(f"{path}: broken model metadata (meta is not a mapping)")
    return ModelInfo(path, config, kind, tuple(board) if board else None, meta)


def load(name: str, device: str | torch.device = "cpu",
         dtype: torch.dtype = torch.float32) -> tuple[EqR, ModelInfo]:
    """Load a model by name/path/hf:// URL, in eval mode on ``device`` in ``dtype`` (see
    ``precision.resolve``)."""
    info = read_info(resolve(name))
    model = EqR(info.config)
    expected = model.state_dict()
    try:
        with safe_open(str(info.path), framework="pt") as f:
            for k in f.keys():  # shapes and dtypes checked before any tensor is read
                sl = f.get_slice(k)
                if k not in expected or tuple(sl.get_shape()) != tuple(expected[k].shape):
                    raise WeightsError(f"{info.path}: weights do not match their config "
                                       f"(tensor {k!r})")
                if sl.get_dtype() not in ("F32", "BF16", "F16"):
                    raise WeightsError(f"{info.path}: tensor {k!r} is {sl.get_dtype()}, not a "
                                       "floating-point tensor")
            state = {k: f.get_tensor(k) for k in f.keys()}
        model.load_state_dict(state)
    except (SafetensorError, RuntimeError, OSError) as e:
        raise WeightsError(f"{info.path}: weights do not match their config ({e})") from e
    return model.to(device=device, dtype=dtype).eval(), info


MODEL_SETTINGS = {"tol": 0.0, "q_accept": float("-inf"), "budget": 0.0}  # name -> lowest allowed


def model_setting(info: ModelInfo, name: str, default: float, side: int | None = None) -> float:
    """A solver setting measured for this model and kept in its metadata by ``eqr-solve
    weights bundle`` (``tol``: the residual tolerance; ``q_accept``: the halting logit an
    answer needs under ``--select q``; ``budget``: the escalation NFE per puzzle), else
    ``default``: how much a settled answer's logits still move, how high the head rates a
    right answer, and how many segments a board needs, differ between models
    (docs/models.md, the maze card). A setting measured per puzzle size is a table
    ``{side: value}``; a puzzle of ``side`` takes the value of the largest measured side not
    above its own (the smallest side's below them all)."""
    value = info.meta.get(name)
    if value is None:
        return default
    try:
        table = by_side(value, MODEL_SETTINGS[name])
    except ValueError as e:
        raise WeightsError(f"{info.path}: broken model metadata ({name} {value!r}: {e})") from None
    sides = sorted(table)
    if side is None and len(sides) > 1:
        raise ValueError(f"{name} is measured per puzzle size: give the puzzle's side")
    below = [s for s in sides if side is not None and s <= side]
    return table[below[-1] if below else sides[0]]


def by_side(value, lowest: float) -> dict[int, float]:
    """A setting as ``{side: value}`` (a plain number holds for every side: side 0), checked:
    values numbers in [lowest, inf), sides positive integers (JSON keys are strings)."""
    table = value if isinstance(value, dict) else {0: value}
    if not table:
        raise ValueError("empty table")
    out = {}
    for side, v in table.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not lowest <= v < float("inf"):
            raise ValueError(f"{v!r} is not a number in [{lowest}, inf)")
        if not str(side).isdigit() or (int(side) == 0 and len(table) > 1):
            raise ValueError(f"side {side!r} is not a positive integer")
        out[int(side)] = float(v)
    return out


def parse_setting(text: str, lowest: float, integer: bool = False) -> float | dict[str, float]:
    """A setting as given to ``weights bundle``: ``4.0``, or per puzzle side ``9:2,15:3,30:4``;
    returned as it is kept in the metadata (a number, or a table with string keys).
    ``integer``: whole numbers only (a budget counts segments), kept as ints."""
    number = int if integer else float
    try:
        if ":" not in text:
            value: float | dict = number(text)
        else:
            value = {str(int(s)): number(v) for s, v in (p.split(":") for p in text.split(","))}
        by_side(value, lowest)
    except ValueError as e:
        raise ValueError(f"{text!r} is not a number or SIDE:VALUE,... ({e})") from None
    return value


def check_compatible(info: ModelInfo, kind: str, shape: tuple[int, int]) -> None:
    """Fail clearly when a model is asked to solve a puzzle it was not built for."""
    if info.kind != kind:
        raise WeightsError(f"{info.name} is a {info.kind} model, not a {kind} model")
    if info.board is not None and tuple(info.board) != tuple(shape):
        raise WeightsError(
            f"{info.name} solves {info.board[0]}x{info.board[1]} boards, "
            f"this puzzle is {shape[0]}x{shape[1]}"
        )
    # a file without a board (or a hand-edited one) can still not fit: say so before the
    # embedding or the token MLP fails inside the engine
    from eqr_solve.tasks import get_task

    cfg, (h, w) = info.config, shape
    tokens = get_task(kind).vocab_size(shape)
    if cfg.vocab_size != tokens:
        raise WeightsError(f"{info.name} reads {cfg.vocab_size} kinds of token, "
                           f"a {h}x{w} {kind} has {tokens}")
    if cfg.mixer == "mlp_t" and cfg.seq_len != h * w:
        raise WeightsError(f"{info.name} mixes exactly {cfg.seq_len} cells, "
                           f"this puzzle has {h * w}")


def list_bundled() -> list[ModelInfo]:
    return _scan(bundled_dir())[0]


def list_user() -> list[ModelInfo]:
    """Models registered in ``user_dir()`` (bundled names win on a clash, as in resolve)."""
    bundled = {i.name for i in list_bundled()}
    return [i for i in _scan(user_dir())[0] if i.name not in bundled]


def _scan(folder: Path) -> tuple[list[ModelInfo], list[str]]:
    """The readable models of a folder, and why each of its other model files is not one."""
    infos, problems = [], []
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            infos.append(read_info(path))
        except WeightsError as e:
            problems.append(str(e))
    return infos, problems


def unreadable() -> list[str]:
    """Why each model file in the bundled and registered folders that the lists above leave
    out cannot be read (a truncated copy, a foreign safetensors file), one line each."""
    return [line for folder in (bundled_dir(), user_dir()) for line in _scan(folder)[1]]


# -- Hugging Face Hub ---------------------------------------------------------------------------
def parse_hf(url: str) -> tuple[str, str, str | None]:
    """``hf://owner/repo[@rev]/path/file.safetensors`` -> (repo_id, filename, revision)."""
    parts = url.removeprefix("hf://").split("/")
    if len(parts) < 3 or not all(parts):
        raise WeightsError(f"bad hub address {url!r}; expected hf://OWNER/REPO[@REV]/FILE")
    repo, _, revision = "/".join(parts[:2]).partition("@")
    return repo, "/".join(parts[2:]), revision or None


def hub_download(url_or_repo: str, filename: str | None = None,
                 revision: str | None = None) -> Path:
    """Download (or find in the hub cache) one model file; honours HF_HOME / HF_HUB_OFFLINE."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    if url_or_repo.startswith("hf://"):
        repo, filename, revision = parse_hf(url_or_repo)
    else:
        repo = url_or_repo
    filename = filename or "model.safetensors"
    try:
        return Path(hf_hub_download(repo_id=repo, filename=filename, revision=revision))
    except LocalEntryNotFoundError as e:
        raise WeightsError(
            f"cannot download {repo}/{filename}: not in the local hub cache and the hub is "
            "unreachable or HF_HUB_OFFLINE is set"
        ) from e
    except (HfHubHTTPError, OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(f"cannot download {repo}/{filename}: {first}") from e


def list_downloaded() -> list[ModelInfo]:
    """eqr-solve models already in the Hugging Face cache."""
    try:
        from huggingface_hub import scan_cache_dir

        cache = scan_cache_dir()
    except Exception:  # no cache yet, or an unreadable one: nothing downloaded
        return []
    out = []
    for repo in cache.repos:
        for revision in repo.revisions:
            for f in revision.files:
                if f.file_name.endswith(SUFFIX):
                    try:
                        out.append(read_info(Path(f.file_path)))
                    except WeightsError:
                        continue
    return out


def bundle(src: Path, name: str, extra_meta: dict) -> Path:
    """Copy a trained model into ``weights/NAME.safetensors`` with extra metadata merged in
    (e.g. measured accuracy), so a bundled model carries its own model card."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise WeightsError(f"bad model name {name!r}: a plain file name, no '/' or leading '.'")
    model, info = load(str(src))  # every check a solve would make, before anything is written
    dst = bundled_dir() / f"{name}{SUFFIX}"
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    _write(dst, tensors, info.config, info.kind, info.board, dict(info.meta, **extra_meta))
    return dst


def mix(a: Path, b: Path, alpha: float, dst: Path) -> Path:
    """Write (1 - alpha)·A + alpha·B, tensor by tensor: a "model soup" of two checkpoints of
    one run (they share a basin, so the average is a model too; docs/models.md, sudoku-9x9).
    The metadata is A's, with each source's path and training progress under ``mixed_from``.
    Refuses models of different configurations."""
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"--alpha {alpha}: a weight between 0 and 1")
    model_a, info_a = load(str(a))
    model_b, info_b = load(str(b))
    if (info_a.config, info_a.kind, info_a.board) != (info_b.config, info_b.kind, info_b.board):
        raise WeightsError(f"{b}: not the same model configuration, kind and board as {a}")
    sb = model_b.state_dict()
    tensors = {k: ((1 - alpha) * v.float() + alpha * sb[k].float()).contiguous()
               for k, v in model_a.state_dict().items()}
    progress = ("step", "sample_segments", "train_hours", "final")  # per source, not the mix's
    meta = {k: v for k, v in info_a.meta.items() if k not in progress}
    meta["mixed_from"] = {"alpha": alpha, **{
        name: {"path": str(path), **{k: info.meta[k] for k in progress if k in info.meta}}
        for name, path, info in (("a", a, info_a), ("b", b, info_b))}}
    _write(dst, tensors, info_a.config, info_a.kind, info_a.board, meta)
    return dst


EVAL_KEYS = ("depth", "breadth", "puzzles", "acc_residual", "acc_vote", "acc_q", "any_correct",
             "mean_nfe", "acc_retry", "mean_nfe_retry", "acc_race", "mean_nfe_race",
             "acc_race_q", "mean_nfe_race_q")


def eval_accuracy(paths: list[Path]) -> dict:
    """The ``accuracy`` metadata of a bundle: per ``result.json`` of ``eqr-solve eval --out``,
    its data, halting and the whole-set cells (the keys of ``EVAL_KEYS``)."""
    accuracy = {}
    for path in paths:
        try:
            r = json.loads(Path(path).read_text())
            cells = [c for c in r["cells"] if c["stratum"] == "all"]
            accuracy[str(path)] = {
                "data": r.get("data"), "halt": r.get("halt"), "tol": r.get("tol"),
                **({"q_accept": r["q_accept"]} if "q_accept" in r else {}),
                **({"protocol": r["protocol"]} if "protocol" in r else {}),
                "cells": [{k: c[k] for k in EVAL_KEYS if k in c} for c in cells]}
        except OSError as e:
            raise InputError(f"{path}: cannot read ({e.strerror or e})") from e
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise InputError(f"{path}: not a result.json of `eqr-solve eval --out` "
                             f"({type(e).__name__}: {e})") from e
    return accuracy
