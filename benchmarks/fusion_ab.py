"""A/B in one process, alternating: the paper Sudoku model's blocks as written vs. with the
residual adds fused into the down-projection GEMMs (addmm) and an in-place SwiGLU product.
Same result (checked); prints segments/s per batch, twice each.
Usage: python benchmarks/fusion_ab.py [BATCH ...]   (default: 1 16 64)"""

import sys

import torch
import torch.nn.functional as F

from eqr_solve import model as M
from eqr_solve.bench import PAPER_SUDOKU, inference

written = M.Block.forward


def fused(self, h, rope, shape):
    L, B, D = h.shape
    tok = self.mix
    gate, up = (tok.gate_up.weight @ h.reshape(L, B * D)).chunk(2, dim=0)
    h = torch.addmm(h.reshape(L, B * D), tok.down.weight, F.silu(gate).mul_(up))
    h = M.rms_norm(h.view(L, B, D), dim=0, eps=self.eps).reshape(L * B, D)
    gate, up = F.linear(h, self.mlp.gate_up.weight).chunk(2, dim=-1)
    h = torch.addmm(h, F.silu(gate).mul_(up), self.mlp.down.weight.t())
    return M.rms_norm(h.view(L, B, D), eps=self.eps)


def speed(model, batch: int, forward) -> float:
    M.Block.forward = forward
    return inference(model, batch, (9, 9))["segments_per_s_max"]


torch.manual_seed(0)
model = M.EqR(PAPER_SUDOKU).eval()
x, carry = torch.randint(1, 11, (2, 9, 9)), model.initial_carry(2, 81)
outs = []
for forward in (written, fused):
    M.Block.forward = forward
    with torch.inference_mode():
        outs.append(model(carry, x, torch.Generator().manual_seed(1)).logits)
print(f"max |difference| of the logits: {(outs[0] - outs[1]).abs().max():.1e}")
for batch in [int(b) for b in sys.argv[1:]] or [1, 16, 64]:
    for _ in range(2):
        print(f"batch {batch:3}: as written {speed(model, batch, written):5.2f}  "
              f"fused {speed(model, batch, fused):5.2f} segments/s", flush=True)
