"""GFLOP/s of each matmul of one layer of the paper Sudoku model at a batch size, alone, next
to a 2048^3 matmul; and whether padding the token-MLP's 81-long dimension to 88/96/128 (zero
rows, same result) would run faster. Usage: python benchmarks/gemm_shapes.py [BATCH]"""

import sys

import torch

from eqr_solve.bench import PAPER_SUDOKU, gemm
from eqr_solve.model import swiglu_width


def matmul_seconds(m: int, k: int, n: int) -> float:
    return 2 * m * k * n / (gemm(m, k, n, repeats=10)[0] * 1e9)


B = int(sys.argv[1]) if len(sys.argv) > 1 else 16
D, L = PAPER_SUDOKU.hidden_size, PAPER_SUDOKU.seq_len
inter = swiglu_width(D, PAPER_SUDOKU.expansion)  # channel SwiGLU width
t_inter = swiglu_width(L, PAPER_SUDOKU.expansion)  # token MLP width
N = D * B  # the token MLP's columns: (batch, channel) pairs
shapes = [("channel up", L * B, D, 2 * inter), ("channel down", L * B, inter, D),
          ("token up", 2 * t_inter, L, N), ("token down", L, t_inter, N),
          ("2048^3", 2048, 2048, 2048)]
torch.manual_seed(0)
with torch.inference_mode():
    for name, m, k, n in shapes:
        s = matmul_seconds(m, k, n)
        print(f"{name:13} [{m}x{k}] @ [{k}x{n}]  {2 * m * k * n / s / 1e9:6.1f} GFLOP/s  "
              f"{s * 1e3:7.2f} ms")
    for pad in (81, 88, 96, 128):
        up, down = matmul_seconds(2 * t_inter, pad, N), matmul_seconds(pad, t_inter, N)
        print(f"token MLP padded to {pad:3}: up {up * 1e3:6.2f} ms  down {down * 1e3:6.2f} ms")
