"""In-model A/B of engine variants tried on 2026-11-26 (commits 7ad86a2-fbfce5d), against
the engine as it is, on the paper Sudoku model, alternating run by run, each run paired with
a 2048^3 matmul on the fastest backend. Prints segments/s and % of the paired peak (medians).
  token-mkl-view  the token MLP's K = 81 GEMMs with MKL on the transposed view (one GEMM for
                  gate and up, silu and product in place), its down projection on oneDNN;
  token-mkl-left  the token MLP as MKL weight-on-the-left GEMMs (as before commit a1686dc);
  blocks-N        every SwiGLU in row blocks of N rows (intermediates stay in L2);
  chunk-N         inference chunks whose largest intermediate is N MiB (now: 16);
  no-noise        β = 0: no Gaussian noise drawn (an upper bound on what faster noise buys);
  noise-threads   the noise drawn in two halves on two threads, each with its own generator
                  seeded from the caller's (torch.randn is one Mersenne Twister on one core);
  unhoisted       the z_L cycles' injection z_H + x added on every f-call (before commit fbfce5d;
                  now once per cycle: kept);
  vecnorm         rms_norm from torch.linalg.vector_norm (one pass, no x² buffer);
  token-residual  the token MLP's residual add fused into its down GEMM in the transposed
                  layout, the norm over positions on that layout, then one copy back.
Usage: python benchmarks/variants_ab.py BATCHES REPEATS VARIANT ...
  e.g. python benchmarks/variants_ab.py 1,4,16 4 token-mkl-view token-mkl-left"""

import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import torch
import torch.nn.functional as F

from eqr_solve import bench
from eqr_solve import model as M

as_is_token, as_is_swiglu, as_is_chunk = M.TokenMLP.forward, M.SwiGLU.forward, M.CPU_CHUNK_BYTES
as_is_f, as_is_recursion, as_is_norm = M.EqR.f, M.EqR.latent_recursion, M.rms_norm
as_is_block = M.Block.forward
pool = ThreadPoolExecutor(2)


def token_mkl_view(self, h):
    L, B, D = h.shape
    if not M.fused_cpu(h):
        return as_is_token(self, h)
    gate, up = (h.reshape(L, B * D).t() @ self.gate_up.weight.t()).chunk(2, -1)
    product = F.silu(gate, inplace=True).mul_(up)
    return M.linear(product, self.packed_weights()[2]).t().view(L, B, D)


def token_mkl_left(self, h):
    L, B, D = h.shape
    if not M.fused_cpu(h):
        return as_is_token(self, h)
    gate, up = (self.gate_up.weight @ h.reshape(L, B * D)).chunk(2, 0)
    return (self.down.weight @ F.silu(gate, inplace=True).mul_(up)).view(L, B, D)


def row_blocks(rows):
    def forward(self, x, residual=None):
        if not M.fused_cpu(x) or x.shape[0] <= rows:
            return as_is_swiglu(self, x, residual)
        xs = x.split(rows)
        rs = residual.split(rows) if residual is not None else [None] * len(xs)
        return torch.cat([as_is_swiglu(self, a, r) for a, r in zip(xs, rs)])
    return forward


def fill(half, generator):
    with torch.inference_mode():  # thread-local: a worker starts outside the caller's mode
        half.normal_(generator=generator)


def randn_threads(shape, generator):
    out = torch.empty(shape)
    seeds = torch.randint(0, 2**62, (2,), generator=generator).tolist()
    list(pool.map(fill, out.view(-1).chunk(2), [torch.Generator().manual_seed(s) for s in seeds]))
    return out


def f_noise_threads(self, z, injection, board, generator):
    u = z + injection
    for block in self.blocks:
        u = block(u, *board)
    u.lerp_(z, 1.0 - self.cfg.lambda_)
    return u.add_(randn_threads(z.shape, generator), alpha=self.cfg.noise_scale)


