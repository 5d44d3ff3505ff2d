"""In-model A/B of engine variants tried in session 9 and dropped, against the engine as it
is, on the paper Sudoku model, alternating run by run, each run paired with a 2048^3 matmul
on the fastest backend. Prints segments/s and % of the paired peak (medians).
  token-mkl-view  the token MLP's K = 81 GEMMs with MKL on the transposed view (one GEMM for
                  gate and up, silu and product in place), its down projection on oneDNN;
  token-mkl-left  the token MLP as MKL weight-on-the-left GEMMs (the session-8 orientation);
  blocks-N        every SwiGLU in row blocks of N rows (intermediates stay in L2);
  chunk-N         inference chunks whose largest intermediate is N MiB (now: 16).
Usage: python benchmarks/variants_ab.py BATCHES REPEATS VARIANT ...
  e.g. python benchmarks/variants_ab.py 1,4,16 4 token-mkl-view token-mkl-left"""

import statistics
import sys
from functools import partial

import torch
import torch.nn.functional as F

from eqr_solve import bench
from eqr_solve import model as M

as_is_token, as_is_swiglu, as_is_chunk = M.TokenMLP.forward, M.SwiGLU.forward, M.CPU_CHUNK_BYTES


def token_mkl_view(self, h):
    L, B, D = h.shape
    if not M.fused_cpu(h):
        return as_is_token(self, h)
    gate, up = (h.reshape(L, B * D).t() @ self.gate_up.weight.t()).chunk(2, -1)
    product = F.silu(gate, inplace=True).mul_(up)
    return M.linear(product, self.packed_weights()[2]).t().view(L, B, D)


def token_mkl_left(self, h):
    L, B, D = h.shape
    if not M.fused_cpu(h):
        return as_is_token(self, h)
    gate, up = (self.gate_up.weight @ h.reshape(L, B * D)).chunk(2, 0)
    return (self.down.weight @ F.silu(gate, inplace=True).mul_(up)).view(L, B, D)


def row_blocks(rows):
    def forward(self, x, residual=None):
        if not M.fused_cpu(x) or x.shape[0] <= rows:
            return as_is_swiglu(self, x, residual)
        xs = x.split(rows)
        rs = residual.split(rows) if residual is not None else [None] * len(xs)
        return torch.cat([as_is_swiglu(self, a, r) for a, r in zip(xs, rs)])
    return forward


def use(variant: str) -> None:
    """Put the engine into ``variant`` ("as-is" restores it)."""
    M.TokenMLP.forward, M.SwiGLU.forward, M.CPU_CHUNK_BYTES = as_is_token, as_is_swiglu, \
        as_is_chunk
    if variant == "token-mkl-view":
        M.TokenMLP.forward = token_mkl_view
    elif variant == "token-mkl-left":
        M.TokenMLP.forward = token_mkl_left
    elif variant.startswith("blocks-"):
        M.SwiGLU.forward = row_blocks(int(variant.split("-")[1]))
    elif variant.startswith("chunk-"):
        M.CPU_CHUNK_BYTES = int(variant.split("-")[1]) * 2**20
    elif variant != "as-is":
        raise SystemExit(f"unknown variant {variant}")


def run(variant: str, carry: M.Carry, x: torch.Tensor) -> None:
    use(variant)
    model(carry, x)


batches = [int(b) for b in sys.argv[1].split(",")]
repeats = int(sys.argv[2])
variants = ["as-is"] + sys.argv[3:]
torch.manual_seed(0)
model = M.EqR(bench.PAPER_SUDOKU).eval()
peak = bench.matmul_peak(2048, 3)
for batch in batches:
    x, carry = torch.randint(1, 11, (batch, 9, 9)), model.initial_carry(batch, 81)
    flops = M.flops_per_segment(model.cfg, 81) * batch

    with torch.inference_mode():  # one warm-up run each time: a new path or chunk size
        runs = bench.alternating({v: partial(run, v, carry, x) for v in variants}, repeats,
                                 peak["backend"], warmup=1)
    use("as-is")
    print(f"batch {batch:3}: " + "  ".join(
        f"{v} {batch / statistics.median(s):5.2f} ({bench.paired_pct(flops, s, p, 2048):3.0f}%)"
        for v, (s, p) in runs.items()), flush=True)
