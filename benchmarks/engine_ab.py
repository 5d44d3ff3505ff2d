"""Before/after in one process: the paper Sudoku model's segment with the engine (model.py)
of an earlier git revision vs the working tree, same weights, alternating run by run, each
run paired with a 2048^3 matmul on the fastest backend (as `eqr-solve bench`).
Prints segments/s and % of the paired peak (medians). The revisions' logits are compared.
MODEL is paper-sudoku (random weights) or a bundled model's name; BOARD (e.g. 30x30) overrides
the model's board; DTYPE is fp32 or bf16.
Usage: python benchmarks/engine_ab.py REV [BATCHES] [REPEATS] [MODEL] [BOARD] [DTYPE]
  e.g. python benchmarks/engine_ab.py 523625f 1,16,64 3 sudoku-9x9
       python benchmarks/engine_ab.py 1d1fc1c 1,8 5 maze 30x30 bf16"""

import statistics
import subprocess
import sys
import types
from functools import partial

import torch

from eqr_solve import bench, weights
from eqr_solve import model as new

rev = sys.argv[1]
source = subprocess.run(["git", "show", f"{rev}:eqr_solve/model.py"], check=True,
                        capture_output=True, text=True).stdout
old = types.ModuleType("model_before")
sys.modules["model_before"] = old  # dataclasses look their module up here
exec(compile(source, f"{rev}:eqr_solve/model.py", "exec"), old.__dict__)

torch.manual_seed(0)
name = sys.argv[4] if len(sys.argv) > 4 else "paper-sudoku"
if name == "paper-sudoku":
    after, board = new.EqR(bench.PAPER_SUDOKU).eval(), (9, 9)
else:
    after, _ = weights.load(name)
    board = next(i.board for i in weights.list_bundled() if i.name == name) or (15, 15)
if len(sys.argv) > 5:
    board = tuple(int(n) for n in sys.argv[5].split("x"))
dtype_name = sys.argv[6] if len(sys.argv) > 6 else "fp32"
dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
before = old.EqR(old.EqRConfig(**after.cfg.to_dict())).eval()
before.load_state_dict(after.state_dict())
before, after = before.to(dtype), after.to(dtype)
cells = board[0] * board[1]
batches = [int(b) for b in (sys.argv[2] if len(sys.argv) > 2 else "1,16,64").split(",")]
repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
peak = bench.matmul_peak(2048, 3, dtype)
print(f"{name} on {board[0]}x{board[1]}, {dtype_name}; peak {peak['gflops_max']:.0f} GFLOP/s "
      f"({peak['backend']})")
for batch in batches:
    x = torch.randint(1, after.cfg.vocab_size, (batch, *board))
    carry = after.initial_carry(batch, cells, dtype=dtype)
    flops = new.flops_per_segment(after.cfg, cells) * batch
    with torch.inference_mode():
        outs = [m(carry, x, torch.Generator().manual_seed(1)).logits for m in (before, after)]
        runs = bench.alternating({rev: partial(before, carry, x), "now": partial(after, carry, x)},
                                 repeats, peak["backend"], dtype=dtype)
    print(f"batch {batch:3} (max |logit difference| {(outs[0] - outs[1]).abs().max():.0e}): "
          + "  ".join(f"{name} {batch / statistics.median(s):5.2f} segments/s "
                      f"{bench.paired_pct(flops, s, p, 2048):3.0f}% paired"
                      for name, (s, p) in runs.items()), flush=True)
