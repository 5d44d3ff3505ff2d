"""Import the paper's released checkpoints (``locuslab/EqR-model``: ``sudoku-extreme/eqr.pth``,
``maze-unique/eqr.pth``) into this project's safetensors format.

The official files are ``torch.save`` pickles. They are read here without ``torch.load``:
the zip archive is opened with :mod:`zipfile` and ``data.pkl`` is unpickled by
:class:`SafeUnpickler`, whose ``find_class`` knows only the handful of globals such a
checkpoint needs (tensor rebuild, storage types, ``collections.OrderedDict``, numpy's RNG-state
array reconstruction, ``_codecs.encode`` for latin-1 byte strings) and maps each to a
function of this module or a plain type. Any other global is refused when the pickle names
it, before anything is called, so a ``__reduce__`` payload never runs. Storages are read
from the archive by their persistent ids.

The model config comes only from the checkpoint's ``config.arch`` plus the tensor shapes
(vocab from the embedding, cells from the token MLP); the attention model stores no board
size, so it is the released Maze-Unique model's 30x30 when the layout is that model's, and
must be given (``board=``) otherwise.
"""

from __future__ import annotations

import _codecs
import collections
import hashlib
import math
import operator
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from eqr_solve import weights
from eqr_solve.model import EqR, EqRConfig, count_parameters
from eqr_solve.tasks import maze as maze_task
from eqr_solve.tasks import sudoku as sudoku_task
from eqr_solve.weights import WeightsError

PAPER = "Huang, Geng & Kolter, Equilibrium Reasoners, ICML 2026 (arXiv 2605.21488)"
PREFIXES = ("_orig_mod.", "module.")  # left by torch.compile / DistributedDataParallel

# The two released models (locuslab/EqR-model): their architecture, cells, vocab and
# parameter count, the board they were trained on and the paper's reported accuracy.
RELEASED = {
    "sudoku-extreme": {
        "arch": {"hidden_size": 512, "num_heads": 8, "expansion": 4, "L_layers": 2,
                 "H_cycles": 3, "L_cycles": 6, "mlp_t": True},
        "kind": "sudoku", "board": (9, 9), "vocab": 11, "parameters": 4_855_298,
        "reported": {"dataset": "Sudoku-Extreme (test)", "exact_accuracy": 0.998, "depth": 64,
                     "breadth": 128, "selection": "top-1 converged (smallest logit residual)"},
    },
    "maze-unique": {
        "arch": {"hidden_size": 128, "num_heads": 8, "expansion": 4, "L_layers": 1,
                 "H_cycles": 3, "L_cycles": 4, "mlp_t": False, "pos_encodings": "rope"},
        "kind": "maze", "board": (30, 30), "vocab": 6, "parameters": 263_938,
        "reported": {"dataset": "Maze-Unique 30x30 (test)", "exact_accuracy": 0.930,
                     "depth": 64, "breadth": 128,
                     "selection": "top-1 converged (smallest logit residual)"},
    },
}

# Official token ids, in order (spec 1.2/1.3), and this project's id for each.
OFFICIAL_TOKENS = {
    "sudoku": ["pad", "blank"] + [f"digit {d}" for d in range(1, 10)],
    "maze": ["pad", "#", " ", "S", "G", "o"],
}


def project_token_ids(kind: str, vocab: int) -> list[int]:
    """This project's token id for each official token id (the official order is pad, then
    the task's symbols); identical today, checked against the task modules so that a change
    there re-orders the embedding and lm_head rows instead of silently breaking them."""
    if kind == "sudoku":
        # official: 0 pad, 1 blank, d + 1 digit d; here BLANK for blank and BLANK + d for d
        return [0, sudoku_task.BLANK] + [sudoku_task.BLANK + d for d in range(1, vocab - 1)]
    ids = [0, maze_task.WALL, maze_task.OPEN, maze_task.START, maze_task.GOAL, maze_task.PATH]
    if vocab != len(ids):
        raise WeightsError(f"a maze model needs {len(ids)} tokens, the checkpoint has {vocab}")
    return ids


