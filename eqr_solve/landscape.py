"""Attractor landscape of one puzzle: many random initialisations, grouped by where they end.

An *attractor* is a distinct decoded answer at the final depth. For each one we report its
basin share (fraction of inits that end there), whether it is a valid solution, its mean final
residual, whether its trajectories still move (latent step at the end), and how many segments
the inits took to enter it for good. The puzzle is then classified into the paper's four modes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from eqr_solve.errors import ResourceError
from eqr_solve.model import EqR
from eqr_solve.tasks import get_task

MODES = {
    "a": "no correct attractor",
    "b": "correct and wrong attractors compete",
    "c": "correct attractor with a narrow or unstable basin",
    "d": "broad, stable correct basin",
}


@dataclass
class Attractor:
    answer: np.ndarray = field(repr=False)
    inits: int
    share: float
    valid: bool
    mean_residual: float
    moving_share: float  # fraction of its inits whose latents still move at the end
    entry_step: float  # mean segment from which the decoded answer no longer changed

    @property
    def stable(self) -> bool:
        return self.moving_share < 0.5


@dataclass
class Landscape:
    attractors: list[Attractor]
    mode: str
    reason: str
    depth: int
    inits: int
    final: np.ndarray = field(repr=False)  # [inits] attractor index of each init
    residuals: np.ndarray = field(repr=False)  # [inits, depth] logit residual per segment
    projection: np.ndarray | None = field(repr=False, default=None)  # [inits, T, 2] PCA

    def to_json(self) -> dict:
        return {
            "mode": self.mode, "mode_name": MODES[self.mode], "reason": self.reason,
            "depth": self.depth, "inits": self.inits,
            "attractors": [{k: v for k, v in asdict(a).items() if k != "answer"}
                           for a in self.attractors],
            "final_attractor": self.final.tolist(),
            "residuals": np.round(self.residuals, 6).tolist(),
        }


def classify(attractors: list[Attractor], broad: float = 0.9,
             rival: float = 0.1) -> tuple[str, str]:
    """The paper's four modes from basin shares and stability (thresholds are parameters)."""
    correct = [a for a in attractors if a.valid]
    share = sum(a.share for a in correct)
    stable_wrong = sum(a.share for a in attractors if not a.valid and a.stable)
    if not correct:
        return "a", f"no init reaches a valid answer ({len(attractors)} attractors)"
    stable_correct = all(a.stable for a in correct)
    if stable_wrong >= rival:
        return "b", (f"correct basin {share:.0%} vs stable wrong basins {stable_wrong:.0%}")
    if share >= broad and stable_correct:
        return "d", f"{share:.0%} of inits end in the correct attractor and stay there"
    why = "narrow" if share < broad else "unstable"
    return "c", (f"correct basin {share:.0%} ({why}); the rest wander "
                 f"(stable wrong basins {stable_wrong:.0%})")


MAX_TRACE_BYTES = 2**31  # the decoded answers of every init at every segment are kept


def check_size(shape: tuple[int, int], inits: int, depth: int) -> None:
    """Refuse (ResourceError) a landscape whose per-segment answers would not fit in memory."""
    need = shape[0] * shape[1] * inits * depth
    if need > MAX_TRACE_BYTES:
        raise ResourceError(f"{inits} inits x {depth} segments of a {shape[0]}x{shape[1]} "
                            f"board keep {need / 2**30:.1f} GiB of answers (the limit is "
                            f"{MAX_TRACE_BYTES / 2**30:g} GiB): use fewer --inits or --depth")


@torch.inference_mode()
def explore(model: EqR, kind: str, puzzle: np.ndarray, inits: int = 256, depth: int = 256,
            seed: int = 0, move_tol: float = 0.05, project: bool = True,
            max_points: int = 64) -> Landscape:
    """Run ``inits`` trajectories for ``depth`` segments on one puzzle and group them.

    An init "still moves" when its last latent step is above ``move_tol`` relative to the
    latent's norm (the injected noise alone moves it by about 1%)."""
    task = get_task(kind)
    check_size(puzzle.shape, inits, depth)
    device = next(model.parameters()).device
    H, W = puzzle.shape
    L = H * W
    gen = torch.Generator(device=device).manual_seed(seed)
    x = torch.as_tensor(puzzle, device=device)[None].expand(inits, H, W)
    carry = model.initial_carry(inits, L, gen, next(model.parameters()).dtype)
    preds = np.zeros((depth, inits, L), np.uint8)
    residuals = np.full((inits, depth), np.nan, np.float32)
    last_move = np.zeros(inits, np.float32)
    keep = np.unique(np.linspace(0, depth - 1, min(depth, max_points)).round().astype(int))
    points = []
    prev = None
    for t in range(depth):
        out = model(carry, x, gen)
        logits = out.logits.float()
        if prev is not None:
            residuals[:, t] = (logits - prev).norm(dim=-1).mean(-1).cpu().numpy()
        step = (out.carry.z_H.float() - carry.z_H.float()).flatten(1).norm(dim=1)
        last_move = (step / out.carry.z_H.float().flatten(1).norm(dim=1)).cpu().numpy()
        carry, prev = out.carry, logits
        preds[t] = logits.argmax(-1).to(torch.uint8).cpu().numpy()
        if project and t in keep:
            points.append(logits.flatten(1).cpu())
    final = preds[-1]
    # the step from which each init's decoded answer stayed equal to its final answer
    same = (preds == final[None]).all(-1)  # [depth, inits]
    changed = ~same
    last_change = np.where(changed.any(0), depth - 1 - np.argmax(changed[::-1], axis=0), -1)
    entry = last_change + 2  # segments are counted from 1

    keys, index = np.unique(final, axis=0, return_inverse=True)
    index = index.reshape(-1)
    window = residuals[:, max(1, depth - 3):]
    final_res = np.nanmean(window, axis=1) if window.shape[1] else np.full(inits, np.nan)
    attractors = []
    for k, answer in enumerate(keys):
        members = index == k
        attractors.append(Attractor(
            answer=answer.reshape(H, W), inits=int(members.sum()),
            share=float(members.mean()), valid=bool(task.is_solution(puzzle,
                                                                     answer.reshape(H, W))),
            mean_residual=float(np.nanmean(final_res[members])) if depth > 1 else float("nan"),
            moving_share=float((last_move[members] > move_tol).mean()),
            entry_step=float(entry[members].mean()),
        ))
    order = sorted(range(len(attractors)), key=lambda k: -attractors[k].inits)
    remap = np.empty(len(order), int)
    remap[order] = np.arange(len(order))
    attractors = [attractors[k] for k in order]
    mode, reason = classify(attractors)
    projection = None
    if project and points:
        data = torch.stack(points, 1)  # [inits, T, L*V]
        flat = data.reshape(-1, data.shape[-1])
        flat = flat - flat.mean(0, keepdim=True)
        _, _, v = torch.pca_lowrank(flat, q=min(2, flat.shape[1]), center=False)
        projection = (flat @ v[:, :2]).reshape(inits, -1, v[:, :2].shape[1]).numpy()
    return Landscape(attractors, mode, reason, depth, inits, remap[index], residuals,
                     projection)
