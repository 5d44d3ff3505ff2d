"""Learned halting vs every segment, over several seeds: does ACT cost accuracy?

    .venv/bin/python docs/eval/act_seeds.py sudoku-9x9 data/sudoku9-50.npz 100 0,1,2

One eval run decides a 1-point question by one or two puzzles, and which ones fail changes
with the seed (initial latents and noise); this averages every-segment (residual selection)
and ACT (vote) over seeds on the same puzzles, at D16 B1.
"""

import sys

import numpy as np

from eqr_solve import weights
from eqr_solve.solver import SolveConfig, solve

model, _ = weights.load(sys.argv[1])
data = np.load(sys.argv[2])
n = int(sys.argv[3])
x, y = data["inputs"][:n], data["labels"][:n]
totals: dict[str, list[float]] = {"none": [], "act": []}
for seed in [int(s) for s in sys.argv[4].split(",")]:
    for halt, select in (("none", "residual"), ("act", "vote")):
        res = solve(model, x, SolveConfig(depth=16, halt=halt, select=select, seed=seed))
        exact = float(np.mean([(r.answer == yi).all() for r, yi in zip(res, y)]))
        totals[halt].append(exact)
        print(f"seed {seed} halt {halt}: exact {exact:.1%}, mean NFE "
              f"{np.mean([r.nfe for r in res]):.2f}", flush=True)
for halt, v in totals.items():
    print(f"mean over seeds, halt {halt}: {np.mean(v):.2%}")