# -- the restricted unpickler -----------------------------------------------------------------
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16, "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64, "IntStorage": torch.int32, "ShortStorage": torch.int16,
    "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
    "UntypedStorage": torch.uint8,
}


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None,
                    metadata=None):
    """``torch._utils._rebuild_tensor_v2`` on a storage this loader read itself."""
    if not isinstance(storage, torch.Tensor):
        raise pickle.UnpicklingError("tensor without a storage")
    if hooks:
        raise pickle.UnpicklingError("tensor with backward hooks")
    return storage.as_strided(tuple(size), tuple(stride), int(offset))


def _rebuild_parameter(data, requires_grad=False, hooks=None, state=None):
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("parameter without a tensor")
    return data


def _encode(text, encoding="utf-8"):
    """``_codecs.encode`` as pickle protocol 2 uses it for bytes: latin-1 only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("unexpected _codecs.encode call")
    return _codecs.encode(text, "latin1")


class NumpyPlaceholder:
    """What every numpy object in a checkpoint becomes: an inert stand-in. The files carry
    numpy only in their RNG state, which the converter never reads; building real numpy
    arrays or dtypes from a file's bytes is not safe (a crafted dtype state makes an array
    whose raw bytes are read as object pointers), so none is built."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state) -> None:
        pass

    def __repr__(self) -> str:
        return "<numpy object, not loaded>"


def _numpy_globals() -> dict:
    names = [(module, "_reconstruct") for module in ("numpy._core.multiarray",
                                                       "numpy.core.multiarray")]
    names += [(module, "scalar") for module in ("numpy._core.multiarray",
                                                 "numpy.core.multiarray")]
    names += [("numpy", "ndarray"), ("numpy", "dtype")]
    names += [("numpy.dtypes", n) for n in ("UInt32DType", "Int64DType", "Float64DType")]
    return dict.fromkeys(names, NumpyPlaceholder)


def allowed_globals() -> dict:
    """Every global a checkpoint may name, mapped to what it becomes here."""
    allowed = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch", "Size"): torch.Size,
        ("_codecs", "encode"): _encode,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("__builtin__", "set"): set,
    }
    for name, dtype in _STORAGE_DTYPES.items():
        allowed[("torch", name)] = dtype  # a storage type only says the element type
    allowed.update(_numpy_globals())
    return allowed


class RefusedGlobal(pickle.UnpicklingError):
    pass


class SafeUnpickler(pickle.Unpickler):
    """Unpickles ``data.pkl`` of a torch.save archive with an explicit allow-list."""

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self._archive, self._prefix = archive, prefix
        self._allowed = allowed_globals()
        self._storages: dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise RefusedGlobal(f"refused to load {module}.{name}: not something a model "
                                "checkpoint contains") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {str(pid)[:60]}")
        _, dtype, key, _location, numel = pid
        if not isinstance(dtype, torch.dtype) or not isinstance(numel, int):
            raise pickle.UnpicklingError("malformed storage reference")
        key = str(key)
        if key not in self._storages:
            try:
                raw = self._archive.read(f"{self._prefix}data/{key}")
            except KeyError:
                raise pickle.UnpicklingError(f"storage {key} missing from the archive") from None
            itemsize = torch.empty(0, dtype=dtype).element_size()
            if len(raw) != numel * itemsize:
                raise pickle.UnpicklingError(
                    f"storage {key} has {len(raw)} bytes, expected {numel * itemsize}")
            self._storages[key] = (torch.frombuffer(bytearray(raw), dtype=dtype) if raw
                                   else torch.empty(0, dtype=dtype))
        storage = self._storages[key]
        if storage.dtype != dtype:
            raise pickle.UnpicklingError(f"storage {key} read with two element types")
        return storage


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text and text[0] else type(e).__name__


