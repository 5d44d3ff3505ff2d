"""What the SwiGLU's fused silu and product cost: each GEMM of one paper-model layer timed on
the oneDNN path as the engine runs it (gate with its silu, up with its product, down) and
bare (no post-op), plus the token half-block's other parts (transposing copy, strided
residual add, norm over positions). Usage: python benchmarks/epilogue_cost.py [BATCH ...]"""

import sys

import torch

from eqr_solve import cpu_engine as C
from eqr_solve import model as M
from eqr_solve.bench import PAPER_SUDOKU, timed


def best_ms(fn, repeats: int = 40) -> float:
    return 1e3 * timed(fn, repeats, warmup=3)[0]


def swiglu_rows(name: str, swiglu: M.SwiGLU, x: torch.Tensor) -> None:
    gate_w, up_w, down_w = C.packed_weights(swiglu, x.dtype)
    gate = C.linear(x, gate_w, "swish")
    product = C.linear(x, up_w, "mul", gate)
    rows = {
        "gate + silu": (lambda: C.linear(x, gate_w, "swish"), lambda: C.linear(x, gate_w)),
        "up + product": (lambda: C.linear(x, up_w, "mul", gate), lambda: C.linear(x, up_w)),
        "down": (lambda: C.linear(product, down_w), None),
    }
    for part, (fused, bare) in rows.items():
        f = best_ms(fused)
        b = best_ms(bare) if bare else f
        print(f"  {name:7s} {part:13s} {f:6.3f} vs {b:6.3f}  (+{f - b:.3f})")


def token_rows(block: M.Block, h: torch.Tensor) -> None:
    view = h.reshape(h.shape[0], -1).t()
    mixed = block.mix(h)
    summed = h + mixed
    norm = best_ms(lambda: M.rms_norm(summed.clone(), dim=0)) - best_ms(lambda: summed.clone())
    print(f"  {'token copy':28s} {best_ms(lambda: view.contiguous()):6.3f}")
    print(f"  {'token residual add':28s} {best_ms(lambda: h + mixed):6.3f}")
    print(f"  {'token norm over positions':28s} {norm:6.3f}")


torch.manual_seed(0)
block = M.EqR(PAPER_SUDOKU).eval().blocks[0]
with torch.inference_mode():
    for batch in [int(b) for b in sys.argv[1:]] or [16]:
        h = torch.randn(81, batch, 512)
        print(f"batch {batch}: ms per call, fused post-op vs bare GEMM")
        swiglu_rows("channel", block.mlp, h.reshape(81 * batch, 512))
        swiglu_rows("token", block.mix, h.reshape(81, batch * 512).t().contiguous())
        token_rows(block, h)
