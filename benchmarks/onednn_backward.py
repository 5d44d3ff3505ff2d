"""Training steps of the sudoku-9x9-cpu recipe (batch 64) with the autograd cycle's GEMMs on
PyTorch's default GEMM (as the engine does) vs on oneDNN through a custom autograd function
(forward and grad_x on oneDNN, grad_w with torch.mm), alternating step by step (6 each), each
step paired with a 2048^3 matmul on oneDNN. Checks first that both give the same gradients.
Usage: python benchmarks/onednn_backward.py"""

import copy
import statistics
import types
from functools import partial

import torch
import torch.nn.functional as F

from eqr_solve import bench
from eqr_solve import model as M
from eqr_solve import train as T

onednn = torch.ops.mkldnn._linear_pointwise


class OneDNNLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return onednn(x, w, None, "none", [], "")

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        grad_x = onednn(grad, w.t().contiguous(), None, "none", [], "")
        grad_w = grad.reshape(-1, grad.shape[-1]).t() @ x.reshape(-1, x.shape[-1])
        return grad_x, grad_w


def onednn_linear(x, w, b=None):
    if x.device.type == "cpu" and x.dtype == torch.float32 and torch.is_grad_enabled():
        return OneDNNLinear.apply(x, w)
    return F.linear(x, w, b)


plain = M.F
with_onednn = types.SimpleNamespace(**{k: getattr(F, k) for k in dir(F) if k[:2] != "__"})
with_onednn.linear = onednn_linear

recipe = T.load_recipe("train/sudoku-9x9-cpu.toml")
torch.manual_seed(0)
model = M.EqR(T.model_config(recipe)).train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
batch = 64
x, y = torch.randint(1, 11, (batch, 9, 9)), torch.randint(1, 11, (batch, 81))
state = {"carry": model.initial_carry(batch, 81)}


def step(functional) -> None:
    M.F = functional
    out = model(state["carry"], x)
    state["carry"] = out.carry
    F.cross_entropy(out.logits.reshape(-1, 11), y.reshape(-1)).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


probe = copy.deepcopy(model)
carry = probe.initial_carry(4, 81)
for functional in (plain, with_onednn):
    M.F = functional
    probe.zero_grad()
    probe(carry, x[:4], torch.Generator().manual_seed(3)).logits.square().mean().backward()
    norm = sum(p.grad.norm() ** 2 for p in probe.parameters() if p.grad is not None).sqrt()
    print(f"gradient norm {norm.item():.9f}")
runs = bench.alternating({"torch.mm": partial(step, plain), "oneDNN": partial(step, with_onednn)},
                         6, "oneDNN", warmup=1)
flops = M.flops_per_segment(model.cfg, 81) * (1 + 2 / model.cfg.H_cycles) * batch
for name, (s, p) in runs.items():
    print(f"{name}: {batch / statistics.median(s):.1f} samples/s, "
          f"{bench.paired_pct(flops, s, p, 2048):.0f}% paired")