def recursion_unhoisted(self, z_H, z_L, x, board, generator):
    for _ in range(self.cfg.L_cycles):
        z_L = self.f(z_L, z_H + x, board, generator)
    z_H = self.f(z_H, z_L, board, generator)
    return z_H, z_L


def norm_vector(x, dim=-1, eps=1e-5):
    n = torch.linalg.vector_norm(x, dim=dim, keepdim=True)
    return x.mul_(n.square_().div_(x.shape[dim]).add_(eps).rsqrt_())


def block_token_residual(self, h, rope, shape):
    L, B, D = h.shape
    x = h.reshape(L, B * D).t().contiguous()
    h = M.SwiGLU.forward(self.mix, x, residual=x).t().view(L, B, D)  # h + mix(h), transposed
    h = M.rms_norm(h, dim=0, eps=self.eps).contiguous()
    return M.rms_norm(self.mlp(h, residual=h), eps=self.eps)


def use(variant: str) -> None:
    """Put the engine into ``variant`` ("as-is" restores it)."""
    M.TokenMLP.forward, M.SwiGLU.forward, M.CPU_CHUNK_BYTES = as_is_token, as_is_swiglu, \
        as_is_chunk
    M.EqR.f, M.EqR.latent_recursion, M.rms_norm = as_is_f, as_is_recursion, as_is_norm
    M.Block.forward = as_is_block
    model.cfg.noise_scale = 0.01
    if variant == "token-mkl-view":
        M.TokenMLP.forward = token_mkl_view
    elif variant == "token-mkl-left":
        M.TokenMLP.forward = token_mkl_left
    elif variant.startswith("blocks-"):
        M.SwiGLU.forward = row_blocks(int(variant.split("-")[1]))
    elif variant.startswith("chunk-"):
        M.CPU_CHUNK_BYTES = int(variant.split("-")[1]) * 2**20
    elif variant == "no-noise":
        model.cfg.noise_scale = 0.0
    elif variant == "noise-threads":
        M.EqR.f = f_noise_threads
    elif variant == "unhoisted":
        M.EqR.latent_recursion = recursion_unhoisted
    elif variant == "vecnorm":
        M.rms_norm = norm_vector
    elif variant == "token-residual":
        M.Block.forward = block_token_residual
    elif variant != "as-is":
        raise SystemExit(f"unknown variant {variant}")


def run(variant: str, carry: M.Carry, x: torch.Tensor) -> None:
    use(variant)
    model(carry, x)


batches = [int(b) for b in sys.argv[1].split(",")]
repeats = int(sys.argv[2])
variants = ["as-is"] + sys.argv[3:]
torch.manual_seed(0)
model = M.EqR(bench.PAPER_SUDOKU).eval()
with torch.inference_mode():  # exact variants compute the same function
    x, carry = torch.randint(1, 11, (2, 9, 9)), model.initial_carry(2, 81)
    h = torch.randn(81, 2, 512)
    assert torch.allclose(norm_vector(h.clone(), 0), as_is_norm(h.clone(), 0), atol=1e-5)
    torch.manual_seed(1)
    ref = model.segment(carry, x).logits
    use("unhoisted")
    torch.manual_seed(1)
    assert torch.equal(ref, model.segment(carry, x).logits)
    use("as-is")
peak = bench.matmul_peak(2048, 3)
for batch in batches:
    x, carry = torch.randint(1, 11, (batch, 9, 9)), model.initial_carry(batch, 81)
    flops = M.flops_per_segment(model.cfg, 81) * batch

    with torch.inference_mode():  # one warm-up run each time: a new path or chunk size
        runs = bench.alternating({v: partial(run, v, carry, x) for v in variants}, repeats,
                                 peak["backend"], warmup=1)
    use("as-is")
    print(f"batch {batch:3}: " + "  ".join(
        f"{v} {batch / statistics.median(s):5.2f} ({bench.paired_pct(flops, s, p, 2048):3.0f}%)"
        for v, (s, p) in runs.items()), flush=True)
