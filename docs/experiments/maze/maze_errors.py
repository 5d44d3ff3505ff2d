"""Where a maze model goes wrong, per maze size and depth: exact accuracy and the mean number
of false-positive / false-negative path cells per maze (fresh mazes from a fixed seed).

    .venv/bin/python docs/experiments/maze/maze_errors.py MODEL.safetensors 1,4,16,64 [7,11,15,30]

FP falling with depth = dead-end filling at work; FN growing with depth = the path is eroded
(the "no path" fixed point).
"""

import sys

import numpy as np

from eqr_solve import weights
from eqr_solve.solver import SolveConfig, run_trajectories
from eqr_solve.tasks import maze

SETS = [(7, 2, 12, 15), (11, 5, 40, 15), (15, 5, 88, 15), (30, 100, 140, 0)]  # side, path, canvas

model, _ = weights.load(sys.argv[1])
depths = [int(d) for d in sys.argv[2].split(",")]
sides = [int(s) for s in sys.argv[3].split(",")] if len(sys.argv) > 3 else [7, 11, 15, 30]
rng = np.random.default_rng(123)
for side, lo, hi, canvas in [s for s in SETS if s[0] in sides]:
    x, y = maze.generate(rng, 32 if side < 30 else 16, side, side, lo, hi,
                         canvas=(canvas, canvas) if canvas else None)
    path = (y == maze.PATH).sum((1, 2)).mean()
    # one pass to the deepest depth, snapshotting the shallower ones (as `eqr-solve eval`)
    run, _ = run_trajectories(model, x, SolveConfig(depth=max(depths), seed=0,
                                                    record_depths=depths))
    snapshots = run.snapshots_out()
    for d in depths:
        a = snapshots[d].answers
        exact, fp, fn = maze.path_errors(a, y)
        print(f"{side}x{side} D{d}: exact {exact:.3f}  FP/maze {fp:.1f}  FN/maze {fn:.1f}  "
              f"(path cells/maze {path:.1f})", flush=True)
