"""The inference engine: many random restarts per puzzle, run for up to ``depth`` segments,
halted adaptively, and one answer chosen per puzzle without a verifier (by default).

Trajectories are batched across puzzles x restarts with *continuous batching*: a working
batch of at most ``max_rows`` trajectories; a trajectory that halts leaves the batch at once
and a pending one takes its place, so halting saves real compute and memory stays bounded
however large the breadth. The engine knows nothing about terminals or files.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from math import inf
from numbers import Integral, Real

import numpy as np
import torch

from eqr_solve.errors import InputError
from eqr_solve.model import EqR, swiglu_width

HALT_MODES = ("none", "act", "residual")
SELECT_RULES = ("residual", "vote", "q", "verify")
MAX_DEPTH, MAX_BREADTH, MAX_SEED = 1_000_000, 100_000, 2**63 - 1  # sane bounds of the options
CPU_ROWS = 64  # trajectories in flight on CPU: bigger batches gain nothing (the model runs them in
# row chunks, see model.CPU_CHUNK_BYTES) and only hold more memory


@dataclass
class SolveConfig:
    depth: int = 16  # segments per trajectory at most (D)
    breadth: int = 1  # independent random restarts per puzzle (B)
    halt: str = "none"  # "none" (all D segments), "act" (q_halt > 0), "residual" (< tol)
    min_steps: int = 2  # no halting before this many segments
    tol: float = 0.05  # residual threshold for halt="residual"
    select: str = "residual"  # how to pick one restart per puzzle
    q_accept: float = 0.0  # under select="q", the halting logit an answer must exceed to be
    # accepted (see `accepts`); a model may carry a measured one (weights.model_setting)
    window: int = 3  # residual score = mean logit change over the last `window` segments
    noise: float | None = None  # override the model's β at inference
    retries: int = 0  # more restarts for a puzzle none of whose restarts halted early
    race: bool = False  # a puzzle stops at its first restart that settles (see `accepts`):
    # the others are cut (or never start) and the answer is chosen among the settled ones
    budget: int = 0  # NFE per puzzle: past the retries, a still-unsettled puzzle escalates
    # (depth x4, breadth x2 per stage) while its worst-case NFE stays within this; 0 = never
    seed: int = 0
    max_rows: int | None = None  # trajectories in flight; None = from a memory budget
    memory_gib: float = 2.0
    record_depths: Sequence[int] = ()  # also snapshot every trajectory at these depths
    fp32_latents: bool = False  # keep z_H, z_L in fp32 under a bf16 model (measured: not
    # needed, docs/performance.md "bf16 accuracy")
    keep_frames: bool = False  # keep every trajectory's answer after every segment (for
    # watching one puzzle being solved: Result.frames)

    def __post_init__(self):
        """Refuse settings that cannot run (InputError, a ValueError: one line for the user)."""
        if self.halt not in HALT_MODES:
            raise InputError(f"halt must be one of {', '.join(HALT_MODES)}")
        if self.select not in SELECT_RULES:
            raise InputError(f"select must be one of {', '.join(SELECT_RULES)}")
        for name, value, lo, hi in (
                ("depth", self.depth, 1, MAX_DEPTH), ("breadth", self.breadth, 1, MAX_BREADTH),
                ("retries", self.retries, 0, MAX_BREADTH), ("min_steps", self.min_steps, 0, None),
                ("budget", self.budget, 0, MAX_DEPTH * MAX_BREADTH),
                ("seed", self.seed, 0, MAX_SEED), ("window", self.window, 1, None)):
            if not (isinstance(value, Integral) and lo <= value and (hi is None or value <= hi)):
                limit = f"between {lo:,} and {hi:,}" if hi is not None else f"at least {lo}"
                raise InputError(f"{name} must be an integer {limit}, not {value!r}")
        if not (isinstance(self.tol, Real) and self.tol >= 0):
            raise InputError(f"tol must be a number >= 0, not {self.tol!r}")
        if not (isinstance(self.q_accept, Real) and -inf < self.q_accept < inf):
            raise InputError(f"q_accept must be a finite number, not {self.q_accept!r}")
        if self.noise is not None and not (isinstance(self.noise, Real) and 0 <= self.noise < inf):
            raise InputError(f"noise must be a finite number >= 0, not {self.noise!r}")


@dataclass
class Snapshot:
    """Every trajectory's state at one depth (rows are puzzle-major: puzzle*B + restart)."""

    answers: np.ndarray  # [R, H, W] tokens
    scores: np.ndarray  # [R] residual score (mean over the last `window` segments)
    q: np.ndarray  # [R] last halting logit
    steps: np.ndarray  # [R] segments actually run (< depth when halted early)


