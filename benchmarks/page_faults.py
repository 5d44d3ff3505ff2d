"""Minor page faults and speed of one segment of the paper Sudoku model, as is or with glibc
told to keep freed memory (mallopt: mmap threshold 32 MiB, trim threshold 1 GiB).
Usage: python benchmarks/page_faults.py plain|mallopt"""

import ctypes
import resource
import sys
import time

if sys.argv[1:] == ["mallopt"]:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 32 * 2**20)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 2**30)  # M_TRIM_THRESHOLD

import torch  # noqa: E402

from eqr_solve import model as M  # noqa: E402
from eqr_solve.bench import PAPER_SUDOKU  # noqa: E402

torch.manual_seed(0)
model = M.EqR(PAPER_SUDOKU).eval()
for batch in (1, 16, 64):
    x, carry = torch.randint(1, 11, (batch, 9, 9)), model.initial_carry(batch, 81)
    with torch.inference_mode():
        model(carry, x)
        faults, t = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        model(carry, x)
        model(carry, x)
        seconds = time.perf_counter() - t
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    print(f"batch {batch:3}: {faults // 2:7} minor faults per segment, "
          f"{2 * batch / seconds:5.2f} segments/s")
