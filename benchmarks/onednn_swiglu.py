"""The channel SwiGLU + residual of the paper Sudoku model (hidden 512, inner 1536) on one
batch of rows, three ways, best of 30 runs each, twice, in one process:
  mkl    PyTorch's default GEMM (MKL), silu and product in place, residual added after;
  onednn the same ops with oneDNN's GEMM (torch.ops.mkldnn._linear_pointwise);
  fused  three oneDNN GEMMs with silu, the product and the residual add fused in (the engine).
Same result (checked); prints GFLOP/s per row count (81 rows = one 9x9 puzzle).
Usage: python benchmarks/onednn_swiglu.py [ROWS ...]   (default: 81 1296 2592)"""

import sys
import time

import torch
import torch.nn.functional as F

linear = torch.ops.mkldnn._linear_pointwise
D, INNER = 512, 1536
torch.manual_seed(0)
w_gate_up, w_down = torch.randn(2 * INNER, D) / D**0.5, torch.randn(D, INNER) / INNER**0.5
w_gate, w_up = w_gate_up.chunk(2)


def before(x):
    gate, up = (x @ w_gate_up.t()).chunk(2, -1)
    return (F.silu(gate) * up) @ w_down.t() + x


def mkl(x):
    gate, up = (x @ w_gate_up.t()).chunk(2, -1)
    return F.silu(gate, inplace=True).mul_(up) @ w_down.t() + x


def onednn(x):
    gate, up = linear(x, w_gate_up, None, "none", [], "").chunk(2, -1)
    return linear(F.silu(gate, inplace=True).mul_(up), w_down, None, "none", [], "").add_(x)


def fused(x):
    product = linear.binary(x, linear(x, w_gate, None, "swish", [], ""), w_up, None, "mul")
    return linear.binary(product, x, w_down, None, "add")


def best_seconds(fn, x, runs=30):
    for _ in range(5):
        fn(x)
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - t)
    return best


for rows in [int(r) for r in sys.argv[1:]] or [81, 1296, 2592]:
    x = torch.randn(rows, D)
    ref = before(x)
    assert all(torch.allclose(f(x), ref, atol=1e-4) for f in (before, mkl, onednn, fused))
    flops = 2 * rows * D * 3 * INNER
    for _ in range(2):
        print(f"{rows:5} rows: " + "  ".join(
            f"{f.__name__} {flops / best_seconds(f, x) / 1e9:4.0f}"
            for f in (before, mkl, onednn, fused))
            + " GFLOP/s", flush=True)
