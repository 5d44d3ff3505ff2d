"""Segments/s of the paper Sudoku model, eager vs torch.compile with inductor's freezing
(constant weights folded and, on CPU, prepacked for oneDNN), and the compile warm-up.
Usage: python benchmarks/compile_freeze.py eager|freeze [BATCH ...]  (one process per mode)"""

import sys
import time

import torch

from eqr_solve.bench import PAPER_SUDOKU, inference
from eqr_solve.model import EqR

mode = sys.argv[1]
torch.manual_seed(0)
model = EqR(PAPER_SUDOKU).eval()
if mode == "freeze":
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    model.segment = torch.compile(model.segment, dynamic=False)
for batch in [int(b) for b in sys.argv[2:]] or [16]:
    x, carry = torch.randint(1, 11, (batch, 9, 9)), model.initial_carry(batch, 81)
    with torch.inference_mode():  # the first call compiles (freeze) and is timed alone
        t = time.perf_counter()
        model(carry, x)
        warm = time.perf_counter() - t
    speed = inference(model, batch, (9, 9))["segments_per_s_max"]
    print(f"{mode} batch {batch}: {speed:.2f} segments/s (first call {warm:.1f} s)")
