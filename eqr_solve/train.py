"""Segmented online training (SOT) with ACT halting, as in the EqR/TRM reference.

Each optimizer step runs ONE segment for every row of the batch, takes a loss on it, and
steps the optimizer; the detached latents carry over to the next step. A row whose
trajectory halts (q_halt > 0, or 16 segments) is replaced by a fresh puzzle with fresh random
latents. The global batch is cut into ``shards`` that each own a data stream and RNG, so a run
gives the same result on one process or spread over several (torchrun), and can be killed and
resumed exactly.

Run as ``eqr-solve train ...`` or ``torchrun --nproc-per-node N -m eqr_solve train ...``.
"""

from __future__ import annotations

import copy
import fcntl
import json
import math
import os
import pickle
import signal
import time
import zipfile

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from eqr_solve import precision, weights
from eqr_solve.data import (
    Dataset,
    PuzzleStream,
    assert_no_test_puzzles,
    drop_seen,
    generate,
    load_collection,
)
from eqr_solve.errors import RecipeError, ResourceError, WeightsError
from eqr_solve.model import EqR, EqRConfig, variant
from eqr_solve.solver import SolveConfig, solve
from eqr_solve.tasks import get_task

RECIPES_DIR = Path(__file__).resolve().parent.parent / "train"


@dataclass
class TrainConfig:
    batch_size: int = 64  # global batch (rows in flight)
    shards: int = 1  # independent slices of the batch; must be divisible by the world size
    optimizer: str = "adamw"  # "adamw" or "adam_atan2" (the reference's)
    lr: float = 1e-3
    lr_min_ratio: float = 1.0  # cosine decay to lr*ratio over max_steps (1.0 = constant)
    decay_steps: int = 0  # the cosine's length when not max_steps (a resumed run that was
    # extended keeps its schedule and goes on at the floor)
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0 = off
    ema_decay: float = 0.999
    loss: str = "stablemax"  # or "softmax"
    q_loss_weight: float = 0.5
    label_weights: list[float] | None = None  # per label token (e.g. up-weight maze path cells)
    halt_max_steps: int = 16
    halt_exploration_prob: float = 0.1
    curriculum_steps: int = 0  # data mix moves from each source's start_weight to its weight
    max_steps: int = 0  # 0 = until stopped
    max_minutes: float = 0  # stop after this much training time in this invocation (0 = off)
    log_every_seconds: float = 30
    checkpoint_every_minutes: float = 5
    eval_every_minutes: float = 20
    eval_depth: int = 16
    seed: int = 0
    compile: bool = True  # torch.compile the blocks (falls back to eager without a compiler)
    variant: str = "eqr"  # "eqr" (RI+NI), "ri" or "trm" baseline
    dtype: str = "auto"  # "auto", "fp32" or "bf16": bf16 autocast for the network, fp32 master
    # weights, optimizer, EMA and loss (eqr_solve/precision.py decides "auto" per machine)


# -- recipes ------------------------------------------------------------------------------------
def load_recipe(name_or_path: str) -> dict:
    """A recipe TOML by path or by name in ``train/``."""
    path = Path(name_or_path)
    if not path.exists():
        path = RECIPES_DIR / f"{name_or_path}.toml"
    if not path.exists() and not RECIPES_DIR.is_dir():  # a wheel carries no train/ folder
        raise FileNotFoundError(f"no recipe {name_or_path!r}: the recipes are in the train/ "
                                "folder of a clone (pip install -e .); or pass a recipe file")
    if not path.exists():
        have = ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.toml")))
        raise FileNotFoundError(f"no recipe {name_or_path!r} (recipes in train/: {have})")
    with open(path, "rb") as f:
        recipe = tomllib.load(f)
    recipe.setdefault("name", path.stem)
    recipe["recipe_file"] = str(path.name)
    return recipe


def apply_overrides(recipe: dict, overrides: list[str]) -> dict:
    """``section.key=value`` overrides (value in TOML syntax, else taken as a string)."""
    recipe = copy.deepcopy(recipe)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not KEY=VALUE")
        try:
            parsed = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value
        node = recipe
        *parents, leaf = key.strip().split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = parsed
    return recipe


