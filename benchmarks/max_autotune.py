"""One block of the paper Sudoku model, eager (oneDNN path) vs torch.compile with Inductor's
max-autotune (freezing on, GEMM backends CPP and ATen: Inductor's own C++ GEMM template with
fused epilogues, autotuned against the library GEMM). Prints the autotune choices and the
block time. Usage: python benchmarks/max_autotune.py [BATCH]  (default 16)"""

import sys
import time

import torch
import torch._inductor.config as inductor_config

from eqr_solve import model as M
from eqr_solve.bench import PAPER_SUDOKU, timed


def best_ms(fn, repeats: int = 40) -> float:
    return 1e3 * timed(fn, repeats, warmup=3)[0]


batch = int(sys.argv[1]) if len(sys.argv) > 1 else 16
torch.manual_seed(0)
block = M.EqR(PAPER_SUDOKU).eval().blocks[0]
h, board = torch.randn(81, batch, 512), (None, (9, 9))
with torch.no_grad():
    eager = best_ms(lambda: block(h, *board))

inductor_config.freezing = True
inductor_config.max_autotune = True
inductor_config.max_autotune_gemm_backends = "CPP,ATEN"
M.ONEDNN_CPU = False  # let Inductor see plain linears
compiled = torch.compile(block)
with torch.no_grad():
    t = time.perf_counter()
    compiled(h, *board)
    warm = time.perf_counter() - t
    tuned = best_ms(lambda: compiled(h, *board))
print(f"batch {batch}: eager {eager:.2f} ms, max-autotune {tuned:.2f} ms per block "
      f"(compile + autotune {warm:.0f} s)")