@dataclass
class Result:
    answer: np.ndarray  # [H, W] tokens of the chosen restart
    valid: bool | None  # by the task's checker (None when no checker was given)
    steps: int  # segments run by the chosen restart
    nfe: int  # segments run over all restarts of this puzzle (NFE)
    restart: int  # index of the chosen restart
    residuals: list[float]  # chosen restart's logit residual per segment (from segment 2)
    q: list[float]  # chosen restart's halting logit per segment
    seconds: float  # wall time attributed to this puzzle (its share of the batch time)
    stages: int = 1  # attempts run for this puzzle (1 = settled at the first; see `stages`)
    rejected: bool = False  # the halting head rejected every restart's answer, and the task's
    # "no answer" was given instead (``solve(no_answer=...)``)
    depth: int = 0  # the depth allowed to the chosen restart (its attempt's)
    restart_steps: np.ndarray = field(repr=False, default=None)  # [B]
    restart_scores: np.ndarray = field(repr=False, default=None)  # [B]
    frames: list[np.ndarray] | None = field(repr=False, default=None)  # the chosen restart's
    # answer after each segment (SolveConfig.keep_frames)


def bytes_per_row(model: EqR, seq_len: int) -> int:
    """Rough activation memory of one trajectory during a segment (fp32 bytes per value:
    an upper bound in bf16). The MLP width is the model's own (``swiglu_width``)."""
    cfg = model.cfg
    inter = swiglu_width(cfg.hidden_size, cfg.expansion)
    per_row = seq_len * (8 * cfg.hidden_size + 3 * inter + 2 * cfg.vocab_size) * 4
    if cfg.mixer == "attn":
        per_row += 2 * cfg.num_heads * seq_len * seq_len * 4
    return per_row


def residual_score(residuals: np.ndarray, steps: np.ndarray, window: int) -> np.ndarray:
    """Mean of each row's last ``window`` residuals (rows shorter than 2 steps score +inf)."""
    out = np.full(len(steps), np.inf, dtype=np.float64)
    for r, s in enumerate(steps):
        if s >= 2:
            out[r] = residuals[r, max(1, s - window) : s].mean()
    return out


def accepts(cfg: SolveConfig, halted_early: torch.Tensor, q_halt: torch.Tensor) -> torch.Tensor:
    """Which trajectories *settled*: stopped by the halting rule before the depth and, under
    ``select='q'``, with an answer the halting head accepts (q > ``cfg.q_accept``). Only a
    settled restart ends a race or spares a puzzle its retries: on unseen 30x30 mazes the
    head rates the wrong paths a restart settles on below the right ones (docs/models.md,
    maze card)."""
    if cfg.select == "q":
        return halted_early & (q_halt > cfg.q_accept)
    return halted_early


def auto_select(halt: str) -> str:
    """The selection rule measured best for a halting mode (docs/models.md, "Choosing the
    defaults"): under ACT, restarts stop at different depths, so their residuals are not
    comparable and the halting head's confidence q wins; otherwise the smallest residual."""
    return "q" if halt == "act" else "residual"


