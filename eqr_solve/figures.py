"""Evaluation files: CSV/JSON always, PNG figures when matplotlib is installed
(``pip install eqr-solve[plot]``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path


def write_eval(result: dict, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "result.json", out_dir / "cells.csv"]
    written[0].write_text(json.dumps(result, indent=1, default=float) + "\n")
    rows = [{"mode": "fixed", **c} for c in result["cells"]] + \
           [{"mode": "act", **c} for c in result.get("act", [])]
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("mode", "stratum",
                                                                        "depth", "breadth"), k))
    with open(written[1], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return written
    cells = [c for c in result["cells"] if c["stratum"] == "all"]
    depths, breadths = result["depths"], result["breadths"]
    written += [accuracy_vs_depth(plt, cells, depths, breadths, out_dir),
                heatmap(plt, cells, depths, breadths, out_dir),
                residual_vs_depth(plt, result["residual_curves"], out_dir)]
    if result.get("act"):
        written.append(act_vs_fixed(plt, cells, [c for c in result["act"]
                                                 if c["stratum"] == "all"], out_dir))
    written.append(accuracy_vs_nfe_by_band(plt, result, out_dir))
    return written


def accuracy_vs_depth(plt, cells, depths, breadths, out_dir: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    styles = {"residual": "-", "vote": "--", "q": ":"}
    for b in breadths:
        for rule, ls in styles.items():
            if b == 1 and rule != "residual":
                continue  # with one restart every rule picks the same answer
            ys = [100 * next(c[f"acc_{rule}"] for c in cells
                             if c["depth"] == d and c["breadth"] == b) for d in depths]
            ax.plot(depths, ys, ls, marker="o", label=f"B={b} {rule}")
        if b > 1:
            ys = [100 * next(c["any_correct"] for c in cells
                             if c["depth"] == d and c["breadth"] == b) for d in depths]
            ax.plot(depths, ys, "-.", color="grey", alpha=0.6, label=f"B={b} any (oracle)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("depth D (segments)")
    ax.set_ylabel("exact accuracy %")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(plt, fig, out_dir / "accuracy_vs_depth.png")


def heatmap(plt, cells, depths, breadths, out_dir: Path) -> Path:
    import numpy as np

    grid = np.array([[100 * next(c["acc_residual"] for c in cells
                                 if c["depth"] == d and c["breadth"] == b) for d in depths]
                     for b in breadths])
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(depths), 1.2 + 0.7 * len(breadths)))
    im = ax.imshow(grid, origin="lower", cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for i in range(len(breadths)):
        for j in range(len(depths)):
            ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=8,
                    color="white" if grid[i, j] < 60 else "black")
    # iso-NFE diagonals: cells with the same D*B lie on one line
    nfe = sorted({d * b for d in depths for b in breadths})
    for value in nfe[:: max(1, len(nfe) // 6)]:
        pts = [(j, i) for i, b in enumerate(breadths) for j, d in enumerate(depths)
               if d * b == value]
        if len(pts) > 1:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, "w--", lw=0.8, alpha=0.8)
    ax.set_xticks(range(len(depths)), [str(d) for d in depths])
    ax.set_yticks(range(len(breadths)), [str(b) for b in breadths])
    ax.set_xlabel("depth D")
    ax.set_ylabel("breadth B")
    ax.set_title("Top-1 residual accuracy % (dashed: equal NFE = D·B)", fontsize=9)
    fig.colorbar(im, ax=ax)
    return _save(plt, fig, out_dir / "depth_breadth_heatmap.png")


def residual_vs_depth(plt, curves, out_dir: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    depths = [c["depth"] for c in curves]
    for name, color in (("correct", "tab:green"), ("wrong", "tab:red")):
        med = [c[f"{name}_median"] for c in curves]
        lo = [c[f"{name}_q25"] for c in curves]
        hi = [c[f"{name}_q75"] for c in curves]
        ax.plot(depths, med, marker="o", color=color, label=f"{name} (median)")
        ax.fill_between(depths, lo, hi, color=color, alpha=0.2)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("depth D (segments)")
    ax.set_ylabel("logit residual (last 3 segments)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(plt, fig, out_dir / "residual_vs_depth.png")


def act_vs_fixed(plt, cells, act, out_dir: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for b in sorted({c["breadth"] for c in cells}):
        f = sorted((c["mean_nfe"], 100 * c["acc_residual"]) for c in cells if c["breadth"] == b)
        a = sorted((c["mean_nfe"], 100 * c["acc_residual"]) for c in act if c["breadth"] == b)
        ax.plot(*zip(*f), marker="o", label=f"fixed depth, B={b}")
        ax.plot(*zip(*a), marker="s", ls="--", label=f"ACT halting, B={b}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("mean NFE per puzzle")
    ax.set_ylabel("exact accuracy %")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(plt, fig, out_dir / "accuracy_vs_nfe_act.png")


def accuracy_vs_nfe_by_band(plt, result: dict, out_dir: Path) -> Path:
    """Exact accuracy against mean NFE per puzzle, one curve per difficulty band (and all),
    over every (depth, breadth) cell of the run's main pass; the selection rule is the one
    the CLI uses for that pass (q under ACT halting, else the residual)."""
    rule = "acc_q" if result.get("halt") == "act" else "acc_residual"
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    strata = ["all"] + sorted({c["stratum"] for c in result["cells"]
                               if c["stratum"].startswith("band ")}, key=lambda s: (len(s), s))
    for name in strata:
        pts = sorted((c["mean_nfe"], 100 * c[rule]) for c in result["cells"]
                     if c["stratum"] == name)
        n = next(c["puzzles"] for c in result["cells"] if c["stratum"] == name)
        ax.plot(*zip(*pts), marker="o", lw=2.5 if name == "all" else 1.2,
                label=f"{name.removeprefix('band ')} (n={n})")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("mean NFE per puzzle (segments x restarts)")
    ax.set_ylabel("exact accuracy %")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, title="difficulty band", title_fontsize=7)
    return _save(plt, fig, out_dir / "accuracy_vs_nfe_by_band.png")


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_landscape(land, out_dir: Path) -> Path | None:
    """Trajectories projected to 2-D with PCA, coloured by the attractor they end in."""
    if land.projection is None:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    cmap = plt.get_cmap("tab10")
    for i in range(land.inits):
        k = int(land.final[i])
        color = cmap(k % 10) if k < 10 else "lightgrey"
        xy = land.projection[i]
        ax.plot(xy[:, 0], xy[:, 1], "-", color=color, lw=0.5, alpha=0.4)
        ax.plot(xy[-1, 0], xy[-1, 1], "o", color=color, ms=3)
    for k, a in enumerate(land.attractors[:10]):
        ax.plot([], [], "o", color=cmap(k), label=f"#{k} {'valid' if a.valid else 'wrong'} "
                                                  f"({a.share:.0%})")
    ax.set_xlabel("PC 1 (logits)")
    ax.set_ylabel("PC 2")
    ax.set_title(f"mode ({land.mode}): {land.inits} inits x {land.depth} segments", fontsize=9)
    ax.legend(fontsize=7)
    return _save(plt, fig, out_dir / "landscape.png")
