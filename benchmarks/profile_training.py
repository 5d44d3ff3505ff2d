"""Where the time of one training step goes (forward under the trainer's autocast, backward,
AdamW) for a CPU recipe, eager: self CPU time per op, GEMM against the rest.
Usage: python benchmarks/profile_training.py [RECIPE] [fp32|bf16]
(default: sudoku-hard-cpu bf16)"""

import sys
import time

import torch
from profile_segment import report  # this folder (the script's own) is on sys.path
from torch.profiler import ProfilerActivity, profile

from eqr_solve import train as trainer
from eqr_solve.bench import training_step
from eqr_solve.model import EqR

recipe = trainer.load_recipe(sys.argv[1] if len(sys.argv) > 1 else "sudoku-hard-cpu")
bf16 = (sys.argv[2] if len(sys.argv) > 2 else "bf16") == "bf16"
H, W = recipe["board"]
batch = trainer.train_config(recipe).batch_size
torch.manual_seed(0)
model = EqR(trainer.model_config(recipe))
step = training_step(model, batch, (H, W), torch.bfloat16 if bf16 else torch.float32)
for _ in range(2):
    step()
t = time.perf_counter()
for _ in range(3):
    step()
print(f"{'bf16' if bf16 else 'fp32'}: {3 * batch / (time.perf_counter() - t):.1f} "
      "sample-segments/s unprofiled")
with profile(activities=[ProfilerActivity.CPU]) as prof:
    for _ in range(2):
        step()
report(prof, 2, "training step", top=25)