def select_restart(
    rule: str,
    answers: np.ndarray,
    scores: np.ndarray,
    q: np.ndarray,
    is_valid: Callable[[np.ndarray], bool] | None = None,
) -> int:
    """Pick one of B restarts of a single puzzle (arrays indexed by restart)."""
    if rule == "residual":
        return int(np.argmin(scores))  # first minimum wins ties
    if rule == "q":
        return int(np.argmax(q))
    if rule == "vote":
        keys = [a.tobytes() for a in answers]
        counts = Counter(keys)
        best = max(counts.values())
        return next(i for i, k in enumerate(keys) if counts[k] == best)
    if rule == "verify":
        if is_valid is None:
            raise ValueError("select='verify' needs a checker")
        for i, a in enumerate(answers):
            if is_valid(a):
                return i
        return int(np.argmin(scores))
    raise ValueError(f"unknown selection rule {rule!r}")


class _Run:
    """Per-trajectory bookkeeping for one call of :func:`solve`. The per-segment traces
    (``residuals``, ``q``: [rows, segments]) grow with the segments actually run, so a large
    ``depth`` that halting cuts short costs no memory."""

    def __init__(self, n_rows: int, shape: tuple[int, int], cfg: SolveConfig):
        H, W = shape
        self.depth = cfg.depth
        self.answers = np.zeros((n_rows, H, W), dtype=np.uint8)
        self.residuals = np.full((n_rows, min(cfg.depth, 64)), np.nan, dtype=np.float32)
        self.q = np.full_like(self.residuals, np.nan)
        self.steps = np.zeros(n_rows, dtype=np.int64)
        self.settled = np.zeros(n_rows, dtype=bool)  # see `accepts`
        self.window = cfg.window
        self.frames = [[] for _ in range(n_rows)] if cfg.keep_frames else None
        self.snapshots = {d: None for d in cfg.record_depths}
        self._snap = {
            d: (np.zeros((n_rows, H, W), np.uint8), np.zeros(n_rows), np.zeros(n_rows),
                np.zeros(n_rows, np.int64))
            for d in cfg.record_depths
        }

    def record(self, rows: np.ndarray, preds: np.ndarray, residual: np.ndarray, q: np.ndarray,
               steps: np.ndarray, halted: np.ndarray, settled: np.ndarray) -> None:
        """Store one segment's outputs for ``rows``; fill snapshots at their own depth."""
        width = self.residuals.shape[1]
        if len(steps) and steps.max() > width:  # double the traces (NaN = not run)
            grow = ((0, 0), (0, min(width, self.depth - width)))
            self.residuals = np.pad(self.residuals, grow, constant_values=np.nan)
            self.q = np.pad(self.q, grow, constant_values=np.nan)
        self.answers[rows] = preds
        self.residuals[rows, steps - 1] = residual
        self.q[rows, steps - 1] = q
        self.steps[rows] = steps
        self.settled[rows] = settled
        if self.frames is not None:
            for r, answer in zip(rows, preds):
                self.frames[r].append(answer)
        for d, (answers, scores, qs, st) in self._snap.items():
            # a row enters snapshot d when it reaches step d, or halts earlier
            hit = (steps == d) | (halted & (steps < d))
            if hit.any():
                r = rows[hit]
                answers[r] = preds[hit]
                scores[r] = residual_score(self.residuals[r], steps[hit], self.window)
                qs[r] = q[hit]
                st[r] = steps[hit]

    def snapshots_out(self) -> dict[int, Snapshot]:
        return {d: Snapshot(*v) for d, v in self._snap.items()}


