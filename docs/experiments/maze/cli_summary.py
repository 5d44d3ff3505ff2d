"""Summarise the command-line runs of train/eval-maze.sh: per run, valid share, mean NFE and
wall time per maze; where some mazes have no path, each kind on its own and how many answers
were the halting head's rejection ("no path", record field ``rejected``), and how many of the
paths the solver did draw were right.

    python docs/experiments/maze/cli_summary.py docs/eval/maze-card-2026-12-05/cli
"""

import json
import sys
from pathlib import Path

import numpy as np

from eqr_solve.tasks import maze


def main(folder: Path) -> None:
    for line in (folder / "times.txt").read_text().splitlines():
        name, seconds = line.split()[:2]
        recs = [json.loads(x) for x in (folder / f"{name}.jsonl").read_text().splitlines()
                if x.startswith("{")]
        valid = np.array([r["valid"] for r in recs])
        nfe = np.array([r["nfe"] for r in recs])
        out = (f"{name}: n={len(recs)} valid {100 * valid.mean():.1f}% mean NFE "
               f"{nfe.mean():.0f} s/maze {float(seconds) / len(recs):.2f}")
        path = np.array([maze.has_path(maze.from_rows(r["puzzle"])) for r in recs])
        rejected = np.array([r.get("rejected", False) for r in recs])
        drawn = ~rejected
        out += (f" | paths drawn {drawn.sum()}, right {valid[drawn].sum()}"
                f" | 'no path' answers {rejected.sum()}")
        if not path.all():
            out += (f" | no path: {100 * valid[~path].mean():.1f}% of {(~path).sum()}, "
                    f"with a path: {100 * valid[path].mean():.1f}% of {path.sum()}; "
                    f"rejected {rejected[~path].sum()} / {rejected[path].sum()}")
        print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
