"""The paper model's token-mixing half-block, rms_norm(h + TokenMLP(h), dim=0), on latents
``[L, B, D]``, two ways, alternating run by run (GFLOP/s of its three GEMMs, medians):
  linear  as the engine is: the transposed view copied once, three oneDNN linears with fused
          silu / product, the output back as a transposed view, then the residual add;
  conv    the token MLP as oneDNN 1x1 convolutions on h viewed as NCHW [1, L, B, D]: the
          weight multiplies from the left (W @ h), so no transpose or copy, and the residual
          add fuses into the down projection as it does in the channel MLP.
Usage: python benchmarks/token_conv.py BATCHES REPEATS   e.g. 1,16,64 20"""

import statistics
import sys
import time

import torch

from eqr_solve import model as M

L, D = 81, 512
torch.manual_seed(0)
mlp = M.TokenMLP(L, 4.0).eval()
E = mlp.down.weight.shape[1]
gate_w, up_w = (w.contiguous() for w in mlp.gate_up.weight.detach().chunk(2, 0))
down_w = mlp.down.weight.detach()
conv_w = [w[:, :, None, None].contiguous() for w in (gate_w, up_w, down_w)]
conv = torch.ops.mkldnn._convolution_pointwise


def as_linear(h):
    return M.rms_norm(h + mlp(h), dim=0)


def as_conv(h):
    x = h.view(1, L, -1, D)
    gate = conv.default(x, conv_w[0], None, [0, 0], [1, 1], [1, 1], 1, "swish", [], "")
    product = conv.binary(x, gate, conv_w[1], None, [0, 0], [1, 1], [1, 1], 1, "mul", None,
                          None, [], None)
    out = conv.binary(product, x, conv_w[2], None, [0, 0], [1, 1], [1, 1], 1, "add", None,
                      None, [], None)
    return M.rms_norm(out.view(h.shape), dim=0)


with torch.no_grad():
    h = torch.randn(L, 4, D)
    err = (as_linear(h) - as_conv(h)).abs().max().item()
    print(f"max |linear - conv| = {err:.2e}")
    for batch in [int(b) for b in sys.argv[1].split(",")]:
        h = torch.randn(L, batch, D)
        flops = 2 * batch * D * (L * 2 * E + E * L)
        times = {"linear": [], "conv": []}
        for _ in range(int(sys.argv[2])):
            for name, fn in (("linear", as_linear), ("conv", as_conv)):
                fn(h)
                t = time.perf_counter()
                for _ in range(5):
                    fn(h)
                times[name].append((time.perf_counter() - t) / 5)
        print(f"batch {batch}: " + ", ".join(
            f"{n} {flops / statistics.median(s) / 1e9:.0f}" for n, s in times.items()) + " GFLOP/s")
