"""What the wrong paths of `eqr-solve maze --json` records look like, against the true
shortest path: cells drawn off it, cells of it left out, loose ends (path cells with fewer
than two path neighbours, S and G counting as path), branch cells (more than two).

    python docs/experiments/maze/wrong_paths.py docs/eval/maze-card-2026-12-06/cli/60.jsonl
"""

import json
import sys

import numpy as np

from eqr_solve.tasks import maze


def wrong_paths(path: str) -> list[dict]:
    """One row per record whose drawn path the checker rejects ("no path" answers left out)."""
    rows = []
    for line in open(path):
        r = json.loads(line)
        if r["valid"] or r.get("rejected"):
            continue
        puzzle, answer = maze.from_rows(r["puzzle"]), maze.from_rows(r["solution"])
        label = maze.solve(puzzle)
        _, off, left_out = maze.path_errors(answer[None], label[None])
        drawn = answer == maze.PATH
        on = np.pad(drawn | np.isin(puzzle, (maze.START, maze.GOAL)), 1)
        neighbours = (on[2:, 1:-1].astype(int) + on[:-2, 1:-1] + on[1:-1, 2:] + on[1:-1, :-2])
        rows.append({"source": r["source"], "true": int((label == maze.PATH).sum()),
                     "drawn": int(drawn.sum()), "off": int(off), "left_out": int(left_out),
                     "loose_ends": int((drawn & (neighbours < 2)).sum()),
                     "branches": int((drawn & (neighbours > 2)).sum()),
                     "other_cells": int(((answer != puzzle) & ~drawn).sum())})
    return rows


def main() -> None:
    print("| records | wrong paths | true length (median) | drawn (median) | drawn off the true "
          "path | true path left out | loose ends (median) | branch cells | other cells changed |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path in sys.argv[1:]:
        rows = wrong_paths(path)
        if not rows:
            print(f"| `{path}` | 0 | | | | | | | |")
            continue
        col = {k: np.array([r[k] for r in rows]) for k in rows[0] if k != "source"}.get

        off = col("off").sum() / max(col("drawn").sum(), 1)
        left = col("left_out").sum() / col("true").sum()
        print(f"| `{path}` | {len(rows)} | {np.median(col('true')):.0f} | "
              f"{np.median(col('drawn')):.0f} | {off:.0%} | {left:.0%} | "
              f"{np.median(col('loose_ends')):.0f} | {col('branches').sum()} | "
              f"{col('other_cells').sum()} |")


if __name__ == "__main__":
    main()
