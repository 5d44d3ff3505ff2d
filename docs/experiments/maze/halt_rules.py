"""Does halting on the residual (least change between segments) work for a maze model?

    .venv/bin/python docs/experiments/maze/halt_rules.py MODEL.safetensors data/maze15.npz 50 \
        [TOLS=0.05,0.01] [DEPTH=64]

Valid share and mean segments at depth D for residual halting (each tolerance) and for every
segment; the datasets come from train/eval-maze.sh.
"""

import sys

import numpy as np

from eqr_solve import weights
from eqr_solve.solver import SolveConfig, solve
from eqr_solve.tasks import get_task

model, _ = weights.load(sys.argv[1])
data, n = np.load(sys.argv[2]), int(sys.argv[3])
x = data["inputs"][:n]
task = get_task("maze")
tols = [float(t) for t in sys.argv[4].split(",")] if len(sys.argv) > 4 else [0.05, 0.01]
depth = int(sys.argv[5]) if len(sys.argv) > 5 else 64
for halt, tol in [("residual", t) for t in tols] + [("none", 0.0)]:
    cfg = SolveConfig(depth=depth, halt=halt, tol=tol, select="residual")
    res = solve(model, x, cfg, check=task.is_solution)
    print(f"{sys.argv[2]} D{depth} halt {halt} tol {tol}: "
          f"valid {np.mean([r.valid for r in res]):.1%}, "
          f"mean segments {np.mean([r.steps for r in res]):.1f}", flush=True)
