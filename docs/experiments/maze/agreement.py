"""Do settled restarts that agree on a path deserve the path when the halting head is unsure?

On 45x45 mazes at --depth 256 --breadth 16 most failures of the bundle are "no path" answers:
every restart settled (residual) but none got q above the board's q_accept. This replays one
residual-halting pass per set (cached next to --out) under the race-q rule and under a fallback
for such puzzles: take the path that at least K settled restarts drew (largest group; ties:
the higher q), else "no path" as before. Sets with mazes without a path show what the
fallback costs there.

    python docs/experiments/maze/agreement.py --depth 256 --breadth 16 \\
        --out docs/experiments/maze/agreement data/maze45-tune.npz data/maze45-nopath-tune.npz
"""

import argparse
import zlib
from pathlib import Path

import numpy as np
import torch

from eqr_solve import evaluate, precision, weights
from eqr_solve.data import Dataset
from eqr_solve.tasks import get_task


def load_pass(model, ds: Dataset, depth: int, breadth: int, tol: float, cache: Path) -> dict:
    """Per restart: right?, last q, segments run, and a digest of the answer (for agreement)."""
    if not cache.exists():
        p = evaluate.run_pass(model, ds, [depth], breadth, "residual", seed=0, tol=tol)
        s = p.snapshots[depth]
        digest = np.array([zlib.crc32(a.tobytes()) for a in s.answers], dtype=np.int64)
        np.savez_compressed(cache, correct=p.correct[depth], q=s.q, steps=s.steps,
                            digest=digest, seconds=p.seconds)
    return dict(np.load(cache))


def replay(ds: Dataset, run: dict, depth: int, breadth: int, q_accept: float,
           agree: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Right / "no path" per puzzle under race q, with the agreement fallback when ``agree``."""
    task = get_task(ds.kind)
    none_ok = np.array([task.is_solution(g, task.no_answer(g)) for g in ds.inputs])
    P, B = len(ds), breadth
    ok, q = run["correct"].reshape(P, B), run["q"].reshape(P, B)
    steps, digest = run["steps"].reshape(P, B), run["digest"].reshape(P, B)
    right, no_path = np.zeros(P, bool), np.zeros(P, bool)
    for i in range(P):
        settled = steps[i] < depth
        accepted = settled & (q[i] > q_accept)
        if accepted.any():  # the race's winner: first accepted, ties by higher q
            first = steps[i][accepted].min()
            k = np.flatnonzero(accepted & (steps[i] == first))
            right[i] = ok[i, k[np.argmax(q[i, k])]]
            continue
        if agree:
            groups = {}
            for k in np.flatnonzero(settled):
                groups.setdefault(digest[i, k], []).append(k)
            best = max(groups.values(), key=lambda g: (len(g), q[i, g].max()), default=[])
            if len(best) >= agree:
                right[i] = ok[i, best[0]]
                continue
        k = int(np.argmax(q[i]))  # q over all restarts, rejected: "no path"
        right[i] = none_ok[i] if q[i, k] <= q_accept else ok[i, k]
        no_path[i] = q[i, k] <= q_accept
    return right, no_path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sets", nargs="+")
    ap.add_argument("--weights", default="maze")
    ap.add_argument("--depth", type=int, default=256)
    ap.add_argument("--breadth", type=int, default=16)
    ap.add_argument("--agree", default="2,3,4,6,8")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    dtype = precision.resolve("auto", torch.device("cpu"))
    model, info = weights.load(args.weights, "cpu", dtype)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("| set | puzzles (none) | K | exact | with a path: right | without: \"no path\" |"
          " \"no path\" answers | pass seconds |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for spec in args.sets:
        ds = Dataset.load(spec.removesuffix(".npz"))
        tol = weights.model_setting(info, "tol", 0.3, max(ds.shape))
        q_accept = weights.model_setting(info, "q_accept", 0.0, max(ds.shape))
        run = load_pass(model, ds, args.depth, args.breadth, tol,
                        out / f"{Path(spec).stem}-D{args.depth}B{args.breadth}.npz")
        task = get_task(ds.kind)
        none = np.array([task.is_solution(g, task.no_answer(g)) for g in ds.inputs])
        for agree in [None, *map(int, args.agree.split(","))]:
            right, no_path = replay(ds, run, args.depth, args.breadth, q_accept, agree)
            with_path = f"{right[~none].sum()}/{(~none).sum()}"
            without = f"{right[none].sum()}/{none.sum()}" if none.any() else "–"
            print(f"| {Path(spec).stem} | {len(ds)} ({none.sum()}) | {agree or '–'} | "
                  f"{right.mean():.0%} | {with_path} | {without} | {no_path.sum()} | "
                  f"{float(run['seconds']):.0f} |")


if __name__ == "__main__":
    main()
