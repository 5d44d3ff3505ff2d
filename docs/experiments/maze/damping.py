"""Does stronger damping (a smaller λ: weight on the new value) at inference keep long maze
paths from eroding?

    .venv/bin/python docs/experiments/maze/damping.py MODEL.safetensors data/maze30.npz N \
        LAMBDAS=0.95,0.8,0.6 [DEPTH=64] [NOISES=default]

One restart per maze, residual halting (tol 0.3, the maze default), bf16 where the CPU has it.
Prints valid share, mean segments and the false-positive / false-negative path cells.
"""

import sys
import time
from dataclasses import replace

import numpy as np
import torch

from eqr_solve import precision, weights
from eqr_solve.solver import SolveConfig, solve
from eqr_solve.tasks import get_task

model, _ = weights.load(sys.argv[1])
model = model.to(precision.resolve("auto", torch.device("cpu")))
data, n = np.load(sys.argv[2]), int(sys.argv[3])
x, y = data["inputs"][:n], data["labels"][:n]
lambdas = [float(v) for v in sys.argv[4].split(",")]
depth = int(sys.argv[5]) if len(sys.argv) > 5 else 64
noises = [None if v == "default" else float(v)
          for v in (sys.argv[6] if len(sys.argv) > 6 else "default").split(",")]
task = get_task("maze")
base = model.cfg
for lam in lambdas:
    for noise in noises:
        model.cfg = replace(base, lambda_=lam)
        t0 = time.perf_counter()
        res = solve(model, x, SolveConfig(depth=depth, halt="residual", tol=0.3, noise=noise),
                    check=task.is_solution)
        answers = np.stack([r.answer for r in res])
        exact, fp, fn = task.path_errors(answers, y)
        print(f"λ {lam} noise {noise if noise is not None else base.noise_scale} D{depth}: "
              f"valid {np.mean([r.valid for r in res]):.1%} exact {exact:.1%}, "
              f"mean segments {np.mean([r.steps for r in res]):.1f}, FP {fp:.1f} FN {fn:.1f} "
              f"per maze, {time.perf_counter() - t0:.0f}s", flush=True)
