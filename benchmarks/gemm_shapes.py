"""GFLOP/s of each matmul of one layer of the paper Sudoku model at a batch size, alone, next
to a 2048^3 matmul; and whether padding the token-MLP's 81-long dimension to 88/96/128 (zero
rows, same result) would run faster. Usage: python benchmarks/gemm_shapes.py [BATCH]"""

import sys
import time

import torch


def matmul_seconds(m: int, k: int, n: int, repeats: int = 10) -> float:
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return best


B = int(sys.argv[1]) if len(sys.argv) > 1 else 16
N = 512 * B  # the token MLP's columns: (batch, channel) pairs
shapes = [("channel up", 81 * B, 512, 3072), ("channel down", 81 * B, 1536, 512),
          ("token up", 512, 81, N), ("token down", 81, 256, N), ("2048^3", 2048, 2048, 2048)]
torch.manual_seed(0)
with torch.inference_mode():
    for name, m, k, n in shapes:
        s = matmul_seconds(m, k, n)
        print(f"{name:13} [{m}x{k}] @ [{k}x{n}]  {2 * m * k * n / s / 1e9:6.1f} GFLOP/s  "
              f"{s * 1e3:7.2f} ms")
    for pad in (81, 88, 96, 128):
        up, down = matmul_seconds(512, pad, N), matmul_seconds(pad, 256, N)
        print(f"token MLP padded to {pad:3}: up {up * 1e3:6.2f} ms  down {down * 1e3:6.2f} ms")
