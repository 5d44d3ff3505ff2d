"""Model files: safetensors with the full model config and provenance in the metadata.

A model is found by a bundled name (``sudoku-9x9`` -> ``weights/sudoku-9x9.safetensors``), a
file path, or ``hf://REPO_ID[@REVISION]/FILE`` (Hugging Face Hub, through its cache).
Pickled checkpoints are never loaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from eqr_solve.model import EqR, EqRConfig

FORMAT = "eqr-solve/1"
SUFFIX = ".safetensors"


class WeightsError(Exception):
    """A model file that cannot be used, with a one-line reason."""


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


def default_name(kind: str, shape: tuple[int, int]) -> str:
    """The bundled model used when the user names none."""
    return f"sudoku-{shape[0]}x{shape[1]}" if kind == "sudoku" else "maze"


def save(model: EqR, path: Path | str, kind: str, board: tuple[int, int] | None,
         meta: dict | None = None) -> None:
    """Write weights + metadata atomically (a crash never leaves a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    _write(path, tensors, model.cfg, kind, board, meta or {})


def _write(path: Path, tensors: dict, config: EqRConfig, kind: str,
           board: tuple[int, int] | None, meta: dict) -> None:
    metadata = {"format": FORMAT, "config": json.dumps(config.to_dict()), "kind": kind,
                "board": json.dumps(list(board) if board else None), "meta": json.dumps(meta)}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def resolve(name: str) -> Path:
    """Turn a weights name, path or hf:// URL into a local file path."""
    if name.startswith("hf://"):
        return hub_download(name)
    path = Path(name).expanduser()
    if path.suffix == SUFFIX or path.exists() or os.sep in name:
        if not path.exists():
            raise WeightsError(f"weights file not found: {path}")
        return path
    bundled = bundled_dir() / f"{name}{SUFFIX}"
    if not bundled.exists():
        available = ", ".join(i.name for i in list_bundled()) or "none yet"
        raise WeightsError(
            f"no bundled model named {name!r} (available: {available}); "
            "train one with `eqr-solve train` or pass --weights FILE"
        )
    return bundled


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
    except (KeyError, ValueError, TypeError) as e:
        raise WeightsError(f"{path}: broken model metadata ({e})") from e
    return ModelInfo(path, config, metadata.get("kind", "?"), tuple(board) if board else None,
                     meta)


def load(name: str, device: str | torch.device = "cpu") -> tuple[EqR, ModelInfo]:
    """Load a model by name/path/hf:// URL, in eval mode on ``device``."""
    info = read_info(resolve(name))
    model = EqR(info.config)
    try:
        with safe_open(str(info.path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
        model.load_state_dict(state)
    except (SafetensorError, RuntimeError, OSError) as e:
        raise WeightsError(f"{info.path}: weights do not match their config ({e})") from e
    return model.to(device).eval(), info


def check_compatible(info: ModelInfo, kind: str, shape: tuple[int, int]) -> None:
    """Fail clearly when a model is asked to solve a puzzle it was not built for."""
    if info.kind != kind:
        raise WeightsError(f"{info.name} is a {info.kind} model, not a {kind} model")
    if info.board is not None and tuple(info.board) != tuple(shape):
        raise WeightsError(
            f"{info.name} solves {info.board[0]}x{info.board[1]} boards, "
            f"this puzzle is {shape[0]}x{shape[1]}"
        )


def list_bundled() -> list[ModelInfo]:
    out = []
    for path in sorted(bundled_dir().glob(f"*{SUFFIX}")):
        try:
            out.append(read_info(path))
        except WeightsError:
            continue
    return out


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
    from safetensors.torch import load_file

    info = read_info(src)
    dst = bundled_dir() / f"{name}{SUFFIX}"
    dst.parent.mkdir(parents=True, exist_ok=True)
    _write(dst, load_file(str(src)), info.config, info.kind, info.board,
           dict(info.meta, **extra_meta))
    return dst
