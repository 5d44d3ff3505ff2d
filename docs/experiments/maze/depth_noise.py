"""Exact accuracy and false-positive / false-negative path cells per maze of one saved maze
dataset, at several depths (one pass) and inference noise levels.

    .venv/bin/python docs/experiments/maze/depth_noise.py MODEL DATASET.npz N 4,16,64,256 0.01,0
"""

import sys
import time

from eqr_solve import weights
from eqr_solve.data import Dataset
from eqr_solve.solver import SolveConfig, run_trajectories
from eqr_solve.tasks import maze

model, _ = weights.load(sys.argv[1])
ds = Dataset.load(sys.argv[2])
n = int(sys.argv[3])
depths = [int(d) for d in sys.argv[4].split(",")]
x, y = ds.inputs[:n], ds.labels[:n]
for noise in [float(v) for v in sys.argv[5].split(",")]:
    start = time.time()
    cfg = SolveConfig(depth=max(depths), seed=0, record_depths=depths, noise=noise)
    run, _ = run_trajectories(model, x, cfg)
    snapshots = run.snapshots_out()
    for d in depths:
        a = snapshots[d].answers
        exact, fp, fn = maze.path_errors(a, y)
        print(f"noise {noise} D{d}: exact {exact:.3f}  FP/maze {fp:.2f}  FN/maze {fn:.2f}",
              flush=True)
    print(f"  {time.time() - start:.0f} s", flush=True)
