"""The training run's periodic held-out evaluation (``Trainer.evaluate``: EMA weights, B = 1,
D16 without halting and with ACT halting, seed 0) for any weights file, so that a run's
checkpoints can be set against the weights it started from on the same set.

    python docs/eval/sudoku-9x9-anneal/periodic_eval.py WEIGHTS RUN_DIR/data/eval.npz
"""

import json
import sys

import numpy as np
import torch

from eqr_solve import precision, weights
from eqr_solve.solver import SolveConfig, solve

model, _ = weights.load(sys.argv[1], dtype=precision.resolve("auto", torch.device("cpu")))
data = np.load(sys.argv[2])
row = {"weights": sys.argv[1], "n": len(data["inputs"])}
for name, cfg in (("exact", SolveConfig(depth=16, seed=0)),
                  ("act_exact", SolveConfig(depth=16, seed=0, halt="act"))):
    results = solve(model, data["inputs"], cfg)
    row[name] = round(float(np.mean([np.array_equal(r.answer, y)
                                     for r, y in zip(results, data["labels"])])), 4)
print(json.dumps(row))
