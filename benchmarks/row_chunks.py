"""Side by side, one process per mode: segment inference of the paper Sudoku model (random
weights) with CPU row chunking off ("none"), off but with glibc's mmap threshold raised
("mallopt"), and on ("chunk", the default). Usage: python benchmarks/row_chunks.py MODE"""

import ctypes
import sys

import torch

import eqr_solve.model as model_module
from eqr_solve.bench import PAPER_SUDOKU, inference

mode = sys.argv[1]
if mode in ("none", "mallopt"):
    model_module.CPU_CHUNK_BYTES = 2**62  # one call per batch
if mode == "mallopt":
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 1 << 31)  # M_TRIM_THRESHOLD
torch.manual_seed(0)
model = model_module.EqR(PAPER_SUDOKU).eval()
for batch in (1, 16, 64, 256):
    r = inference(model, batch, (9, 9))
    print(f"{mode:8} batch {batch:3}: {r['segments_per_s_max']:.2f} segments/s")
