"""The CPU inference fast path: each SwiGLU as three oneDNN GEMMs with its elementwise op
fused in (gate + silu, up + product, down + residual) on pre-packed weights, in fp32 or bf16.

The model (model.py) calls one function, ``swiglu``, when ``applies`` says the fast path
can run: CPU, fp32 or bf16, no autograd, not being traced by torch.compile, and an x86 build
of PyTorch with oneDNN. Everywhere else the model runs its plain PyTorch SwiGLU, which is the
same math. Measured (docs/performance.md): on the development EPYC the paper model's SwiGLU
ran at 185 vs 118-124 GFLOP/s (81 rows) in fp32 against PyTorch's default GEMM
(benchmarks/onednn_swiglu.py); in bf16 on an AMX Xeon the fused epilogues make the SwiGLU
3.3x faster than unfused bf16 ops.

Rule for this path: it writes into fresh intermediates only, never into a tensor the caller
still holds (tests: ``test_fused_cpu_path_matches_plain_pytorch``,
``test_inference_leaves_carry_and_inputs_untouched``).
"""

from __future__ import annotations

import platform
import weakref

import torch
from torch import Tensor, nn


def available() -> bool:
    """oneDNN's fused linear op is there (x86 CPU builds of PyTorch)."""
    try:
        return (torch.backends.mkldnn.is_available() and platform.machine() in ("x86_64", "AMD64")
                and hasattr(torch.ops.mkldnn, "_linear_pointwise")
                and hasattr(torch.ops.mkldnn, "_reorder_linear_weight"))
    except Exception:  # an op registry without the mkldnn namespace
        return False


ENABLED = available()  # tests switch it off to compare with the plain PyTorch path


def applies(x: Tensor) -> bool:
    """Whether the fast path runs on ``x``: CPU, fp32 or bf16, no autograd, not traced."""
    return (ENABLED and x.device.type == "cpu" and x.dtype in (torch.float32, torch.bfloat16)
            and not torch.is_grad_enabled() and not torch.compiler.is_compiling())


def linear(x: Tensor, weight: Tensor, post: str = "none", other: Tensor | None = None) -> Tensor:
    """One oneDNN GEMM ``x @ weight.T`` with ``post`` fused in: "none", "swish" (silu), or
    "mul" / "add" with ``other``; ``weight`` may be packed (``packed_weights``)."""
    if other is None:
        return torch.ops.mkldnn._linear_pointwise(x, weight, None, post, [], "")
    return torch.ops.mkldnn._linear_pointwise.binary(x, other, weight, None, post)


# per SwiGLU module: (weight versions and dtype, packed gate, up, down); weak, so copies and
# pickles of a model never carry packed tensors (they have no storage to copy)
_PACKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def packed_weights(swiglu: nn.Module, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """gate, up and down of ``swiglu`` in oneDNN's own layout and ``dtype``, packed once per
    weight version: inference then does not re-pack them on every call (+17-20% at 81 rows,
    +3-6% at 1,296: benchmarks/packed_weights.py). Any in-place change of the weights (an
    optimizer step, a load) bumps their version and re-packs. Weights created under
    ``torch.inference_mode`` have no version counter, so they are packed on every call.
    bf16 activations get bf16 copies of fp32 weights (the no-grad cycles of bf16 training)."""
    w_gu, w_d = swiglu.gate_up.weight, swiglu.down.weight
    if w_gu.is_inference() or w_d.is_inference():
        return _pack(w_gu, w_d, dtype)
    key = (w_gu._version, w_d._version, w_gu.data_ptr(), w_d.data_ptr(), dtype)
    cached = _PACKED.get(swiglu)
    if cached is None or cached[0] != key:
        cached = _PACKED[swiglu] = (key, *_pack(w_gu, w_d, dtype))
    return cached[1:]


def _pack(w_gu: Tensor, w_d: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    pack = torch.ops.mkldnn._reorder_linear_weight
    gate, up = w_gu.detach().to(dtype).chunk(2, dim=0)
    return pack(gate, None), pack(up, None), pack(w_d.detach().to(dtype), None)


def swiglu(module: nn.Module, x: Tensor, residual: Tensor | None = None) -> Tensor:
    """``down(silu(gate(x)) * up(x)) (+ residual)`` as three fused GEMMs. A strided ``x`` (the
    token MLP's transposed view) is copied once here, as each GEMM would copy it otherwise."""
    gate_w, up_w, down_w = packed_weights(module, x.dtype)
    x = x.contiguous()
    product = linear(x, up_w, "mul", linear(x, gate_w, "swish"))
    if residual is None:
        return linear(product, down_w)
    return linear(product, down_w, "add", residual)
