"""Which residual tolerance for a maze model? One pass of B restarts per maze run to depth D
without halting, every segment's answer kept, then residual halting replayed offline for
each tolerance: one restart, and B restarts raced (the maze defaults: the first restart to
settle answers; none settles -> the smallest residual score of all B).

    .venv/bin/python docs/experiments/maze/tol_replay.py MODEL.safetensors data/maze30.npz N \
        [TOLS=0.3,0.5,0.8] [DEPTH=64] [B=8] [SEED=0]

Halting as in the solver: the first segment s >= 2 whose residual is below tol (the residual of
segment s compares its logits with segment s-1's). Mean NFE of the race = the segments all B
restarts run until the first settles (side by side). Same trajectories for every tolerance.
"""

import sys

import numpy as np
import torch

from eqr_solve import precision, weights
from eqr_solve.solver import SolveConfig, residual_score, run_trajectories

model, _ = weights.load(sys.argv[1])
model = model.to(precision.resolve("auto", torch.device("cpu")))
data, n = np.load(sys.argv[2]), int(sys.argv[3])
x, y = data["inputs"][:n], data["labels"][:n]
tols = [float(t) for t in sys.argv[4].split(",")] if len(sys.argv) > 4 else [0.3, 0.5, 0.8]
depth = int(sys.argv[5]) if len(sys.argv) > 5 else 64
B = int(sys.argv[6]) if len(sys.argv) > 6 else 8
seed = int(sys.argv[7]) if len(sys.argv) > 7 else 0
cfg = SolveConfig(depth=depth, breadth=B, halt="none", keep_frames=True, seed=seed)
run, seconds = run_trajectories(model, x, cfg)
res = run.residuals[:, :depth]  # [n*B, depth], NaN at segment 1
frames = np.stack([np.stack(f) for f in run.frames])  # [n*B, depth, H, W]
right = (frames.reshape(n * B, depth, -1) == np.repeat(y.reshape(n, -1), B, 0)[:, None]).all(-1)
print(f"{sys.argv[1]} on {sys.argv[2]} first {n}, D{depth}, {B} restarts, seed {seed}: "
      f"every segment, right at D{depth} {right[:, -1].mean():.1%} of restarts ({seconds:.0f} s)")
rows = np.arange(n)
for tol in tols:
    below = np.nan_to_num(res, nan=np.inf) < tol
    below[:, :1] = False  # min_steps 2
    settled = below.any(1)
    stop = np.where(settled, below.argmax(1) + 1, depth)  # segments run
    ok = right[np.arange(n * B), stop - 1]
    score = residual_score(res, stop, cfg.window)
    s, st, o, sc = (a.reshape(n, B) for a in (stop, settled, ok, score))
    first = np.where(st, s, depth + 1)
    pick = np.where(st.any(1), first.argmin(1), sc.argmin(1))
    rounds = np.minimum(first.min(1), depth)
    nfe = np.minimum(s, rounds[:, None]).sum(1)
    wrong_settled = (st & ~o).sum() / max(st.sum(), 1)
    print(f"tol {tol}: one restart {o[:, 0].mean():.1%} in {s[:, 0].mean():.1f} segments "
          f"(settles {st[:, 0].mean():.0%}); race of {B} {o[rows, pick].mean():.1%}, "
          f"mean NFE {nfe.mean():.1f}, rounds {rounds.mean():.1f}; "
          f"settled but wrong {wrong_settled:.1%} of settled restarts", flush=True)
