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
import time

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


batches = [int(b) for b in sys.argv[1].split(",")]
repeats = int(sys.argv[2])
variants = ["as-is"] + sys.argv[3:]
torch.manual_seed(0)
model = M.EqR(bench.PAPER_SUDOKU).eval()
peak = bench.matmul_peak(2048, 3)
mm = bench.matmul_backends()[peak["backend"]]
a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
for batch in batches:
    x, carry = torch.randint(1, 11, (batch, 9, 9)), model.initial_carry(batch, 81)
    flops = M.flops_per_segment(model.cfg, 81) * batch
    runs: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    with torch.inference_mode():
        for _ in range(repeats):
            for variant in variants:
                use(variant)
                model(carry, x)  # warm-up (a new chunk size or path)
                t = time.perf_counter()
                model(carry, x)
                seconds = time.perf_counter() - t
                t = time.perf_counter()
                mm(a, b)
                peak_seconds = time.perf_counter() - t
                runs[variant].append((batch / seconds,
                                      100 * flops / seconds / (2 * 2048**3 / peak_seconds)))
    use("as-is")
    medians = {v: [statistics.median(r[i] for r in rs) for i in (0, 1)] for v, rs in runs.items()}
    print(f"batch {batch:3}: " + "  ".join(f"{v} {s:5.2f} ({p:3.0f}%)"
                                           for v, (s, p) in medians.items()), flush=True)
