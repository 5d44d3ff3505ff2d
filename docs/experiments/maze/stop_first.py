"""Breadth for big mazes: how to spend B restarts. Replays three policies on the same
restarts (one pass of B restarts per maze, residual halting):

- all:    run all b restarts to their own halting, pick the smallest residual (--breadth b)
- retry:  one restart; b-1 more only if it did not settle (--breadth 1 --retries b-1)
- first:  run b restarts side by side, stop the maze at its first settled restart and take it

    .venv/bin/python docs/experiments/maze/stop_first.py MODEL.safetensors data/maze30.npz N \
        [DEPTH=64] [B=8]

Reports exact share, mean NFE and mean rounds (segments run one after another: the latency,
since restarts side by side share a batch), and the measured seconds per round of a batch of
b mazes on this machine, to turn rounds into time.
"""

import sys
import time

import numpy as np
import torch

from eqr_solve import precision, weights
from eqr_solve.solver import SolveConfig, residual_score, run_trajectories

model, _ = weights.load(sys.argv[1])
model = model.to(precision.resolve("auto", torch.device("cpu")))
data, n = np.load(sys.argv[2]), int(sys.argv[3])
x, y = data["inputs"][:n], data["labels"][:n]
depth = int(sys.argv[4]) if len(sys.argv) > 4 else 64
B = int(sys.argv[5]) if len(sys.argv) > 5 else 8
cfg = SolveConfig(depth=depth, breadth=B, halt="residual", tol=0.3)
run, seconds = run_trajectories(model, x, cfg)
steps = run.steps.reshape(n, B)
scores = residual_score(run.residuals, run.steps, cfg.window).reshape(n, B)
correct = (run.answers.reshape(n, B, -1) == y.reshape(n, 1, -1)).all(-1)
settled = steps < depth
print(f"{sys.argv[2]} first {n}, D{depth}, {B} restarts: one restart settles "
      f"{settled.mean():.1%}, is right {correct.mean():.1%}; pass {seconds:.0f}s")


def per_round(b: int) -> float:
    """Seconds per segment of b trajectories side by side on this board (median of 5)."""
    grids = torch.as_tensor(x[:1]).expand(b, *x.shape[1:]).contiguous()
    gen = torch.Generator().manual_seed(0)
    carry = model.initial_carry(b, grids[0].numel(), gen, next(model.parameters()).dtype)
    times = []
    with torch.inference_mode():
        for _ in range(6):
            t0 = time.perf_counter()
            carry = model(carry, grids, gen).carry
            times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


b = 1
while b <= B:
    s, sc, ok, st = steps[:, :b], scores[:, :b], correct[:, :b], settled[:, :b]
    rows = np.arange(n)
    pick = sc.argmin(1)
    all_ok, all_nfe, all_rounds = ok[rows, pick], s.sum(1), s.max(1)
    # retry: restart 0, then the others only if restart 0 did not settle
    r_ok = np.where(st[:, 0], ok[:, 0], all_ok)
    r_nfe = np.where(st[:, 0], s[:, 0], s.sum(1))
    r_rounds = np.where(st[:, 0], s[:, 0], s[:, 0] + s[:, 1:].max(1, initial=0))
    # first: the settled restart with the fewest segments; else the smallest residual
    first_steps = np.where(st, s, depth + 1).min(1)
    f_pick = np.where(st.any(1), np.where(st, s, depth + 1).argmin(1), pick)
    f_ok = ok[rows, f_pick]
    f_rounds = np.minimum(first_steps, depth)
    f_nfe = np.minimum(s, f_rounds[:, None]).sum(1)
    t1, tb = per_round(1), per_round(b)
    for name, a, nfe, rounds, t in (("all", all_ok, all_nfe, all_rounds, tb),
                                    ("retry", r_ok, r_nfe, None, None),
                                    ("first", f_ok, f_nfe, f_rounds, tb)):
        if name == "retry":
            est = np.where(st[:, 0], s[:, 0] * t1, s[:, 0] * t1 + s[:, 1:].max(1, initial=0) *
                           (per_round(b - 1) if b > 1 else 0)).mean()
            rounds = r_rounds
        else:
            est = (rounds * t).mean()
        print(f"b={b:3d} {name:5s}: exact {a.mean():6.1%}  mean NFE {nfe.mean():7.1f}  "
              f"mean rounds {rounds.mean():6.1f}  ≈{est:5.2f} s per maze", flush=True)
    b *= 2