def train_config(recipe: dict) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    section = recipe.get("train", {})
    unknown = set(section) - known
    if unknown:
        raise ValueError(f"unknown [train] keys: {', '.join(sorted(unknown))}")
    if section.get("dtype", "auto") not in ("auto", *precision.DTYPES):
        raise ValueError(f"train.dtype must be auto, fp32 or bf16, not {section['dtype']!r}")
    cfg = TrainConfig(**section)
    vocab = vocab_size(recipe)
    if cfg.label_weights and len(cfg.label_weights) != vocab:
        raise ValueError(f"label_weights needs one weight per token ({vocab}), "
                         f"got {len(cfg.label_weights)}")
    return cfg


def vocab_size(recipe: dict) -> int:
    if "vocab_size" in recipe.get("model", {}):
        return recipe["model"]["vocab_size"]
    return get_task(recipe["kind"]).vocab_size(recipe.get("board"))


def model_config(recipe: dict) -> EqRConfig:
    board = recipe.get("board")
    section = dict(recipe.get("model", {}))
    section.setdefault("vocab_size", vocab_size(recipe))
    section.setdefault("seq_len", board[0] * board[1] if board else 0)
    return variant(EqRConfig.from_dict(section), train_config(recipe).variant)


def build_source(spec: dict, kind: str, cache_dir: Path | None, split: str = "train") -> Dataset:
    """One ``[[data]]`` entry: a shared collection, a saved dataset, or a generator spec.
    Generated sets are cached in ``cache_dir`` (they are deterministic in their seed)."""
    if "path" in spec:
        return Dataset.load(spec["path"])
    cached = cache_dir / f"{spec['name']}.npz" if cache_dir else None
    if cached and cached.exists():
        return Dataset.load(cached)
    if "collection" in spec:
        ds = load_collection(spec["collection"], spec.get("split", split), spec.get("limit"),
                             holdout=spec.get("holdout", 0))
    else:
        ds = generate(kind, spec["count"], spec.get("seed", 0), **spec.get("generate", {}))
    if cached:
        ds.save(cached)
    return ds


# -- loss and optimizer -------------------------------------------------------------------------
def stablemax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy under stablemax, s(x) = x+1 (x>=0) or 1/(1-x) (x<0); per element."""
    s = torch.where(logits >= 0, logits + 1, 1 / (1 - logits.clamp(max=0)))
    logp = torch.log(s) - torch.log(s.sum(-1, keepdim=True))
    return -logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1)


def token_loss(logits: torch.Tensor, labels: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "stablemax":
        return stablemax_cross_entropy(logits.double(), labels).float()
    return F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")


class AdamATan2(torch.optim.Optimizer):
    """The reference optimizer: Adam with atan2 instead of division (no epsilon)."""

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.95), weight_decay=1.0):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, (b1, b2), wd = group["lr"], group["betas"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                p.mul_(1 - lr * wd)
                state["m"].lerp_(p.grad, 1 - b1)
                state["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                denom = state["v"].sqrt() / math.sqrt(1 - b2**t)
                p.add_(torch.atan2(state["m"], denom), alpha=-lr / (1 - b1**t))


def make_optimizer(model: EqR, cfg: TrainConfig) -> torch.optim.Optimizer:
    # the halting bias starts at -5; decaying it toward 0 would make the head fire spuriously
    decay = [p for n, p in model.named_parameters() if not n.startswith("q_head")]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": list(model.q_head.parameters()), "weight_decay": 0.0}]
    betas = (cfg.beta1, cfg.beta2)
    if cfg.optimizer == "adam_atan2":
        return AdamATan2(groups, lr=cfg.lr, betas=betas)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=betas, foreach=True)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warmup from step 1, then cosine down to lr*lr_min_ratio over max_steps (or
    decay_steps)."""
    if step < cfg.warmup_steps:
        return cfg.lr * step / cfg.warmup_steps
    length = cfg.decay_steps or cfg.max_steps
    if cfg.lr_min_ratio >= 1.0 or not length:
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, length - cfg.warmup_steps))
    return cfg.lr * (cfg.lr_min_ratio + (1 - cfg.lr_min_ratio) * 0.5 *
                     (1 + math.cos(math.pi * progress)))


