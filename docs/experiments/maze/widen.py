"""Widen a trained EqR by duplicating its channels (experiment; docs/experiments/maze/README.md).

    python docs/experiments/maze/widen.py weights/maze.safetensors OUT.safetensors
        [--check DATA.npz] [--n 32]

The hidden size doubles: every latent becomes [z, z]. Post-norm RMS norms see the same
mean square, so with both copies equal the widened network computes exactly what the old
one did: readers of the latent (SwiGLU inputs, lm_head, q_head) take half of each copy,
the embedding is scaled for the model's sqrt(D) factor, a SwiGLU's intermediate units are
duplicated too (its down projection writes each copy, halved). Random initial latents and
the training noise draw the two copies independently, which is what lets training use the
new capacity; ``--check`` measures how much that alone moves the answers (D64, one restart
per maze, residual halting, the solver's defaults otherwise).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from eqr_solve import data as D
from eqr_solve import weights
from eqr_solve.model import EqR, swiglu_width
from eqr_solve.solver import SolveConfig, solve
from eqr_solve.tasks import get_task


def widen(model: EqR) -> EqR:
    cfg = model.cfg
    wide_cfg = dataclasses.replace(cfg, hidden_size=2 * cfg.hidden_size)
    if swiglu_width(wide_cfg.hidden_size, cfg.expansion) != 2 * swiglu_width(cfg.hidden_size,
                                                                             cfg.expansion):
        raise SystemExit("the SwiGLU width does not double with the hidden size")
    if cfg.mixer != "conv":
        raise SystemExit("only the conv mixer is handled (attention/mlp_t mix differently)")
    wide = EqR(wide_cfg)
    old = model.state_dict()
    new = {}

    def both(t, dim):  # [.., D, ..] -> [.., 2D, ..], the copies side by side
        return torch.cat([t, t], dim=dim)

    for name, t in old.items():
        if name in ("H_init", "L_init"):
            new[name] = both(t, 0)
        elif name == "embed.weight":  # x = embed * sqrt(D): sqrt(2D) would scale it by sqrt(2)
            new[name] = both(t, 1) / 2 ** 0.5
        elif name.endswith("mix.weight"):  # depthwise [3, 3, D]
            new[name] = both(t, 2)
        elif name.endswith("gate_up.weight"):  # [2F, D]: gate rows then up rows, each doubled
            new[name] = both(torch.cat([both(half, 0) for half in t.chunk(2, dim=0)]), 1) / 2
        elif name.endswith("down.weight"):  # [D, F] -> [2D, 2F]
            new[name] = both(both(t, 1), 0) / 2
        elif name in ("lm_head.weight", "q_head.weight"):  # [out, D]
            new[name] = both(t, 1) / 2
        else:
            new[name] = t.clone()
    wide.load_state_dict(new)
    return wide


def check(model: EqR, ds, n: int) -> tuple[float, float]:
    cfg = SolveConfig(depth=64, breadth=1, halt="residual", tol=0.7, seed=0)
    task = get_task(ds.kind)
    res = solve(model, ds.inputs[:n], cfg, check=task.is_solution)
    return float(np.mean([r.valid for r in res])), float(np.mean([r.steps for r in res]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--check", help="a maze dataset (.npz) to compare both models on")
    ap.add_argument("--n", type=int, default=32)
    args = ap.parse_args()
    model, info = weights.load(args.src)
    model.eval()
    wide = widen(model).eval()
    meta = dict(info.meta, widened_from=info.name)
    weights.save(wide, args.out, info.kind, info.board, meta)
    print(f"wrote {args.out}: hidden {wide.cfg.hidden_size}")
    if args.check:
        ds = D.Dataset.load(args.check)
        for label, m in (("original", model), ("widened", wide)):
            with torch.no_grad():
                acc, steps = check(m, ds, args.n)
            print(f"{label}: exact {acc:.1%}, mean segments {steps:.1f} (n {args.n})")


if __name__ == "__main__":
    main()
