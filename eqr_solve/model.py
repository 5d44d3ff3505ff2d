"""The Equilibrium Reasoner network: a weight-tied two-latent recurrence (TRM backbone)
with random initial latents (RI) and a damped, noisy update (NI).

One *segment* runs ``H_cycles`` x (``L_cycles`` z_L-updates + one z_H-update); only the last
cycle carries gradients and the outgoing carry is detached, so training can cut a long
trajectory into segments (SOT). The model knows nothing about puzzles: it maps token grids
``[B, H, W]`` and a carry to logits ``[B, H*W, V]`` and a halting logit ``[B]``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eqr_solve import cpu_engine

MAX_PARAMETERS = 500_000_000  # a model file describing more is refused (4.9M for the paper's)
TRUNC_STD = 0.8796256610342398  # std of a standard normal truncated to [-2, 2]
# Inference on CPU runs a big batch in row chunks whose largest intermediate stays under this:
# bigger buffers are mmapped and page-faulted afresh on every call (measured with
# benchmarks/row_chunks.py: the paper model at batch 256 ran at 8.6 segments/s unchunked,
# 15.2 chunked; docs/performance.md).
CPU_CHUNK_BYTES = 16 * 2**20


@dataclass
class EqRConfig:
    vocab_size: int
    seq_len: int  # cells per board; the mlp_t mixer needs it fixed, attention ignores it
    hidden_size: int = 128
    expansion: float = 4.0
    num_heads: int = 8
    L_layers: int = 2
    H_cycles: int = 3
    L_cycles: int = 6
    mixer: str = "mlp_t"  # "mlp_t" (MLP across positions), "attn" or "conv" (3x3 neighbours)
    pos_encoding: str = "none"  # "none", "rope" (1-D) or "rope2d" (row/column)
    rope_theta: float = 10000.0
    lambda_: float = 0.95  # weight on the NEW value in the damped update (paper: 1 - λ)
    noise_scale: float = 0.01  # β, std of the noise added on every f-call
    init_std: float = 1.0  # σ0 of the random initial latents
    random_init: bool = True  # RI; False = TRM's fixed init vectors
    down_proj_init_scale: float = 0.1  # see docs/deviations.md: keeps the recurrence contractive
    q_pool: str = "first"  # halting logit from cell 0 ("first", the reference), from the mean
    # latent over cells ("mean") or a smooth minimum of every cell's logit ("softmin")
    rms_norm_eps: float = 1e-5
    q_outputs: int = 1  # halting-head outputs; only the first (q_halt) is used. The paper's
    # released checkpoints have 2 (an unused q_continue), kept so they load strictly

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EqRConfig:
        """A config from untrusted data (a file's metadata, a recipe): every field is checked
        for type and range, and the model's size against a budget, before anything is built
        (a hostile ``H_cycles=1e9`` or ``hidden_size=1e7`` must fail here, not hang)."""
        if not isinstance(d, dict):
            raise ValueError("model config must be a mapping")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(sorted(unknown))}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        def integer(name: str, lo: int, hi: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"model config {name}={v!r}: must be an integer in [{lo}, {hi}]")

        def real(name: str, lo: float, hi: float, open_lo: bool = False) -> None:
            v = getattr(self, name)
            ok = (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                  and (lo < v if open_lo else lo <= v) and v <= hi)
            if not ok:
                raise ValueError(f"model config {name}={v!r}: must be a number in "
                                 f"{'(' if open_lo else '['}{lo}, {hi}]")

        def choice(name: str, options: tuple) -> None:
            if getattr(self, name) not in options:
                raise ValueError(f"model config {name}={getattr(self, name)!r}: choose "
                                 f"{', '.join(options)}")

        integer("vocab_size", 2, 4096)
        integer("seq_len", 0, 1_000_000)
        integer("hidden_size", 1, 8192)
        integer("num_heads", 1, 1024)
        integer("L_layers", 1, 64)
        integer("H_cycles", 1, 64)
        integer("L_cycles", 1, 64)
        integer("q_outputs", 1, 2)
        real("expansion", 0.0, 16.0, open_lo=True)
        real("rope_theta", 0.0, 1e9, open_lo=True)
        real("lambda_", 0.0, 1.0, open_lo=True)
        real("noise_scale", 0.0, 10.0)
        real("init_std", 0.0, 100.0)
        real("down_proj_init_scale", 0.0, 100.0)
        real("rms_norm_eps", 0.0, 1.0, open_lo=True)
        choice("mixer", ("mlp_t", "attn", "conv"))
        choice("pos_encoding", ("none", "rope", "rope2d"))
        choice("q_pool", ("first", "mean", "softmin"))
        if not isinstance(self.random_init, bool):
            raise ValueError(f"model config random_init={self.random_init!r}: must be true/false")
        if self.mixer == "mlp_t" and self.seq_len < 1:
            raise ValueError("model config: the mlp_t mixer needs seq_len >= 1")
        if self.hidden_size % self.num_heads:
            raise ValueError("model config: hidden_size must be a multiple of num_heads")
        if self.parameter_estimate() > MAX_PARAMETERS:
            raise ValueError(f"model config describes ~{self.parameter_estimate():,} "
                             f"parameters, over the {MAX_PARAMETERS:,} this tool accepts")

    def parameter_estimate(self) -> int:
        D = self.hidden_size
        inter = swiglu_width(D, self.expansion)
        per_block = 3 * D * inter + (3 * self.seq_len * swiglu_width(self.seq_len, self.expansion)
                                     if self.mixer == "mlp_t" else 4 * D * D)
        return self.L_layers * per_block + 2 * self.vocab_size * D


def variant(cfg: EqRConfig, name: str) -> EqRConfig:
    """The paper's ablations as one switch: "eqr" (RI+NI), "ri" (RI only), "trm" (neither)."""
    if name == "eqr":
        return cfg
    if name == "ri":
        return replace(cfg, lambda_=1.0, noise_scale=0.0, random_init=True)
    if name == "trm":
        return replace(cfg, lambda_=1.0, noise_scale=0.0, random_init=False)
    raise ValueError(f"unknown variant {name!r}; choose eqr, ri or trm")


def trunc_normal_(t: Tensor, std: float, generator: torch.Generator | None = None) -> Tensor:
    """Truncated normal on [-2, 2] rescaled so the std is exactly ``std`` (JAX-style)."""
    if std == 0:
        return t.zero_()
    with torch.no_grad():
        nn.init.trunc_normal_(t, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=generator)
        return t.mul_(std / TRUNC_STD)


def wide_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp32 at least: where sums are accumulated and noise is drawn (fp64 stays fp64)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def rms_norm(x: Tensor, dim: int = -1, eps: float = 1e-5) -> Tensor:
    """Parameter-free RMSNorm (the reference has no learnable gain); the mean square is
    accumulated in fp32 at least (as the reference; fp64 stays fp64). Over the last dim it is
    PyTorch's fused kernel (3.5x quicker than the three ops in bf16 on CPU); over another dim
    (the token MLP's norm over positions) without autograd it scales ``x`` in place: ``x``
    must then be a fresh intermediate."""
    if dim in (-1, x.dim() - 1):
        return F.rms_norm(x, (x.shape[-1],), eps=eps)
    scale = torch.rsqrt(x.pow(2).mean(dim, keepdim=True, dtype=wide_dtype(x.dtype)) + eps)
    if torch.is_grad_enabled():
        return (x * scale).to(x.dtype)
    return x.mul_(scale)


def swiglu_width(dim: int, expansion: float) -> int:
    inter = round(expansion * dim * 2 / 3)
    return -(-inter // 256) * 256


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)) (+ an optional residual); gate and up are the two halves of
    one ``gate_up`` weight (the reference's parameter layout). CPU inference runs it on oneDNN
    with the elementwise ops fused into the GEMMs (cpu_engine.py); the result is the same."""

    def __init__(self, dim: int, expansion: float):
        super().__init__()
        inter = swiglu_width(dim, expansion)
        self.gate_up = nn.Linear(dim, 2 * inter, bias=False)
        self.down = nn.Linear(inter, dim, bias=False)

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        if cpu_engine.applies(x):
            return cpu_engine.swiglu(self, x, residual)
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        out = self.down(F.silu(gate) * up)
        return out if residual is None else out + residual


class TokenMLP(SwiGLU):
    """SwiGLU across the L positions of sequence-major latents ``[L, B, D]``: the (row,
    channel) columns are the GEMM rows, read through a transposed view; the output comes back
    as a transposed view."""

    def forward(self, h: Tensor) -> Tensor:
        L, B, D = h.shape
        return super().forward(h.reshape(L, B * D).t()).t().view(L, B, D)


def rope_tables(cfg: EqRConfig, height: int, width: int, device) -> tuple[Tensor, Tensor]:
    """cos/sin tables ``[L, head_dim]`` in the half-split layout, 1-D or 2-D (row | column).
    The frequencies are computed as the reference computes them, 1 / theta^(2i/d) in fp32
    (theta^(-2i/d) differs in the last bit for some i)."""
    head_dim = cfg.hidden_size // cfg.num_heads

    def frequencies(dim: int) -> Tensor:
        return 1.0 / (cfg.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float32,
                                                       device=device) / dim))

    if cfg.pos_encoding == "rope":
        inv = frequencies(head_dim)
        a = torch.outer(torch.arange(height * width, device=device).float(), inv)
        angles = torch.cat([a, a], dim=-1)
    else:  # rope2d: the first half of each head turns with the row, the second with the column
        half = head_dim // 2
        inv = frequencies(half)
        rows = torch.arange(height, device=device).repeat_interleave(width).float()
        cols = torch.arange(width, device=device).repeat(height).float()
        ar, ac = torch.outer(rows, inv), torch.outer(cols, inv)
        angles = torch.cat([ar, ar, ac, ac], dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor, two_d: bool) -> Tensor:
    """Rotate ``x [B, heads, L, head_dim]``; 2-D RoPE rotates each half of head_dim separately."""

    def rotate(t: Tensor) -> Tensor:
        a, b = t.chunk(2, dim=-1)
        return torch.cat([-b, a], dim=-1)

    if two_d:
        x1, x2 = x.chunk(2, dim=-1)
        c1, c2 = cos.chunk(2, dim=-1)
        s1, s2 = sin.chunk(2, dim=-1)
        return torch.cat([x1 * c1 + rotate(x1) * s1, x2 * c2 + rotate(x2) * s2], dim=-1)
    return x * cos + rotate(x) * sin


class Attention(nn.Module):
    def __init__(self, cfg: EqRConfig):
        super().__init__()
        self.num_heads = cfg.num_heads
        self.two_d = cfg.pos_encoding == "rope2d"
        self.qkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size, bias=False)
        self.out = nn.Linear(cfg.hidden_size, cfg.hidden_size, bias=False)

    def forward(self, h: Tensor, rope: tuple[Tensor, Tensor] | None) -> Tensor:
        L, B, D = h.shape
        heads = self.num_heads
        q, k, v = self.qkv(h).view(L, B, 3, heads, D // heads).permute(2, 1, 3, 0, 4)
        if rope is not None:
            # rotated in fp32 (the tables are fp32, as the reference), then cast back
            q = apply_rope(q, *rope, self.two_d).to(v.dtype)
            k = apply_rope(k, *rope, self.two_d).to(v.dtype)
        y = F.scaled_dot_product_attention(q, k, v)  # [B, heads, L, head_dim]
        return self.out(y.permute(2, 0, 1, 3).reshape(L, B, D))


class NeighbourMix(nn.Module):
    """Depthwise 3x3 mixing over the board: each cell adds a per-channel weighted sum of
    itself and its 8 neighbours (zero outside the board). Local and translation-equivariant,
    so the same weights run on any board size and each f-call moves information one cell;
    the recurrence supplies the reach (see docs/deviations.md: the maze model)."""

    def __init__(self, cfg: EqRConfig):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(3, 3, cfg.hidden_size))

    def forward(self, h: Tensor, shape: tuple[int, int]) -> Tensor:
        # Nine shifted products summed in the activations' dtype. F.conv2d (depthwise,
        # channels-last) is 1.2x quicker per segment and more exact in bf16, but with it the
        # bundled maze model solved fewer 30x30 mazes at the defaults (78-79% against 85-90%
        # over two seeds, n = 100; docs/performance.md), so the model keeps the arithmetic it
        # was measured with.
        L, B, D = h.shape
        H, W = shape
        padded = F.pad(h.view(H, W, B, D), (0, 0, 0, 0, 1, 1, 1, 1))
        out = padded[:H, :W] * self.weight[0, 0]
        for i in range(3):
            for j in range(3):
                if i or j:
                    out = out + padded[i : i + H, j : j + W] * self.weight[i, j]
        return out.view(L, B, D)


class Block(nn.Module):
    """Post-norm block: token mixing (MLP over positions, attention or 3x3 neighbours), then
    a channel SwiGLU."""

    def __init__(self, cfg: EqRConfig):
        super().__init__()
        self.eps = cfg.rms_norm_eps
        if cfg.mixer == "mlp_t":
            self.mix = TokenMLP(cfg.seq_len, cfg.expansion)
        elif cfg.mixer == "attn":
            self.mix = Attention(cfg)
        elif cfg.mixer == "conv":
            self.mix = NeighbourMix(cfg)
        else:
            raise ValueError(f"unknown mixer {cfg.mixer!r}")
        self.mlp = SwiGLU(cfg.hidden_size, cfg.expansion)

    def forward(self, h: Tensor, rope: tuple[Tensor, Tensor] | None,
                shape: tuple[int, int]) -> Tensor:
        """``h`` is sequence-major ``[L, B, D]`` on a board of ``shape``; post-norm after
        each residual."""
        if isinstance(self.mix, TokenMLP):  # the norm runs over positions, as in the reference
            h = rms_norm(h + self.mix(h), dim=0, eps=self.eps)
        elif isinstance(self.mix, NeighbourMix):
            h = rms_norm(h + self.mix(h, shape), eps=self.eps)
        else:
            h = rms_norm(h + self.mix(h, rope), eps=self.eps)
        return rms_norm(self.mlp(h, residual=h), eps=self.eps)


@dataclass
class Carry:
    """The two latents of every trajectory in a batch, each ``[B, L, D]`` (batch-major, so
    rows are easy to select, reset and save)."""

    z_H: Tensor
    z_L: Tensor

    def __getitem__(self, idx) -> Carry:
        return Carry(self.z_H[idx], self.z_L[idx])

    def __len__(self) -> int:
        return self.z_H.shape[0]


@dataclass
class SegmentOutput:
    carry: Carry  # detached
    logits: Tensor  # [B, L, V]
    q_halt: Tensor  # [B], halt when > 0


class EqR(nn.Module):
    def __init__(self, cfg: EqRConfig):
        super().__init__()
        if cfg.hidden_size % cfg.num_heads:
            raise ValueError("hidden_size must be a multiple of num_heads")
        if cfg.pos_encoding != "none" and cfg.mixer != "attn":
            raise ValueError("rotary position encodings need mixer='attn'")
        if cfg.q_pool not in ("first", "mean", "softmin"):
            raise ValueError(f"unknown q_pool {cfg.q_pool!r}; choose first, mean or softmin")
        self.cfg = cfg
        D = cfg.hidden_size
        self.embed = nn.Embedding(cfg.vocab_size, D)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.L_layers))
        self.lm_head = nn.Linear(D, cfg.vocab_size, bias=False)
        self.q_head = nn.Linear(D, cfg.q_outputs)
        # TRM's fixed initial latents, used only when random_init is False
        self.register_buffer("H_init", torch.zeros(D))
        self.register_buffer("L_init", torch.zeros(D))
        self._rope_cache: dict = {}
        self.reset_parameters()

    def reset_parameters(self) -> None:
        D = self.cfg.hidden_size
        for module in self.modules():
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, 1 / math.sqrt(module.in_features))
        for block in self.blocks:
            for swiglu in (block.mlp, block.mix):
                if isinstance(swiglu, SwiGLU):
                    swiglu.down.weight.data.mul_(self.cfg.down_proj_init_scale)
            if isinstance(block.mix, NeighbourMix):  # its output projection, scaled likewise
                trunc_normal_(block.mix.weight, self.cfg.down_proj_init_scale / 3)
        trunc_normal_(self.embed.weight, 1 / math.sqrt(D))
        trunc_normal_(self.lm_head.weight, 1 / math.sqrt(D))
        with torch.no_grad():
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5.0)
        trunc_normal_(self.H_init, 1.0)
        trunc_normal_(self.L_init, 1.0)

    # -- carry -------------------------------------------------------------------------------
    def initial_carry(
        self, batch: int, seq_len: int, generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Carry:
        """Fresh latents: i.i.d. truncated normal per element (RI) or TRM's fixed vectors.
        Always drawn in fp32 (the same draws whatever the latents' ``dtype``)."""
        D, device = self.cfg.hidden_size, self.H_init.device
        if not self.cfg.random_init:
            return Carry(
                self.H_init.expand(batch, seq_len, D).to(dtype, copy=True),
                self.L_init.expand(batch, seq_len, D).to(dtype, copy=True),
            )
        z = torch.empty(2, batch, seq_len, D, device=device)
        trunc_normal_(z, self.cfg.init_std, generator)
        z = z.to(dtype)
        return Carry(z[0], z[1])

    def reset_rows(self, carry: Carry, rows: Tensor, generator=None) -> Carry:
        """Re-initialise the rows where ``rows`` is True (halted trajectories restart)."""
        if not bool(rows.any()):
            return carry
        fresh = self.initial_carry(int(rows.sum()), carry.z_H.shape[1], generator,
                                   carry.z_H.dtype)
        z_H, z_L = carry.z_H.clone(), carry.z_L.clone()
        z_H[rows], z_L[rows] = fresh.z_H, fresh.z_L
        return Carry(z_H, z_L)

    # -- recurrence ----------------------------------------------------------------------------
    def rope(self, height: int, width: int):
        if self.cfg.pos_encoding == "none":
            return None
        key = (height, width, self.H_init.device)
        if key not in self._rope_cache:
            self._rope_cache[key] = rope_tables(self.cfg, height, width, self.H_init.device)
        return self._rope_cache[key]

    def f(self, z: Tensor, injection: Tensor, board, generator, noise: float,
          pool: Tensor | None = None) -> Tensor:
        """One f-call: z <- (1-λ)·z + λ·blocks(z + injection) + β·ε. ``board`` is
        (rope tables or None, (H, W)); ``noise`` is β; ``pool`` (inference on CPU, see
        ``noise_pool``) supplies ε. Latents may be kept in fp32 while the blocks run in the
        weights' dtype (bf16): the blend and the noise then happen in fp32."""
        u = z + injection
        grad = torch.is_grad_enabled()
        eager = False  # the no-grad cycles of CPU bf16 training: fused bf16, not compiled
        if not torch.is_autocast_enabled(u.device.type):
            u = u.to(self.embed.weight.dtype)
        elif not grad and u.device.type == "cpu":
            u, eager = u.to(torch.get_autocast_dtype("cpu")), cpu_engine.applies(u)
        for block in self.blocks:
            u = block.forward(u, *board) if eager else block(u, *board)
        if u.dtype != z.dtype:
            u = u.to(z.dtype)
        cfg = self.cfg
        if cfg.lambda_ != 1.0:  # u is fresh, so without autograd it can take the result
            u = torch.lerp(z, u, cfg.lambda_) if grad else u.lerp_(z, 1.0 - cfg.lambda_)
        if noise and pool is not None:  # a window of the pool at a random offset and sign
            n = z.numel()
            draw = int(torch.randint(0, 2 * (pool.numel() - n + 1), (1,), generator=generator))
            eps = pool[draw // 2 : draw // 2 + n].view(z.shape)
            u.add_(eps, alpha=noise if draw % 2 else -noise)
        elif noise:
            # drawn in fp32 (bf16 sampling is 1.8x slower here) and rounded once when added
            eps = torch.randn(z.shape, device=z.device, generator=generator,
                              dtype=wide_dtype(z.dtype))
            if grad:
                u = u + (noise * eps).to(u.dtype)
            else:
                u.add_(eps, alpha=noise)
        return u

    def noise_pool(self, z: Tensor, generator) -> Tensor | None:
        """Inference on CPU draws one segment's noise at once: 2N fresh N(0, 1) values for
        latents of N elements, in their dtype, and each f-call reads a window of N at a random
        offset with a random sign. Every ε is still N(0, 1) per element and independent across
        elements; across the f-calls of one segment the windows overlap (shifted copies). The
        Mersenne Twister behind ``torch.randn`` runs on one core at ~3 ns per value, 10-25% of a
        segment when drawn per f-call (docs/deviations.md). Training keeps a fresh draw per
        f-call; so does CUDA, where drawing is cheap."""
        if self.training or torch.is_grad_enabled() or z.device.type != "cpu":
            return None
        pool = torch.randn(2 * z.numel(), generator=generator, dtype=wide_dtype(z.dtype))
        return pool.to(z.dtype)

    def latent_recursion(self, z_H, z_L, x, board, generator, noise: float,
                         pool: Tensor | None = None):
        injection = z_H + x  # z_H is fixed during the z_L cycles: one add, not L_cycles
        for _ in range(self.cfg.L_cycles):
            z_L = self.f(z_L, injection, board, generator, noise, pool)
        z_H = self.f(z_H, z_L, board, generator, noise, pool)
        return z_H, z_L

    def rows_per_chunk(self, seq_len: int) -> int:
        """Rows per inference chunk on CPU (see CPU_CHUNK_BYTES)."""
        cfg = self.cfg
        widest = seq_len * 2 * swiglu_width(cfg.hidden_size, cfg.expansion)
        if cfg.mixer == "mlp_t":
            widest = max(widest, 2 * swiglu_width(cfg.seq_len, cfg.expansion) * cfg.hidden_size)
        elif cfg.mixer == "attn":
            widest = max(widest, cfg.num_heads * seq_len * seq_len)
        return max(1, CPU_CHUNK_BYTES // (4 * widest))

    def forward(
        self, carry: Carry, inputs: Tensor, generator: torch.Generator | None = None,
        noise: float | None = None,
    ) -> SegmentOutput:
        """One segment on token grids ``inputs [B, H, W]``; returns the detached new carry.
        ``noise`` overrides the model's β for this call. Without gradients on CPU a big batch
        runs in row chunks (same result, faster)."""
        B, H, W = inputs.shape
        rows = self.rows_per_chunk(H * W)
        if B <= rows or torch.is_grad_enabled() or inputs.device.type != "cpu":
            return self.segment(carry, inputs, generator, noise)
        parts = [self.segment(carry[i : i + rows], inputs[i : i + rows], generator, noise)
                 for i in range(0, B, rows)]
        return SegmentOutput(
            Carry(torch.cat([p.carry.z_H for p in parts]), torch.cat([p.carry.z_L for p in parts])),
            torch.cat([p.logits for p in parts]),
            torch.cat([p.q_halt for p in parts]),
        )

    def segment(self, carry: Carry, inputs: Tensor, generator=None,
                noise: float | None = None) -> SegmentOutput:
        """One segment on one batch. Inside, latents are sequence-major ``[L, B, D]`` (see
        TokenMLP); the carry, logits and everything outside stay batch-major."""
        noise = self.cfg.noise_scale if noise is None else noise
        B, H, W = inputs.shape
        board = (self.rope(H, W), (H, W))
        x = self.embed(inputs.reshape(B, H * W).long().t()) * math.sqrt(self.cfg.hidden_size)
        z_H, z_L = carry.z_H.transpose(0, 1).contiguous(), carry.z_L.transpose(0, 1).contiguous()
        pool = self.noise_pool(z_H, generator) if noise else None
        with torch.no_grad():
            for _ in range(self.cfg.H_cycles - 1):
                z_H, z_L = self.latent_recursion(z_H, z_L, x, board, generator, noise, pool)
        z_H, z_L = self.latent_recursion(z_H, z_L, x, board, generator, noise, pool)
        head_in = z_H if torch.is_autocast_enabled(z_H.device.type) else z_H.to(x.dtype)
        # logits in fp32 outside autocast: the residual compares them across segments, and
        # bf16 logits keep moving by their rounding step (bf16 15x15 mazes settled 28% later)
        logits = F.linear(head_in.float(), self.lm_head.weight.float()).transpose(0, 1)
        # the halting head reads cell 0 (as the reference); a local mixer never brings global
        # information there, so a conv model pools over cells: the mean latent, or a smooth
        # minimum of every cell's halting logit (one unsettled cell vetoes; docs/deviations.md)
        if self.cfg.q_pool == "softmin":
            q_halt = -torch.logsumexp(-self.q_head(head_in)[..., 0].float(), dim=0)
        elif self.cfg.q_pool == "mean":
            q_halt = self.q_head(head_in.mean(0))[..., 0].float()
        else:
            q_halt = self.q_head(head_in[0])[..., 0].float()
        new = Carry(z_H.detach().transpose(0, 1), z_L.detach().transpose(0, 1))
        return SegmentOutput(new, logits, q_halt)

    def compile_blocks(self) -> bool:
        """torch.compile the blocks in place (parameter names unchanged); False when the
        compiler is unavailable (e.g. no C++ toolchain), leaving the model eager."""
        x = torch.zeros(self.cfg.seq_len or 4, 2, self.cfg.hidden_size,
                        device=self.H_init.device, dtype=self.embed.weight.dtype)
        board = (self.rope(1, x.shape[0]), (1, x.shape[0]))
        try:
            for block in self.blocks:
                block.compile(dynamic=True)
                with torch.no_grad():
                    block(x, *board)
        except Exception:  # any compiler failure: eager is always correct
            for block in self.blocks:
                block._compiled_call_impl = None
            return False
        return True


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_segment(cfg: EqRConfig, seq_len: int) -> int:
    """Forward FLOPs of one segment for one puzzle (2 per multiply-add; matmuls only)."""
    D, L = cfg.hidden_size, seq_len
    inter = swiglu_width(D, cfg.expansion)
    channel = 2 * L * (D * 2 * inter + inter * D)
    if cfg.mixer == "mlp_t":
        t_inter = swiglu_width(cfg.seq_len, cfg.expansion)
        mix = 2 * D * (L * 2 * t_inter + t_inter * L)
    elif cfg.mixer == "conv":
        mix = 2 * 9 * L * D
    else:
        mix = 2 * L * (D * 3 * D + D * D) + 2 * 2 * L * L * D  # projections + scores + values
    f_calls = cfg.H_cycles * (cfg.L_cycles + 1)
    heads = 2 * L * D * cfg.vocab_size
    return f_calls * cfg.L_layers * (channel + mix) + heads