# -- one shard of the batch ---------------------------------------------------------------------
class Shard:
    """A slice of the global batch: its data stream, RNG, carry and per-row ACT state."""

    def __init__(self, index: int, rows: int, stream: PuzzleStream, model: EqR, seed: int,
                 device: torch.device):
        H, W = stream.sources[0].shape
        self.stream = stream
        self.gen = torch.Generator(device=device).manual_seed(seed * 1_000_003 + index)
        self.carry = model.initial_carry(rows, H * W, self.gen)
        self.inputs = torch.zeros(rows, H, W, dtype=torch.uint8, device=device)
        self.labels = torch.zeros(rows, H, W, dtype=torch.uint8, device=device)
        self.steps = torch.zeros(rows, dtype=torch.long, device=device)
        self.halted = torch.ones(rows, dtype=torch.bool, device=device)

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state(), "stream": self.stream.state_dict(),
                "z_H": self.carry.z_H, "z_L": self.carry.z_L, "inputs": self.inputs,
                "labels": self.labels, "steps": self.steps, "halted": self.halted}

    def load_state_dict(self, s: dict) -> None:
        self.gen.set_state(s["gen"])
        self.stream.load_state_dict(s["stream"])
        self.carry = type(self.carry)(s["z_H"], s["z_L"])
        self.inputs, self.labels = s["inputs"], s["labels"]
        self.steps, self.halted = s["steps"], s["halted"]


STATS = ("lm_loss", "q_loss", "halted", "exact", "cells", "halt_steps", "q_fired", "rows")


def shard_step(model: EqR, shard: Shard, cfg: TrainConfig, global_batch: int,
               step: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Reset halted rows, run one segment (under bf16 autocast when ``dtype`` is bf16),
    backpropagate this shard's share of the loss. Returns summed statistics (see ``STATS``)."""
    device = shard.inputs.device
    if bool(shard.halted.any()):
        rows = shard.halted
        progress = step / cfg.curriculum_steps if cfg.curriculum_steps else 1.0
        x, y = shard.stream.take(int(rows.sum()), progress)
        shard.inputs[rows] = torch.from_numpy(x).to(device)
        shard.labels[rows] = torch.from_numpy(y).to(device)
        shard.carry = model.reset_rows(shard.carry, rows, shard.gen)
        shard.steps[rows] = 0
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        out = model(shard.carry, shard.inputs, shard.gen)
    shard.carry = out.carry
    B = len(shard.steps)
    logits = out.logits.float()
    labels = shard.labels.view(B, -1).long()
    mask = labels != 0
    with torch.no_grad():
        steps = shard.steps + 1
        halted = steps >= cfg.halt_max_steps
        if cfg.halt_max_steps > 1:  # ACT: halt when confident, but explore longer sometimes
            explore = torch.rand(B, generator=shard.gen, device=device) < cfg.halt_exploration_prob
            lo = torch.randint(2, cfg.halt_max_steps + 1, (B,), generator=shard.gen,
                               device=device)
            min_steps = torch.where(explore, lo, torch.zeros_like(lo))
            halted = (halted | (out.q_halt > 0)) & (steps >= min_steps)
        correct = (logits.argmax(-1) == labels) & mask
        exact = (correct | ~mask).all(-1)
    weight = mask.float()
    if cfg.label_weights:
        weight = weight * torch.tensor(cfg.label_weights, device=device)[labels]
    per_cell = token_loss(logits, labels, cfg.loss) * weight
    lm_loss = (per_cell.sum(-1) / weight.sum(-1).clamp(min=1e-6)).sum()
    q_loss = F.binary_cross_entropy_with_logits(out.q_halt, exact.float(), reduction="sum")
    ((lm_loss + cfg.q_loss_weight * q_loss) / global_batch).backward()
    shard.steps, shard.halted = steps, halted
    with torch.no_grad():
        h = halted.float()
        cells = correct.sum(-1) / mask.sum(-1).clamp(min=1)
        return torch.stack([
            lm_loss.detach(), q_loss.detach(), h.sum(), (exact.float() * h).sum(),
            (cells * h).sum(), (steps.float() * h).sum(),
            (h * (out.q_halt > 0).float() * (steps < cfg.halt_max_steps).float()).sum(),
            torch.tensor(float(B), device=device),
        ]).float()


# -- the run ------------------------------------------------------------------------------------
def read_state(path: Path, device: torch.device | str = "cpu") -> dict:
    """A run's ``state.pt``, loaded without running any pickled code (``weights_only``): a
    truncated, empty, foreign or hostile file is a one-line RecipeError, and nothing in the
    run directory is touched."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, OSError,
            ValueError, AttributeError, ImportError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise RecipeError(f"{path}: not a usable checkpoint ({first}); move it away to "
                          "start over, or restore it from git") from None
    if not isinstance(state, dict) or not {"step", "recipe", "model", "shards"} <= set(state):
        raise RecipeError(f"{path}: not an eqr-solve training checkpoint")
    try:
        if not isinstance(json.loads(state["recipe"]), dict):
            raise ValueError("not a mapping")
    except (TypeError, ValueError) as e:
        raise RecipeError(f"{path}: the checkpoint's recipe is unreadable ({e})") from None
    return state


class Interrupted(Exception):
    """A stop signal arrived during an evaluation: the evaluation is dropped."""


class RunLock:
    """An exclusive lock on a run directory (``train.lock``), so two trainers never write one
    run. It is a kernel file lock: released when the process ends, even by ``kill -9``."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "train.lock"
        self.file = None

    def __enter__(self) -> RunLock:
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "?"
            self.file.close()
            raise ResourceError(f"{self.path.parent} is being trained by another process "
                                f"(pid {holder}); wait for it or stop it first") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"{os.getpid()}\n")
        self.file.flush()
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


