"""Where one f-call of the paper Sudoku model spends its time, part by part, against the
ceiling of its own GEMM shapes (2026-11-26, commit fbfce5d). Each part runs alone, as the
engine runs it (inference mode, oneDNN with packed weights and fused post-ops), median of
REPEATS:
  bare GEMMs   every GEMM of one layer as a plain GEMM, on the faster backend for its shape
               (oneDNN with packed weights or torch.mm): the "matmul of comparable shape";
  parts        channel SwiGLU + residual, token-MLP half-block (transposing copy, SwiGLU,
               residual add, norm over positions), channel norm, noise, damped update, add.
Prints ms per f-call and GFLOP/s; the last line compares the sum of the parts with one timed
f-call and with the 2048^3 peak.
Usage: python benchmarks/segment_budget.py BATCHES REPEATS   e.g. 1,16 30"""

import sys

import torch

from eqr_solve import bench
from eqr_solve import model as M

lp, pack = torch.ops.mkldnn._linear_pointwise, torch.ops.mkldnn._reorder_linear_weight


def ms(fn, repeats: int) -> float:
    return bench.timed(fn, repeats, warmup=3)[1] * 1e3


def bare(m: int, k: int, n: int, repeats: int) -> tuple[float, str]:
    a, w = torch.randn(m, k), torch.randn(n, k)
    wp, wt = pack(w, None), w.t().contiguous()
    each = {"oneDNN": ms(lambda: lp(a, wp, None, "none", [], ""), repeats),
            "torch.mm": ms(lambda: torch.mm(a, wt), repeats)}
    best = min(each, key=each.get)
    return each[best], best


batches, repeats = [int(b) for b in sys.argv[1].split(",")], int(sys.argv[2])
torch.manual_seed(0)
model = M.EqR(bench.PAPER_SUDOKU).eval()
cfg, L, D = model.cfg, 81, model.cfg.hidden_size
E, Et = M.swiglu_width(D, cfg.expansion), M.swiglu_width(L, cfg.expansion)
block = model.blocks[0]
peak = bench.matmul_peak(2048, 3)["gflops_max"]


def budget(B: int) -> None:
    rows = L * B
    shapes = [(rows, D, E), (rows, D, E), (rows, E, D),
              (B * D, L, Et), (B * D, L, Et), (B * D, Et, L)]
    layer_flops = sum(2 * m * k * n for m, k, n in shapes)
    call_flops = cfg.L_layers * layer_flops
    print(f"batch {B}: one f-call = {call_flops / 1e9:.2f} GFLOP")
    gemm_ms = 0.0
    for m, k, n in shapes:
        t, which = bare(m, k, n, repeats)
        gemm_ms += t
        print(f"  bare GEMM {m}x{k}x{n}: {2 * m * k * n / t / 1e6:5.0f} GFLOP/s ({which})")
    gemm_ms *= cfg.L_layers
    h, z, inj = torch.randn(L, B, D), torch.randn(L, B, D), torch.randn(L, B, D)
    flat = h.view(rows, D)
    parts = {
        "channel SwiGLU + residual": ms(lambda: block.mlp(flat, residual=flat), repeats),
        "token half-block (copy, SwiGLU, add, norm)":
            ms(lambda: M.rms_norm(h + block.mix(h), dim=0), repeats),
        "channel norm": ms(lambda: M.rms_norm(flat.clone()), repeats)
                        - ms(lambda: flat.clone(), repeats),
    }
    parts = {k: v * cfg.L_layers for k, v in parts.items()}
    parts["noise (torch.randn)"] = ms(lambda: torch.randn(L, B, D), repeats)
    parts["damped update (lerp)"] = (ms(lambda: h.clone().lerp_(z, 0.05), repeats)
                                     - ms(lambda: h.clone(), repeats))
    parts["z + injection"] = ms(lambda: z + inj, repeats)
    call = ms(lambda: model.f(z, inj, (None, (9, 9)), None, model.cfg.noise_scale), repeats)
    total = sum(parts.values())
    for name, t in parts.items():
        print(f"  {name:44s} {t:7.2f} ms  {100 * t / total:5.1f}%")
    print(f"  sum of parts {total:.2f} ms; one f-call timed {call:.2f} ms "
          f"({call_flops / call / 1e6:.0f} GFLOP/s = {call_flops / call / 1e6 / peak:.0%} "
          f"of the {peak:.0f} peak); its bare GEMMs {gemm_ms:.2f} ms "
          f"({call_flops / gemm_ms / 1e6:.0f} GFLOP/s = "
          f"{call_flops / gemm_ms / 1e6 / peak:.0%} of the peak)", flush=True)


with torch.inference_mode():
    for B in batches:
        budget(B)
