"""Choose a model's q_accept (the halting logit an answer must exceed under --select q) on
tuning sets: one residual-halting pass per set (cached as NAME.npz next to --out), replayed for
every threshold through the eval's race-q and q columns (`evaluate.grid_cells`), split into
mazes with and without a path.

    python docs/experiments/maze/q_accept.py --weights maze --depths 64 --breadth 8 \\
        --out docs/eval/maze-q-accept data/maze30.npz data/maze30-nopath-tune.npz
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from eqr_solve import evaluate, precision, weights
from eqr_solve.data import Dataset
from eqr_solve.solver import Snapshot
from eqr_solve.tasks import get_task

THRESHOLDS = (0.0, 1.0, 2.0, 2.5, 3.0, 3.25, 3.5, 3.75, 3.9, 4.0, 4.1, 4.25, 4.5, 5.0)


def load_pass(model, ds: Dataset, depths, breadth, tol, cache: Path) -> evaluate.Pass:
    """The pass of ``ds`` from its cache, else run (and cache) it: answers are not cached, only
    what the replay needs (correct, q, scores, steps)."""
    if not cache.exists():
        p = evaluate.run_pass(model, ds, depths, breadth, "residual", seed=0, tol=tol)
        np.savez_compressed(cache, seconds=p.seconds, segments=p.segments, **{
            f"{k}_{d}": v for d in depths for k, v in (
                ("correct", p.correct[d]), ("q", p.snapshots[d].q),
                ("scores", p.snapshots[d].scores), ("steps", p.snapshots[d].steps))})
    z = np.load(cache)
    snaps = {d: Snapshot(answers=np.zeros(len(z[f"q_{d}"])), scores=z[f"scores_{d}"],
                         q=z[f"q_{d}"], steps=z[f"steps_{d}"]) for d in depths}
    return evaluate.Pass(snaps, {d: z[f"correct_{d}"] for d in depths},
                         {d: np.zeros(len(z[f"q_{d}"])) for d in depths}, float(z["seconds"]),
                         int(z["segments"]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="+", type=Path)
    ap.add_argument("--weights", default="maze")
    ap.add_argument("--depths", default="64")
    ap.add_argument("--breadth", type=int, default=8)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--thresholds", default=",".join(map(str, THRESHOLDS)))
    ap.add_argument("--tol", type=float, help="residual tolerance (default: the model's)")
    args = ap.parse_args()
    depths = [int(x) for x in args.depths.split(",")]
    thresholds = [float(x) for x in args.thresholds.split(",")]
    dtype = precision.resolve("auto", torch.device("cpu"))
    model, info = weights.load(args.weights, "cpu", dtype)
    args.out.mkdir(parents=True, exist_ok=True)
    task = get_task("maze")
    for path in args.data:
        ds = Dataset.load(str(path.with_suffix("")))
        tol = (args.tol if args.tol is not None
               else weights.model_setting(info, "tol", 0.3, max(ds.shape)))
        full = load_pass(model, ds, depths, args.breadth, tol,
                         args.out / f"{path.stem}-D{args.depths}-B{args.breadth}.npz")
        has_path = np.array([task.has_path(g) for g in ds.inputs])
        groups = {"all": np.arange(len(ds)), "path": np.flatnonzero(has_path),
                  "no path": np.flatnonzero(~has_path)}
        print(f"\n{path} ({len(ds)} mazes, {has_path.sum()} with a path), tol {tol}, "
              f"B {args.breadth}, pass {full.seconds:.0f} s")
        print("| D | q_accept | " + " | ".join(f"{g} (n) race q (NFE) / q over B"
                                              for g in groups) + " |")
        for d in depths:
            for t in thresholds:
                row = []
                for rows in groups.values():
                    if len(rows) == 0:
                        row.append("-")
                        continue
                    c = evaluate.grid_cells(ds, full, [d], [args.breadth], args.breadth, rows,
                                            "residual", t)[0]
                    row.append(f"{100 * c['acc_race_q']:.0f}% ({c['mean_nfe_race_q']:.0f}) / "
                               f"{100 * c['acc_q']:.0f}% [n {len(rows)}]")
                print(f"| {d} | {t} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