@torch.inference_mode()
def run_trajectories(
    model: EqR, grids: np.ndarray, cfg: SolveConfig, progress: Callable[[int], None] | None = None,
    on_puzzle: Callable[[int, _Run], None] | None = None,
) -> tuple[_Run, float]:
    """Run ``breadth`` trajectories for each grid in ``grids [P, H, W]``; returns the records.

    ``progress(n)`` is called with the number of trajectories that finished after each segment;
    ``on_puzzle(p, run)`` as soon as every restart of grid ``p`` has finished (or, in a race,
    will never start), so a caller can use its answer before the others are done.
    """
    P, H, W = grids.shape
    L, B = H * W, cfg.breadth
    device = next(model.parameters()).device
    n_rows = P * B
    max_rows = cfg.max_rows or max(1, int(cfg.memory_gib * 2**30 // bytes_per_row(model, L)))
    if cfg.max_rows is None and device.type == "cpu":
        max_rows = min(max_rows, CPU_ROWS)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    inputs_all = torch.as_tensor(grids, device=device)
    run = _Run(n_rows, (H, W), cfg)
    done = np.zeros(P, dtype=bool)  # race: puzzles one of whose restarts has settled
    left = np.full(P, B)  # restarts of each puzzle not yet finished

    def finished(puzzles: np.ndarray) -> None:
        np.subtract.at(left, puzzles, 1)
        if on_puzzle is not None:
            for p in np.unique(puzzles[left[puzzles] == 0]):
                on_puzzle(int(p), run)
    latent_dtype = torch.float32 if cfg.fp32_latents else next(model.parameters()).dtype

    next_row = 0
    rows = torch.empty(0, dtype=torch.long, device=device)  # trajectory ids in the batch
    carry = model.initial_carry(0, L, generator, latent_dtype)
    prev_logits = torch.empty(0, L, model.cfg.vocab_size, device=device)
    steps = torch.empty(0, dtype=torch.long, device=device)
    start = time.perf_counter()
    while next_row < n_rows or len(rows):
        while next_row < n_rows and done[next_row // B]:  # race: a finished puzzle's
            next_row += 1  # pending restarts never start
            finished(np.array([(next_row - 1) // B]))
            if progress is not None:
                progress(1)
        if next_row < n_rows and len(rows) < max_rows:  # top the batch up
            k = min(max_rows - len(rows), n_rows - next_row)
            new = torch.arange(next_row, next_row + k, device=device)
            next_row += k
            fresh = model.initial_carry(k, L, generator, latent_dtype)
            carry = type(carry)(
                torch.cat([carry.z_H, fresh.z_H]), torch.cat([carry.z_L, fresh.z_L])
            )
            rows = torch.cat([rows, new])
            steps = torch.cat([steps, torch.zeros(k, dtype=torch.long, device=device)])
            prev_logits = torch.cat(
                [prev_logits, torch.full((k, L, model.cfg.vocab_size), torch.nan,
                                         device=device)]
            )
        out = model(carry, inputs_all[rows // B], generator, cfg.noise)
        logits = out.logits.float()
        steps = steps + 1
        residual = (logits - prev_logits).norm(dim=-1).mean(dim=-1)  # NaN at step 1
        halted = steps >= cfg.depth
        settled = torch.zeros_like(halted)
        if cfg.halt != "none":
            ready = steps >= cfg.min_steps
            if cfg.halt == "act":
                halted |= ready & (out.q_halt > 0)
            else:
                halted |= ready & (residual < cfg.tol)
            settled = accepts(cfg, halted & (steps < cfg.depth), out.q_halt)
            if cfg.race:  # a restart settled: its puzzle is done, the rest are cut
                puzzle = (rows // B).cpu().numpy()
                done[puzzle[settled.cpu().numpy()]] = True
                halted |= torch.as_tensor(done[puzzle], device=device)
        preds = logits.argmax(-1).view(-1, H, W)
        run.record(
            rows.cpu().numpy(), preds.to(torch.uint8).cpu().numpy(),
            residual.cpu().numpy(), out.q_halt.float().cpu().numpy(),
            steps.cpu().numpy(), halted.cpu().numpy(), settled.cpu().numpy(),
        )
        keep = ~halted
        finished((rows[halted] // B).cpu().numpy())
        if progress is not None:
            progress(int(halted.sum()))
        rows, steps, carry = rows[keep], steps[keep], out.carry[keep]
        prev_logits = logits[keep]
    return run, time.perf_counter() - start


@dataclass
class _Restarts:
    """One puzzle's restarts, gathered from one or more runs (indexed by restart)."""

    answers: np.ndarray  # [n, H, W]
    scores: np.ndarray  # [n] residual score
    q_last: np.ndarray  # [n] last halting logit
    steps: np.ndarray  # [n]
    residuals: np.ndarray  # [n, depth]
    q: np.ndarray  # [n, depth]
    depths: np.ndarray  # [n] the depth each restart was allowed (its attempt's)
    settled: np.ndarray  # [n] bool, see `accepts`
    frames: list | None  # [n] lists of per-segment answers (keep_frames), else None

    @classmethod
    def of(cls, run: _Run, rows: slice) -> _Restarts:
        """The restarts of ``rows`` that ran (under ``race`` some never start)."""
        ran = np.arange(rows.start, rows.stop)[run.steps[rows] > 0]
        steps = run.steps[ran]
        q_last = run.q[ran, np.maximum(steps - 1, 0)]
        return cls(run.answers[ran], residual_score(run.residuals[ran], steps, run.window),
                   q_last, steps, run.residuals[ran], run.q[ran],
                   np.full(len(steps), run.depth), run.settled[ran],
                   None if run.frames is None else [run.frames[r] for r in ran])

    def __add__(self, other: _Restarts) -> _Restarts:
        """Both pools' restarts; per-segment traces are NaN-padded to the deeper one."""
        width = max(self.residuals.shape[1], other.residuals.shape[1])

        def join(name: str, a, b):
            if name == "frames":
                return None if a is None else a + b
            if name in ("residuals", "q"):
                a, b = (np.pad(x, ((0, 0), (0, width - x.shape[1])), constant_values=np.nan)
                        for x in (a, b))
            return np.concatenate([a, b])

        return _Restarts(*(join(name, a, b)
                           for (name, a), b in zip(vars(self).items(), vars(other).values())))


def stages(cfg: SolveConfig) -> list[tuple[int, int]]:
    """(depth, breadth) of each attempt a puzzle may get: the first, then ``retries`` more
    restarts at the same depth, then -- within ``budget`` NFE per puzzle, counted at the worst
    case (every restart runs its whole depth) -- 4x deeper and 2x broader per stage. A puzzle
    goes on to the next attempt only while none of its restarts has settled."""
    plan = [(cfg.depth, cfg.breadth)]
    if cfg.retries:
        plan.append((cfg.depth, cfg.retries))
    depth, breadth = cfg.depth, max(cfg.breadth, cfg.retries)
    spent = sum(d * b for d, b in plan)
    while cfg.budget:
        depth, breadth = depth * 4, breadth * 2
        if spent + depth * breadth > cfg.budget or depth > MAX_DEPTH or breadth > MAX_BREADTH:
            break
        plan.append((depth, breadth))
        spent += depth * breadth
    return plan


def solve(
    model: EqR,
    grids: np.ndarray | Sequence[np.ndarray],
    cfg: SolveConfig | None = None,
    check: Callable[[np.ndarray, np.ndarray], bool] | None = None,
    progress: Callable[[int], None] | None = None,
    on_retry: Callable[[int], None] | None = None,
    no_answer: Callable[[np.ndarray], np.ndarray] | None = None,
    on_result: Callable[[int, Result], None] | None = None,
) -> list[Result]:
    """Solve every puzzle (token grids of one shape) and pick one restart per puzzle.

    ``check(puzzle, answer)`` is the task's checker: it fills ``Result.valid`` and is the
    verifier used by ``select='verify'`` (never by the other rules). A puzzle none of whose
    restarts settled (``accepts``: no restart converged on an accepted answer) gets the
    next attempt of ``stages(cfg)`` (more restarts, then deeper and broader ones within
    ``cfg.budget``), and the choice is made among all of its restarts: compute is spent only
    where the earlier attempts found no attractor. ``on_retry(n)`` is told how many
    trajectories an attempt adds, before they run. ``on_result(p, result)`` gets each
    puzzle's result as soon as it is final (a long run can be followed puzzle by puzzle; the
    order is that of finishing, not of ``grids``).

    ``no_answer(puzzle)`` is the task's answer for a puzzle without one (mazes: no path).
    Under ``select='q'`` it replaces the chosen answer when even the highest halting logit is
    <= ``cfg.q_accept``: the model's own halting head rejects every answer it found, which
    on mazes without a path is nearly always, and on mazes with one (whose right paths it
    accepts) almost never (docs/models.md, maze card). No verifier is involved.
    """
    cfg = cfg or SolveConfig()
    grids = np.stack(list(grids)) if not isinstance(grids, np.ndarray) else grids
    if grids.ndim != 3:
        raise ValueError("grids must be [P, H, W]")
    P = len(grids)
    plan = stages(cfg) if cfg.halt != "none" else stages(cfg)[:1]  # nothing ever "settles"
    pools: list[_Restarts | None] = [None] * P
    results: list[Result | None] = [None] * P
    todo, seconds, total_steps = list(range(P)), 0.0, 0
    for k, (depth, breadth) in enumerate(plan):
        if k and on_retry is not None:
            on_retry(len(todo) * breadth)
        stage = replace(cfg, depth=depth, breadth=breadth, seed=(cfg.seed + k) % (MAX_SEED + 1),
                        record_depths=cfg.record_depths if k == 0 else ())
        clock = (time.perf_counter(), seconds, total_steps)  # this attempt's start

        def finished(i: int, run: _Run, k=k, breadth=breadth, todo=todo, clock=clock) -> None:
            """Puzzle ``todo[i]``'s restarts of attempt k are done: add them to its pool, and
            answer it now unless it goes on to the next attempt."""
            p, rows = todo[i], slice(i * breadth, (i + 1) * breadth)
            more = _Restarts.of(run, rows)
            pools[p] = more if pools[p] is None else pools[p] + more
            if k == len(plan) - 1 or run.settled[rows].any():
                start, secs_before, steps_before = clock
                spent = secs_before + time.perf_counter() - start
                results[p] = _result(pools[p], grids[p], cfg, k + 1, check, no_answer,
                                     spent / max(1, steps_before + int(run.steps.sum())))
                if on_result is not None:
                    on_result(p, results[p])

        run, secs = run_trajectories(model, grids[todo], stage, progress, finished)
        seconds, total_steps = seconds + secs, total_steps + int(run.steps.sum())
        todo = [p for p in todo if results[p] is None]
        if not todo:
            break
    return results


def _result(r: _Restarts, puzzle: np.ndarray, cfg: SolveConfig, stages_used: int,
            check: Callable[[np.ndarray, np.ndarray], bool] | None,
            no_answer: Callable[[np.ndarray], np.ndarray] | None,
            seconds_per_step: float) -> Result:
    """One puzzle's answer: the restart its selection rule picks among all of its restarts."""

    def is_valid(answer):
        return bool(check(puzzle, answer))

    # a race answers with a restart that settled (the others were cut short)
    pick = np.flatnonzero(r.settled) if cfg.race and r.settled.any() else \
        np.arange(len(r.steps))
    choice = int(pick[select_restart(
        cfg.select, r.answers[pick], r.scores[pick], r.q_last[pick],
        is_valid if check is not None else None,
    )])
    s = int(r.steps[choice])
    nfe = int(r.steps.sum())
    rejected = no_answer is not None and cfg.select == "q" and r.q_last[choice] <= cfg.q_accept
    answer = no_answer(puzzle) if rejected else r.answers[choice].copy()
    return Result(
        answer=answer,
        valid=None if check is None else bool(check(puzzle, answer)),
        steps=s,
        nfe=nfe,
        restart=choice,
        residuals=[float(x) for x in r.residuals[choice, 1:s]],
        q=[float(x) for x in r.q[choice, :s]],
        seconds=seconds_per_step * nfe,
        restart_steps=r.steps.copy(),
        restart_scores=r.scores.copy(),
        stages=stages_used,
        rejected=bool(rejected),
        depth=int(r.depths[choice]),
        frames=None if r.frames is None else r.frames[choice],
    )