class Trainer:
    def __init__(self, recipe: dict, run_dir: Path, device: torch.device, rank: int = 0,
                 world: int = 1):
        self.recipe, self.run_dir, self.device = recipe, run_dir, device
        self.rank, self.world = rank, world
        self.cfg = cfg = train_config(recipe)
        self.kind = recipe["kind"]
        self.board = tuple(recipe["board"]) if recipe.get("board") else None
        if cfg.batch_size % cfg.shards or cfg.shards % world:
            raise RecipeError(f"batch_size ({cfg.batch_size}) must split into shards "
                             f"({cfg.shards}) and shards over {world} processes")
        self.dtype = precision.resolve(cfg.dtype, device)  # "auto" is measured: decide once,
        if world > 1:  # on rank 0, for every rank (a resume reuses the saved choice)
            flag = torch.tensor([int(self.dtype == torch.bfloat16)], device=device)
            dist.broadcast(flag, 0)
            self.dtype = torch.bfloat16 if int(flag) else torch.float32
        torch.manual_seed(cfg.seed)
        self.model = EqR(model_config(recipe)).to(device).train()
        self.ema = copy.deepcopy(self.model).eval()
        if recipe.get("init_from"):  # fine-tune: start from a trained model's weights
            source, info = weights.load(recipe["init_from"])
            if info.config != self.model.cfg:
                raise RecipeError(f"init_from {recipe['init_from']}: its model config differs "
                                 "from this recipe's")
            self.model.load_state_dict(source.state_dict())
            self.ema.load_state_dict(source.state_dict())
        self.compiled = cfg.compile and self.model.compile_blocks()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.opt = make_optimizer(self.model, cfg)
        self.step = 0
        self.train_seconds = 0.0
        self.last_eval_seconds = 0.0  # train_seconds at the last held-out evaluation
        self.sample_segments = 0
        self.best_exact = -1.0  # best held-out exact so far (its weights: best.safetensors)

        sources = [build_source(s, self.kind, run_dir / "data" if rank == 0 else None)
                   for s in recipe["data"]]
        for spec, ds in zip(recipe["data"], sources):
            try:
                assert_no_test_puzzles(ds)
            except ValueError as e:
                cached = run_dir / "data" / f"{spec['name']}.npz"
                hint = (f"; {cached} was built by an older split guard: delete it and resume "
                        "to rebuild it") if "path" not in spec and cached.exists() else ""
                raise RecipeError(f"data {spec['name']!r}: {e}{hint}") from None
        weights_ = [float(s.get("weight", 1.0)) for s in recipe["data"]]
        start = [float(s.get("start_weight", s.get("weight", 1.0))) for s in recipe["data"]]
        self.data_counts = {s["name"]: len(ds) for s, ds in zip(recipe["data"], sources)}
        per_shard = cfg.batch_size // cfg.shards
        mine = range(rank * cfg.shards // world, (rank + 1) * cfg.shards // world)
        self.shards = [Shard(i, per_shard, PuzzleStream(sources, weights_, cfg.seed * 7919 + i,
                                                     start_weights=start),
                             self.model, cfg.seed, device) for i in mine]
        self.eval_set = None
        if "eval" in recipe and rank == 0:
            held_out = build_source(dict(recipe["eval"], name="eval"), self.kind,
                                    run_dir / "data")
            # a held-out puzzle that is also a training puzzle (up to the task's symmetries)
            # is not held out: drop it (small generated boards repeat; so do collections)
            self.eval_set, dropped = drop_seen(held_out, sources)
            if not len(self.eval_set):
                raise RecipeError("every [eval] puzzle is also a training puzzle")
            self.data_counts["eval"] = len(self.eval_set)
            self.data_counts["eval_dropped_as_training"] = dropped

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"step": self.step, "train_seconds": self.train_seconds,
                "last_eval_seconds": self.last_eval_seconds,
                "sample_segments": self.sample_segments, "best_exact": self.best_exact,
                "model": self.model.state_dict(), "ema": self.ema.state_dict(),
                "optimizer": self.opt.state_dict(),
                "shards": [s.state_dict() for s in self.shards],
                "recipe": json.dumps(self.recipe), "dtype": precision.NAMES[self.dtype]}

    def load_state_dict(self, state: dict) -> None:
        self.step = state["step"]
        self.train_seconds = state["train_seconds"]
        # (a checkpoint from before 2026-12-07 has no eval clock: count from the resume)
        self.last_eval_seconds = state.get("last_eval_seconds", self.train_seconds)
        self.sample_segments = state["sample_segments"]
        self.best_exact = state.get("best_exact", -1.0)
        self.dtype = precision.DTYPES.get(state.get("dtype"), self.dtype)  # the run's own choice
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["optimizer"])
        for shard, s in zip(self.shards, state["shards"]):
            shard.load_state_dict(s)

    def gather_shard_states(self) -> list[dict]:
        """All shards' states on rank 0 (so one file resumes on any number of processes)."""
        mine = [s.state_dict() for s in self.shards]
        if self.world == 1:
            return mine
        out: list = [None] * self.world
        dist.all_gather_object(out, [{k: (v.cpu() if torch.is_tensor(v) else v)
                                      for k, v in s.items()} for s in mine])
        return [s for part in out for s in part]

    def save(self, final: bool = False) -> None:
        """Training state (resumable) + EMA weights (solver-ready), both written atomically."""
        shard_states = self.gather_shard_states()
        if self.rank != 0:
            return
        state = self.state_dict()
        state["shards"] = shard_states
        path = self.run_dir / "state.pt"
        tmp = path.with_name("state.pt.tmp")
        with open(tmp, "wb") as out:  # on disk before it replaces the last good one
            torch.save(state, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        weights.save(self.ema, self.run_dir / "model.safetensors", self.kind, self.board,
                     self.provenance(final))

    def provenance(self, final: bool) -> dict:
        return {"recipe": self.recipe.get("recipe_file", self.recipe.get("name")),
                "recipe_config": self.recipe, "step": self.step,
                "sample_segments": self.sample_segments,
                "train_hours": round(self.train_seconds / 3600, 3),
                "data": self.data_counts, "final": final,
                "dtype": precision.NAMES[self.dtype],
                "torch": torch.__version__}

    def restore(self, path: Path) -> None:
        state = read_state(path, self.device)
        shards = state["shards"]
        k = len(self.shards)
        state["shards"] = shards[self.rank * k:(self.rank + 1) * k]
        try:
            self.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise RecipeError(f"{path}: the checkpoint does not fit this run ({first})") from None
        best = self.run_dir / "best.safetensors"  # a run's last eval comes after its last
        if best.exists():  # state save: the best file knows the best held-out result
            exact = weights.read_info(best).meta.get("eval", {}).get("exact", -1.0)
            self.best_exact = max(self.best_exact, exact)

    # -- steps -----------------------------------------------------------------------------
    def train_step(self) -> torch.Tensor:
        self.step += 1
        lr = learning_rate(self.cfg, self.step)
        for group in self.opt.param_groups:
            group["lr"] = lr
        stats = sum(shard_step(self.model, s, self.cfg, self.cfg.batch_size, self.step,
                               self.dtype) for s in self.shards)
        if self.world > 1:
            params = [p for p in self.model.parameters() if p.grad is not None]
            flat = torch.cat([p.grad.reshape(-1) for p in params])
            dist.all_reduce(flat)
            dist.all_reduce(stats)
            offset = 0
            for p in params:
                p.grad.copy_(flat[offset:offset + p.numel()].view_as(p))
                offset += p.numel()
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        decay = min(self.cfg.ema_decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.model.parameters()):
                e.lerp_(p, 1 - decay)
        self.sample_segments += self.cfg.batch_size
        return stats

    def evaluate(self, should_stop=lambda: False) -> dict:
        """Held-out accuracy of the EMA weights at B=1: exact and cell accuracy after
        ``eval_depth`` segments (the reference protocol), and exact accuracy and mean segments
        with learned halting (``--halt act`` with the solver's own min_steps 2 and no
        ``q_accept``: the head's verdict, not the tuned CLI defaults, so that runs stay
        comparable). Raises ``Interrupted`` as soon
        as ``should_stop()`` says so (checked after every segment)."""
        ds = self.eval_set
        t0 = time.perf_counter()
        model = self.ema if self.dtype == torch.float32 else copy.deepcopy(self.ema).to(self.dtype)

        def check(_n: int) -> None:
            if should_stop():
                raise Interrupted

        fixed = solve(model, ds.inputs, SolveConfig(depth=self.cfg.eval_depth, seed=0),
                      progress=check)
        act = solve(model, ds.inputs, SolveConfig(depth=self.cfg.eval_depth, seed=0,
                                                  halt="act"), progress=check)
        exact = np.mean([np.array_equal(r.answer, y) for r, y in zip(fixed, ds.labels)])
        cells = np.mean([(r.answer == y).mean() for r, y in zip(fixed, ds.labels)])
        act_exact = np.mean([np.array_equal(r.answer, y) for r, y in zip(act, ds.labels)])
        return {"exact": round(float(exact), 4), "cells": round(float(cells), 4),
                "act_exact": round(float(act_exact), 4),
                "act_steps": round(float(np.mean([r.steps for r in act])), 2), "n": len(ds),
                "seconds": round(time.perf_counter() - t0, 1)}

    def save_best(self, result: dict) -> None:
        """Keep the EMA weights of the best held-out evaluation so far: a later collapse of
        the run (seen in maze runs) cannot lose them."""
        if self.rank != 0 or result["exact"] <= self.best_exact:
            return
        self.best_exact = result["exact"]
        weights.save(self.ema, self.run_dir / "best.safetensors", self.kind, self.board,
                     dict(self.provenance(final=False), eval=result))


def log_record(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def truncate_metrics(path: Path, step: int) -> None:
    """After a resume, drop log lines from steps the restored checkpoint had not reached, and
    a line torn by a kill during its append."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("step", 0) <= step:
            keep.append(line)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in keep))
    os.replace(tmp, path)


def setup_distributed() -> tuple[int, int, torch.device | None]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, None
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    rank = dist.get_rank()
    device = None
    if backend == "nccl":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    return rank, world, device


# what a --set may change when a run resumes (anything else would silently not apply)
RESUMABLE_KEYS = ("max_steps", "max_minutes", "log_every_seconds", "checkpoint_every_minutes",
                  "eval_every_minutes")


def prepare(kind: str, name: str, overrides: list[str], run_dir: Path | None = None,
            resume: bool = False) -> tuple[dict, Path]:
    """The recipe ``name`` with ``overrides`` and its run directory (``run_dir``, else
    runs/NAME), checked before any work: it trains a ``kind`` model, its config is valid, and
    (resuming a run) every override is one that still applies (``RESUMABLE_KEYS``). Raises
    RecipeError with one line."""
    try:
        recipe = apply_overrides(load_recipe(name), overrides)
        if recipe.get("kind") != kind:
            raise RecipeError(f"recipe {name} trains a {recipe.get('kind')} model, not {kind}")
        config_summary(recipe)
    except (FileNotFoundError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise RecipeError(f"bad recipe: {e}") from None
    run_dir = run_dir or Path("runs") / recipe["name"]
    if not (resume and (run_dir / "state.pt").exists()):
        return recipe, run_dir
    # the run continues with its own recipe: the recipe file is not read again, and only the
    # how-long/how-often settings given with --set change (a --set that repeats the run's own
    # value changes nothing and is accepted)
    saved = json.loads(read_state(run_dir / "state.pt")["recipe"])
    if saved.get("kind") != kind:
        raise RecipeError(f"{run_dir} holds a {saved.get('kind')} run, not a {kind} run")
    resumable = {f"train.{k}" for k in RESUMABLE_KEYS}
    fixed = [item.partition("=")[0].strip() for item in overrides
             if item.partition("=")[0].strip() not in resumable
             and apply_overrides(saved, [item]) != saved]
    if fixed:
        raise RecipeError(f"--resume continues the run with its own recipe; --set {fixed[0]} "
                          "would not apply (only train.max_steps, max_minutes and the log/"
                          "checkpoint/eval intervals may change): start a new run, e.g. with "
                          "init_from")
    resumed = apply_overrides(saved, overrides)
    train, before = resumed.setdefault("train", {}), saved.get("train", {})
    if train.get("max_steps", 0) != before.get("max_steps", 0) and \
            train.get("lr_min_ratio", 1.0) < 1.0 and not train.get("decay_steps"):
        train["decay_steps"] = before.get("max_steps", 0)  # an LR cosine keeps its length
    return resumed, run_dir


def run(recipe: dict, run_dir: Path, resume: bool = False, device: str = "auto",
        report=None) -> Trainer:
    """Train (or resume) until max_steps / max_minutes / SIGTERM / Ctrl-C, checkpointing.

    ``report(kind, record)`` receives "log", "eval" and "info" records for display.
    """
    rank, world, dist_device = setup_distributed()
    if dist_device is not None:
        dev = dist_device
    elif device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(device)
    report = report or (lambda kind, rec: None)
    state_path = run_dir / "state.pt"
    if state_path.exists() and not resume:
        raise RecipeError(f"{run_dir} already holds a run; pass --resume to continue it "
                          "or --out to start elsewhere")
    check_init_from(recipe)
    run_dir.mkdir(parents=True, exist_ok=True)
    if rank != 0:
        return _run(recipe, run_dir, resume, dev, report, rank, world)
    with RunLock(run_dir):
        return _run(recipe, run_dir, resume, dev, report, rank, world)


def check_init_from(recipe: dict) -> None:
    """An ``init_from`` model that cannot be used fails before the run directory is made."""
    if not recipe.get("init_from"):
        return
    try:
        info = weights.read_info(weights.resolve(recipe["init_from"]))
    except WeightsError as e:
        raise RecipeError(f"init_from: {e}") from None
    if info.config != model_config(recipe):
        raise RecipeError(f"init_from {recipe['init_from']}: its model config differs from "
                          "this recipe's")


def _run(recipe: dict, run_dir: Path, resume: bool, dev: torch.device, report, rank: int,
         world: int) -> Trainer:
    state_path = run_dir / "state.pt"
    if resume and state_path.exists():
        saved = json.loads(read_state(state_path)["recipe"])
        # the run continues with its own recipe; only how-long/how-often settings may change
        for key in RESUMABLE_KEYS:
            if key in recipe.get("train", {}):
                saved.setdefault("train", {})[key] = recipe["train"][key]
        recipe = saved
    elif resume:
        report("info", {"message": f"no checkpoint in {run_dir}; starting a new run"})
    trainer = Trainer(recipe, run_dir, dev, rank, world)
    cfg = trainer.cfg
    metrics = run_dir / "metrics.jsonl"
    if resume and state_path.exists():
        trainer.restore(state_path)
        if rank == 0:
            truncate_metrics(metrics, trainer.step)
        report("info", {"message": f"resumed at step {trainer.step}"})
    if rank == 0:
        (run_dir / "recipe.json").write_text(json.dumps(recipe, indent=2) + "\n")

    stop = {"signal": None}

    def on_signal(signum, _frame):
        stop["signal"] = signum

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    start = time.perf_counter()
    last_log = last_ckpt = start
    eval_every = cfg.eval_every_minutes * 60  # of training time, counted across resumes: a run
    # stopped and resumed more often than this is still evaluated
    acc = torch.zeros(len(STATS))
    acc_steps, acc_t0 = 0, start
    try:
        while not (cfg.max_steps and trainer.step >= cfg.max_steps):
            t_step = time.perf_counter()
            acc += trainer.train_step().cpu()
            acc_steps += 1
            now = time.perf_counter()
            trainer.train_seconds += now - t_step
            # rank 0 decides what happens after this step, so that every rank agrees
            stop_now = bool(stop["signal"]) or bool(
                cfg.max_minutes and (now - start) / 60 >= cfg.max_minutes)
            flags = torch.tensor([
                now - last_log >= cfg.log_every_seconds or stop_now,
                now - last_ckpt >= cfg.checkpoint_every_minutes * 60,
                trainer.eval_set is not None
                and trainer.train_seconds - trainer.last_eval_seconds >= eval_every,
                stop_now,
            ], dtype=torch.int32)
            if world > 1:
                dist.broadcast(flags, 0)
            log_due, ckpt_due, eval_due, stop_now = flags.tolist()
            if log_due:
                record = summarize(acc, acc_steps, now - acc_t0, trainer)
                if rank == 0:
                    log_record(metrics, record)
                report("log", record)
                acc.zero_()
                acc_steps, acc_t0, last_log = 0, now, now
            if stop_now:
                break
            if ckpt_due:
                trainer.save()
                last_ckpt = time.perf_counter()
            if eval_due and rank == 0:
                eval_record(trainer, metrics, report, lambda: bool(stop["signal"]))
                trainer.last_eval_seconds = trainer.train_seconds
        trainer.save(final=bool(cfg.max_steps and trainer.step >= cfg.max_steps))
        if trainer.eval_set is not None and not stop["signal"] and rank == 0:
            eval_record(trainer, metrics, report, lambda: bool(stop["signal"]))
        if stop["signal"]:
            report("info", {"message": f"stopped at step {trainer.step}; checkpoint saved, "
                                       "continue with --resume"})
        if world > 1:  # no rank tears the group down while another still uses it (a gloo
            dist.barrier()  # rank exiting early aborted with "terminate called" in CI)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if world > 1:
            dist.destroy_process_group()
    return trainer


def eval_record(trainer: Trainer, metrics: Path, report, should_stop=lambda: False) -> None:
    """Evaluate, keep the best weights and log; a stop signal drops the evaluation (the
    state it would describe is saved before or right after it, so nothing is lost)."""
    try:
        result = trainer.evaluate(should_stop)
    except Interrupted:
        report("info", {"message": f"evaluation at step {trainer.step} dropped: stopping"})
        return
    record = {"step": trainer.step, "sample_segments": trainer.sample_segments,
              "train_hours": round(trainer.train_seconds / 3600, 3), "eval": result}
    trainer.save_best(record["eval"])
    log_record(metrics, record)
    report("eval", record)


def summarize(acc: torch.Tensor, n_steps: int, seconds: float, trainer: Trainer) -> dict:
    s = dict(zip(STATS, acc.tolist()))
    halted = max(1.0, s["halted"])
    rows = max(1.0, s["rows"])
    return {
        "step": trainer.step,
        "sample_segments": trainer.sample_segments,
        "train_hours": round(trainer.train_seconds / 3600, 4),
        "lr": learning_rate(trainer.cfg, trainer.step),
        "lm_loss": round(s["lm_loss"] / rows, 4),
        "q_loss": round(s["q_loss"] / rows, 4),
        "train_exact": round(s["exact"] / halted, 4),
        "train_cells": round(s["cells"] / halted, 4),
        "halt_steps": round(s["halt_steps"] / halted, 2),
        "q_fired": round(s["q_fired"] / halted, 3),
        "samples_per_s": round(s["rows"] / max(seconds, 1e-9), 1),
    }


def config_summary(recipe: dict) -> dict:
    return {"model": asdict(model_config(recipe)), "train": asdict(train_config(recipe))}


if __name__ == "__main__":  # the old form, before `python -m eqr_solve train`
    import sys

    sys.stderr.write("error: run training as `eqr-solve train ...` or `torchrun "
                     "--nproc-per-node N -m eqr_solve train ...` (not -m eqr_solve.train)\n")
    sys.exit(2)