def load_checkpoint(path: Path | str) -> dict:
    """Read a ``torch.save`` checkpoint safely (see the module docstring); WeightsError with
    one line for anything that is not a readable checkpoint of plain data and tensors."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise WeightsError(f"{path}: cannot read ({e.strerror or e})") from e
    if not head.startswith(b"PK"):
        if head[:1] == b"\x80":
            raise WeightsError(f"{path}: a bare pickle or a pre-1.6 torch.save file, not a "
                               "torch.save zip archive; not loaded")
        raise WeightsError(f"{path}: not a PyTorch checkpoint (not a torch.save zip archive)")
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist()
                       if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pickles) != 1:
                raise WeightsError(f"{path}: not a torch.save archive (no single data.pkl)")
            prefix = pickles[0].removesuffix("data.pkl")
            order = f"{prefix}byteorder"
            if order in archive.namelist() and archive.read(order).strip() != b"little":
                raise WeightsError(f"{path}: big-endian checkpoints are not supported")
            with archive.open(pickles[0]) as f:
                obj = SafeUnpickler(f, archive, prefix).load()
    except WeightsError:
        raise
    except RefusedGlobal as e:
        raise WeightsError(f"{path}: {e}") from None
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as e:
        raise WeightsError(f"{path}: truncated or corrupt checkpoint ({_one_line(e)})") from None
    except Exception as e:  # anything a malformed pickle can raise: never a traceback
        raise WeightsError(f"{path}: corrupt checkpoint ({type(e).__name__}: "
                           f"{_one_line(e)})") from None
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: not an EqR training checkpoint (a {type(obj).__name__}, "
                           "not a dict)")
    return obj


# -- conversion ---------------------------------------------------------------------------------
_LAYER = re.compile(r"model\.inner\.L_level\.layers\.(\d+)\.(mlp_t|self_attn|mlp)\."
                    r"(gate_up_proj|down_proj|qkv_proj|o_proj)\.weight")
_HEADS = {"model.inner.embed_tokens.embedding_weight": "embed.weight",
          "model.inner.lm_head.weight": "lm_head.weight",
          "model.inner.q_head.weight": "q_head.weight",
          "model.inner.q_head.bias": "q_head.bias"}
_LAYER_PARTS = {("mlp_t", "gate_up_proj"): "mix.gate_up", ("mlp_t", "down_proj"): "mix.down",
                ("self_attn", "qkv_proj"): "mix.qkv", ("self_attn", "o_proj"): "mix.out",
                ("mlp", "gate_up_proj"): "mlp.gate_up", ("mlp", "down_proj"): "mlp.down"}
_ARCH_KEYS = ("hidden_size", "num_heads", "expansion", "L_layers", "H_cycles", "L_cycles",
              "mlp_t", "pos_encodings", "lambda_", "noise_scale", "H_init_std", "L_init_std")


@dataclass
class Converted:
    model: EqR
    kind: str
    board: tuple[int, int]
    meta: dict
    released: str | None  # "sudoku-extreme" / "maze-unique" when the layout is theirs

    def describe(self) -> str:
        cfg = self.model.cfg
        mixer = "token MLP" if cfg.mixer == "mlp_t" else f"attention + {cfg.pos_encoding}"
        name = f"the paper's {self.released} model" if self.released else "an EqR model"
        return (f"{name} for {self.kind} (only {self.board[0]}x{self.board[1]} boards), "
                f"{mixer}, hidden "
                f"{cfg.hidden_size}, {count_parameters(self.model):,} parameters, "
                f"{'EMA' if self.meta['weights'] == 'ema' else 'raw (no EMA)'} weights"
                + (f" of step {self.meta['step']:,}" if self.meta["step"] is not None else ""))


def _strip(name: str) -> str:
    changed = True
    while changed:
        changed = False
        for p in PREFIXES:
            if name.startswith(p):
                name, changed = name[len(p):], True
    return name


def _state(ckpt: dict, src: str) -> tuple[dict, str]:
    ema = ckpt.get("ema")
    if isinstance(ema, dict) and isinstance(ema.get("shadow"), dict) and ema["shadow"]:
        state, which = ema["shadow"], "ema"
    elif isinstance(ckpt.get("model"), dict) and ckpt["model"]:
        state, which = ckpt["model"], "raw"
    else:
        raise WeightsError(f"{src}: not an EqR training checkpoint (no 'model' or "
                           "'ema.shadow' weights)")
    out = {}
    for k, v in state.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise WeightsError(f"{src}: not an EqR training checkpoint (a non-tensor entry "
                               "in its weights)")
        out[_strip(k)] = v
    return out, which


def _arch(ckpt: dict, src: str) -> dict:
    config = ckpt.get("config")
    arch = config.get("arch") if isinstance(config, dict) else None
    if not isinstance(arch, dict):
        raise WeightsError(f"{src}: not an EqR training checkpoint (no 'config.arch')")
    missing = [k for k in _ARCH_KEYS if k not in arch]
    if missing:
        raise WeightsError(f"{src}: not an EqR checkpoint (config.arch has no "
                           f"{', '.join(missing)})")
    return arch


def _kind(ckpt: dict, src: str) -> str:
    dataset = ckpt["config"].get("dataset")
    text = ""
    if isinstance(dataset, dict):
        text = f"{dataset.get('name', '')} {dataset.get('data_path', '')}".lower()
    elif isinstance(dataset, str):
        text = dataset.lower()
    kinds = [k for k in ("sudoku", "maze") if k in text]
    if len(kinds) != 1:
        raise WeightsError(f"{src}: config.dataset does not say whether this is a sudoku or "
                           "a maze model")
    return kinds[0]


def _json_safe(x):
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return repr(x)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def convert(src: Path | str, board: tuple[int, int] | None = None,
            source: dict | None = None) -> Converted:
    """Build this project's model from an official checkpoint. ``board`` is needed only for
    an attention model whose checkpoint does not say its board (any but the released one);
    ``source`` adds provenance (e.g. the hub repo and revision)."""
    src = Path(src)
    ckpt = load_checkpoint(src)
    name = str(src)  # errors name the file as given
    arch = _arch(ckpt, name)
    kind = _kind(ckpt, name)
    state, which = _state(ckpt, name)

    try:
        mlp_t = bool(arch["mlp_t"])
        hidden, heads = int(arch["hidden_size"]), int(arch["num_heads"])
        layers = int(arch["L_layers"])
        pos = arch["pos_encodings"]
        vocab = state["model.inner.embed_tokens.embedding_weight"].shape[0]
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise WeightsError(f"{name}: not an EqR checkpoint ({type(e).__name__}: "
                           f"{_one_line(e)})") from None
    try:
        same_std = float(arch["H_init_std"]) == float(arch["L_init_std"])
    except (KeyError, TypeError, ValueError) as e:
        raise WeightsError(f"{name}: unusable config.arch ({_one_line(e)})") from None
    if not same_std:
        raise WeightsError(f"{name}: H_init_std != L_init_std, which this project cannot "
                           "represent (one init_std for both latents)")
    if pos not in ("rope", "rope2d", "none", None):
        raise WeightsError(f"{name}: position encoding {pos!r} is not supported")

    # cells: from the token MLP's weights (mlp_t) or the config's board; an attention model
    # stores neither, so it is the released model's board or the caller's
    gh, gw = arch.get("board_height"), arch.get("board_width")
    config_board = (int(gh), int(gw)) if gh and gw else None
    released = _released(arch, vocab, kind, state)
    if mlp_t:
        key = "model.inner.L_level.layers.0.mlp_t.gate_up_proj.weight"
        if key not in state:
            raise WeightsError(f"{name}: config says mlp_t but the weights have no {key}")
        seq_len = int(state[key].shape[1])
        side = math.isqrt(seq_len)
        trained = (config_board if config_board and config_board[0] * config_board[1] == seq_len
                   else (side, side) if side * side == seq_len and kind == "sudoku"
                   else None)
        if board is not None:
            if board[0] * board[1] != seq_len or (trained and tuple(board) != trained):
                raise WeightsError(f"{name}: the token-MLP model has {seq_len} cells, not a "
                                   f"{board[0]}x{board[1]} board")
            trained = tuple(board)
        if trained is None:
            raise WeightsError(f"{name}: cannot tell the board of a {seq_len}-cell model: "
                               "pass it, e.g. --board 9x9")
        board = trained
    else:
        board = tuple(board) if board else (config_board or
                                            (RELEASED[released]["board"] if released else None))
        if board is None:
            raise WeightsError(f"{name}: the checkpoint does not record its board size "
                               "(attention model): pass it, e.g. --board 30x30")
        seq_len = board[0] * board[1]
        if pos == "rope2d" and config_board and config_board != tuple(board):
            raise WeightsError(f"{name}: 2-D RoPE trained on {config_board[0]}x"
                               f"{config_board[1]} boards, not {board[0]}x{board[1]}")
    if kind == "sudoku" and (board[0] != board[1] or vocab != board[0] + 2):
        raise WeightsError(f"{name}: a {vocab}-token model does not fit {board[0]}x{board[1]} "
                           "Sudoku (needs n + 2 tokens for n x n)")

    try:  # from_dict validates every value and the model's size before anything is built
        cfg = EqRConfig.from_dict(dict(
            vocab_size=vocab, seq_len=seq_len, hidden_size=hidden,
            expansion=float(arch["expansion"]), num_heads=heads, L_layers=layers,
            H_cycles=int(arch["H_cycles"]), L_cycles=int(arch["L_cycles"]),
            mixer="mlp_t" if mlp_t else "attn",
            # RoPE has no effect without attention (the reference builds it and never uses it)
            pos_encoding="none" if mlp_t or pos in (None, "none") else pos,
            rope_theta=float(arch.get("rope_theta", 10000.0)),
            lambda_=float(arch["lambda_"]), noise_scale=float(arch["noise_scale"]),
            init_std=float(arch["H_init_std"]), random_init=True,
            down_proj_init_scale=1.0, q_pool="first",
            rms_norm_eps=float(arch.get("rms_norm_eps", 1e-5)), q_outputs=2,
        ))
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise WeightsError(f"{name}: unusable config.arch ({_one_line(e)})") from None
    try:
        model = EqR(cfg)
    except ValueError as e:
        raise WeightsError(f"{name}: {_one_line(e)}") from None
    _load(model, state, kind, vocab, name)

    try:
        step = operator.index(ckpt.get("step"))
    except TypeError:
        step = None
    train_cfg = ckpt["config"]
    batch = train_cfg.get("global_batch_size")
    ema = ckpt.get("ema") if isinstance(ckpt.get("ema"), dict) else {}
    meta = {
        "official": True,
        "source": {"file": src.name, "sha256": file_sha256(src), **(source or {})},
        "paper": PAPER,
        "step": step,
        "weights": which,
        "ema_rate": ema.get("mu") if which == "ema" else None,
        "sample_segments": step * batch if step and isinstance(batch, int) else None,
        "train_segments": arch.get("halt_max_steps"),
        "dataset": _json_safe(train_cfg.get("dataset")),
        "official_arch": _json_safe(arch),
        "notes": ("converted from the official PyTorch checkpoint; the reference runs in "
                  "bf16, this model in fp32 (or --dtype); q_head keeps the unused second "
                  "output (q_continue)"),
    }
    if released:
        meta["released_model"] = f"locuslab/EqR-model {released}/eqr.pth (layout match)"
        if tuple(board) == RELEASED[released]["board"]:
            meta["reported_accuracy"] = dict(
                RELEASED[released]["reported"],
                note="reported in the paper, not measured by eqr-solve")
    return Converted(model.eval(), kind, tuple(board), meta, released)


def _released(arch: dict, vocab: int, kind: str, state: dict) -> str | None:
    params = sum(t.numel() for t in state.values())
    for name, r in RELEASED.items():
        if (r["kind"] == kind and r["vocab"] == vocab and r["parameters"] == params
                and all(arch.get(k) == v for k, v in r["arch"].items())):
            return name
    return None


def _load(model: EqR, state: dict, kind: str, vocab: int, src: str) -> None:
    """Rename, permute token rows if needed, check shapes and load strictly."""
    mapped = {}
    for key, t in state.items():
        if key in _HEADS:
            new = _HEADS[key]
        elif (m := _LAYER.fullmatch(key)) and (m[2], m[3]) in _LAYER_PARTS:
            new = f"blocks.{m[1]}.{_LAYER_PARTS[m[2], m[3]]}.weight"
        else:
            raise WeightsError(f"{src}: unexpected parameter {key!r} (not the EqR layout)")
        mapped[new] = t.detach()  # converted to fp32 only once its shape is checked
    own = model.state_dict()
    for key, t in mapped.items():
        if key in own and tuple(t.shape) != tuple(own[key].shape):
            raise WeightsError(f"{src}: {key} has shape {tuple(t.shape)}, config.arch gives "
                               f"{tuple(own[key].shape)}")
    extra = sorted(set(mapped) - set(own))
    if extra:
        raise WeightsError(f"{src}: weights {', '.join(extra[:3])} do not fit config.arch")
    mapped = {k: v.to(torch.float32) for k, v in mapped.items()}
    ids = project_token_ids(kind, vocab)
    if ids != list(range(vocab)):
        perm = torch.tensor(ids)
        for key in ("embed.weight", "lm_head.weight"):
            if key in mapped:
                rows = torch.empty_like(mapped[key])
                rows[perm] = mapped[key]
                mapped[key] = rows
    mapped["H_init"] = torch.zeros_like(own["H_init"])  # unused by EqR (random init)
    mapped["L_init"] = torch.zeros_like(own["L_init"])
    missing = sorted(set(own) - set(mapped))
    if missing:
        raise WeightsError(f"{src}: weights missing for {', '.join(missing[:3])} (layout does "
                           "not match config.arch)")
    model.load_state_dict({k: v.contiguous() for k, v in mapped.items()}, strict=True)


def convert_file(src: Path | str, dst: Path | str, board: tuple[int, int] | None = None,
                 source: dict | None = None) -> Converted:
    """Convert ``src`` (official ``.pth``) and write ``dst`` (this project's safetensors)."""
    conv = convert(src, board, source)
    weights.save(conv.model, dst, conv.kind, conv.board, conv.meta)
    return conv


def stable_name(repo_file: str) -> str:
    """``sudoku-extreme/eqr.pth`` -> ``eqr-sudoku-extreme`` (the name a pulled model is
    registered under)."""
    parts = [p for p in Path(repo_file).with_suffix("").parts if p not in ("", ".", "/")]
    if len(parts) > 1 and parts[-1].lower() == "eqr":
        parts = parts[:-1]
    name = re.sub(r"[^a-z0-9._-]+", "-", "-".join(parts).lower()).strip("-.")
    if not name:
        raise WeightsError(f"cannot name a model after {repo_file!r}")
    return name if name.startswith("eqr") else f"eqr-{name}"


def _snapshot_commit(path: Path) -> str | None:
    """The commit of a file in the Hugging Face cache (``.../snapshots/COMMIT/dir/file``)."""
    for parent in path.parents:
        if parent.parent.name == "snapshots":
            return parent.name
    return None


def pull(repo: str, filename: str, revision: str | None = None, name: str | None = None,
         board: tuple[int, int] | None = None) -> tuple[Converted, Path]:
    """Download (or find in the hub cache) an official checkpoint, convert it and register it
    as ``user_dir()/NAME.safetensors`` so that ``--weights NAME`` finds it."""
    name = name or stable_name(filename)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise WeightsError(f"bad model name {name!r}: use letters, digits, '.', '_', '-'")
    if (weights.bundled_dir() / f"{name}{weights.SUFFIX}").exists():
        raise WeightsError(f"{name!r} is a bundled model's name; choose another with --name")
    path = weights.hub_download(repo, filename, revision)
    source = {"hub": f"{repo}/{filename}", "revision": revision or "main",
              "commit": _snapshot_commit(path)}
    dst = weights.user_dir() / f"{name}{weights.SUFFIX}"
    return convert_file(path, dst, board, source), dst


def replay_fixture(model: EqR, expected: dict, board: tuple[int, int], dtype: torch.dtype,
                   segments: int = 3) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Run ``segments`` segments from a parity fixture's recorded latents (``z_H0``, ``z_L0``,
    ``inputs``: the ``*.expected.safetensors`` layout of the official-format test checkpoints)
    and return each segment's (logits, q_halt, z_H) in fp64, to compare with the recorded
    ``logits_K``, ``q_K``, ``z_H_K``."""
    from eqr_solve.model import Carry

    model = model.to(dtype)
    B = expected["inputs"].shape[0]
    carry = Carry(expected["z_H0"].to(dtype), expected["z_L0"].to(dtype))
    out = []
    with torch.no_grad():
        for _ in range(segments):
            o = model(carry, expected["inputs"].view(B, *board))
            carry = o.carry
            out.append((o.logits.double(), o.q_halt.double(), o.carry.z_H.double()))
    return out
