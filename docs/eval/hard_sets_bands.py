"""The hard Sudoku sets of `train/eval-hard-cli.sh` by difficulty band: exact and mean NFE per
band for every run of a set (defaults, D64 B64, a bigger budget), as a Markdown table and an
accuracy-vs-NFE PNG per set (the sudoku-9x9 card, docs/models.md).

    python docs/eval/hard_sets_bands.py docs/eval/hard-sets-2026-12-06-late [MORE_DIRS...]

Records are `SET-TAG.jsonl` (one per puzzle, `source` = FILE:LINE); the band of line i of
`data/hard/SET.txt` is the rating of row i-1 of `data/hard/SET.npz`, or of
`data/hard/all-SET.npz` whose first rows the text file holds (`eqr-solve data` wrote both).
Bands are the eval's: guesses of the exact solver (evaluate.difficulty_bands).
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from eqr_solve.data import Dataset
from eqr_solve.evaluate import difficulty_bands

HARD = Path("data/hard")
BAND_ORDER = ["0 guesses", "1-2", "3-9", "10-29", "30+"]
TAG_ORDER = ["defaults", "budget8192", "D64B64"]


def bands_of(set_name: str) -> np.ndarray:
    """forum1106-first50 (the first 50 of forum1106-first188) finds all-forum1106-first188."""
    names = [set_name, f"all-{set_name}"] + sorted(
        p.stem for p in HARD.glob(f"all-{set_name.split('-')[0]}-*.npz"))
    for name in names:
        if (HARD / f"{name}.npz").exists():
            return difficulty_bands(Dataset.load(HARD / name))
    raise SystemExit(f"no {HARD}/{set_name}.npz or all-{set_name}.npz: run "
                     "train/eval-hard-cli.sh first (it writes them)")


def main(dirs: list[Path]) -> None:
    runs: dict[str, dict[str, list[dict]]] = defaultdict(dict)  # set -> tag -> records
    for d in dirs:
        for f in sorted(d.glob("*.jsonl")):
            set_name, tag = f.stem.rsplit("-", 1)
            runs[set_name][tag] = [json.loads(line) for line in f.open()]
    lines, out = [], dirs[0]
    for set_name, tags in runs.items():
        band = bands_of(set_name)
        tags = dict(sorted(tags.items(), key=lambda kv: TAG_ORDER.index(kv[0])
                           if kv[0] in TAG_ORDER else 99))
        per = {}  # (tag, band or "all") -> (solved, n, nfe)
        for tag, recs in tags.items():
            for r in recs:
                for b in (band[int(r["source"].rsplit(":", 1)[1]) - 1], "all"):
                    s, n, nfe = per.get((tag, b), (0, 0, 0))
                    per[tag, b] = (s + r["valid"], n + 1, nfe + r["nfe"])
        present = [b for b in BAND_ORDER if any((t, b) in per for t in tags)]
        lines += [f"**{set_name}**", "",
                  "| band (solver guesses) | " + " | ".join(
                      f"{t}: exact (n, mean NFE)" for t in tags) + " |",
                  "|---|" + "---:|" * len(tags)]
        for b in present:
            cells = []
            for t in tags:
                s, n, nfe = per.get((t, b), (0, 0, 0))
                cells.append(f"{100 * s / n:.0f}% ({n}, {nfe / n:,.0f})" if n else "–")
            lines.append(f"| {b} | " + " | ".join(cells) + " |")
        lines.append("")
        plot(out / f"{set_name}-by-band.png", set_name, tags, per, present)
    (out / "bands.md").write_text("\n".join(lines))
    print("\n".join(lines))


def plot(path: Path, set_name: str, tags: dict, per: dict, bands: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for b in [*bands, "all"]:
        pts = sorted((nfe / n, 100 * s / n, n) for s, n, nfe in
                     (per[t, b] for t in tags if (t, b) in per))
        style = dict(color="black", linestyle="--", marker="s") if b == "all" else {"marker": "o"}
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=f"{b} (n={pts[0][2]})",
                **style)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("mean NFE per puzzle")
    ax.set_ylabel("exact (%)")
    ax.set_ylim(-3, 103)
    ax.set_title(f"{set_name}: {', '.join(tags)}", fontsize=9)
    ax.legend(fontsize=8, title="solver guesses", title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]] or [Path("docs/eval/hard-sets-2026-12-06-late")])
