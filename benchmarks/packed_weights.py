"""oneDNN GEMMs with weights in plain layout vs packed once (torch.ops.mkldnn.
_reorder_linear_weight), cycling through the 12 SwiGLU weights of the paper Sudoku model's
two blocks (18 MB, as one f-call does), and the same with PyTorch's default GEMM (MKL) and
its packed API (torch.ops.mkl._mkl_linear). Best of 40, twice; GFLOP/s per row count.
Usage: python benchmarks/packed_weights.py [ROWS ...]   (default: 81 1296)"""

import sys
import time

import torch

dnn, dnn_pack = torch.ops.mkldnn._linear_pointwise, torch.ops.mkldnn._reorder_linear_weight
torch.manual_seed(0)
weights = [torch.randn(1536, 512) for _ in range(8)] + [torch.randn(512, 1536) for _ in range(4)]


def best_seconds(fn, runs=40):
    for _ in range(5):
        fn()
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def ways(rows: int) -> dict:
    """The four ways to run the 12 GEMMs on ``rows`` rows, each a no-argument callable."""
    xs = {512: torch.randn(rows, 512), 1536: torch.randn(rows, 1536)}
    dnn_packed = [dnn_pack(w, None) for w in weights]
    mkl_packed = [torch.ops.mkl._mkl_reorder_linear_weight(w, rows) for w in weights]
    return {
        "mkl": lambda: [xs[w.shape[1]] @ w.t() for w in weights],
        "mkl packed": lambda: [torch.ops.mkl._mkl_linear(xs[w.shape[1]], p, w, None, rows)
                               for w, p in zip(weights, mkl_packed)],
        "onednn": lambda: [dnn(xs[w.shape[1]], w, None, "none", [], "") for w in weights],
        "onednn packed": lambda: [dnn(xs[w.shape[1]], p, None, "none", [], "")
                                  for w, p in zip(weights, dnn_packed)],
    }


for rows in [int(r) for r in sys.argv[1:]] or [81, 1296]:
    fns = ways(rows)
    flops = sum(2 * rows * w.shape[0] * w.shape[1] for w in weights)
    for _ in range(2):
        print(f"{rows:5} rows: " + "  ".join(
            f"{name} {flops / best_seconds(fn) / 1e9:4.0f}" for name, fn in fns.items())
            + " GFLOP/s", flush=True)
