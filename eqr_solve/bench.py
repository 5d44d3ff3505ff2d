"""Throughput benchmark: matmul peak, segment inference, end-to-end solving, training.

FLOPs are counted analytically (``model.flops_per_segment``: 2 per multiply-add, matmuls
only: the per-position channel SwiGLU, the token mixer, the heads). A training step runs
one segment forward (H_cycles*(L_cycles+1) f-calls) and backpropagates through the last
L_cycles+1 f-calls at about twice their forward cost, so it costs
``flops_per_segment * (1 + 2 / H_cycles)``.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

from eqr_solve import model as engine
from eqr_solve.model import EqR, EqRConfig, flops_per_segment, swiglu_width

PAPER_SUDOKU = EqRConfig(vocab_size=11, seq_len=81, hidden_size=512, num_heads=8, L_layers=2,
                         H_cycles=3, L_cycles=6, mixer="mlp_t")


def timed(fn: Callable[[], None], repeats: int, warmup: int = 1) -> tuple[float, float]:
    """(min, median) seconds of ``fn`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def matmul_backends() -> dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """The plain fp32 GEMMs this machine offers: PyTorch's default BLAS (MKL on x86) and,
    where present, oneDNN (what the engine's CPU inference runs on). The peak is the faster
    of them: a model whose GEMMs beat ``torch.mm`` must not score above 100% of "peak"."""
    fns = {"torch.mm": torch.mm}
    if engine.onednn_available():  # a @ b.T: the same FLOPs on random operands
        fns["oneDNN"] = lambda a, b: torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")
    return fns


@contextmanager
def default_blas() -> Iterator[None]:
    """Run the engine on PyTorch's default BLAS with unfused elementwise ops (no oneDNN):
    the "before" rows of the oneDNN change, measured in the same run."""
    saved, engine.ONEDNN_CPU = engine.ONEDNN_CPU, False
    try:
        yield
    finally:
        engine.ONEDNN_CPU = saved


def paired(fn: Callable[[], None], repeats: int, peak_n: int = 2048, warmup: int = 1,
           backend: str = "torch.mm") -> tuple[list[float], list[float]]:
    """Seconds of ``fn`` and of a plain ``peak_n``-cubed matmul, alternating run by run.

    On a shared host the machine's speed drifts by 20-30% between minutes, so a ratio to one
    peak measured at the start inherits that drift; each run of ``fn`` here has a peak timed
    right beside it, and ``paired_pct`` takes the median of the per-run ratios."""
    mm = matmul_backends()[backend]
    a, b = torch.randn(peak_n, peak_n), torch.randn(peak_n, peak_n)
    for _ in range(warmup):
        fn()
        mm(a, b)
    fn_s, peak_s = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        fn_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        mm(a, b)
        peak_s.append(time.perf_counter() - t)
    return fn_s, peak_s


def alternating(fns: dict[str, Callable[[], None]], repeats: int, backend: str = "torch.mm",
                warmup: int = 0, peak_n: int = 2048) -> dict[str, tuple[list[float], list[float]]]:
    """An A/B (/C...) in one process: every repeat runs each of ``fns`` once, in turn, each run
    paired with a matmul as in ``paired`` (``warmup`` untimed runs before each). Returns, per
    name, the seconds of its runs and of their matmuls (for ``paired_pct``)."""
    out: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            fn_s, peak_s = paired(fn, 1, peak_n, warmup, backend)
            out[name][0].extend(fn_s)
            out[name][1].extend(peak_s)
    return out


def paired_pct(flops: float, fn_s: list[float], peak_s: list[float], peak_n: int) -> float:
    """Median over runs of (GFLOP/s of the run) / (GFLOP/s of the matmul timed beside it)."""
    peak_flops = 2 * peak_n**3
    return 100 * statistics.median(flops / f / (peak_flops / p) for f, p in zip(fn_s, peak_s))


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux), else the architecture."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    return {"cpu": cpu_name(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version()}


def gemm(m: int, k: int, n: int, repeats: int = 5,
         backend: str = "torch.mm") -> tuple[float, float]:
    """(max, median) GFLOP/s of one plain fp32 GEMM of ``m x k`` by ``k x n``."""
    mm = matmul_backends()[backend]
    a = torch.randn(m, k)
    b = torch.randn(n, k) if backend == "oneDNN" else torch.randn(k, n)
    best, med = timed(lambda: mm(a, b), repeats, warmup=2)
    flops = 2 * m * k * n
    return flops / best / 1e9, flops / med / 1e9


def matmul_peak(n: int = 2048, repeats: int = 5) -> dict:
    """fp32 GEMM GFLOP/s, the fastest backend's: the physical reference for everything else."""
    each = {name: gemm(n, n, n, repeats, name) for name in matmul_backends()}
    backend = max(each, key=lambda name: each[name][0])
    best, med = each[backend]
    return {"what": f"matmul {n}x{n}x{n} fp32, {backend}", "backend": backend,
            "gflops_max": best, "gflops_median": med,
            "by_backend": {name: g[0] for name, g in each.items()}}


def model_gemm(model: EqR, batch: int, shape: tuple[int, int], repeats: int = 5,
               training: bool = False, backend: str = "torch.mm") -> float:
    """The "comparable shape" reference: GFLOP/s of the model's biggest matmul (the channel
    SwiGLU's up-projection) as one plain GEMM, on the rows one call runs at once (inference
    runs big CPU batches in chunks, training never)."""
    cfg, cells = model.cfg, shape[0] * shape[1]
    rows = batch if training else min(batch, model.rows_per_chunk(cells))
    return gemm(cells * rows, cfg.hidden_size, 2 * swiglu_width(cfg.hidden_size, cfg.expansion),
                repeats, backend)[0]


def inference(model: EqR, batch: int, shape: tuple[int, int], repeats: int = 3,
              peak_n: int = 2048, backend: str = "torch.mm") -> dict:
    """Puzzle-segments/s of one segment forward (inference mode) at a batch size."""
    H, W = shape
    x = torch.randint(1, model.cfg.vocab_size, (batch, H, W))
    carry = model.initial_carry(batch, H * W)

    def run():
        with torch.inference_mode():
            model(carry, x)

    fn_s, peak_s = paired(run, repeats, peak_n, backend=backend)
    best, med = min(fn_s), statistics.median(fn_s)
    flops = flops_per_segment(model.cfg, H * W) * batch
    return {"batch": batch, "segments_per_s_max": batch / best,
            "segments_per_s_median": batch / med, "gflops_max": flops / best / 1e9,
            "pct_peak_paired": paired_pct(flops, fn_s, peak_s, peak_n)}


def training(model: EqR, batch: int, shape: tuple[int, int], repeats: int = 3,
             peak_n: int = 2048, backend: str = "torch.mm") -> dict:
    """Sample-segments/s of a full training step (forward, backward, AdamW)."""
    H, W = shape
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(1, model.cfg.vocab_size, (batch, H, W))
    y = torch.randint(1, model.cfg.vocab_size, (batch, H * W))
    state = {"carry": model.initial_carry(batch, H * W)}

    def step():
        out = model(state["carry"], x)
        state["carry"] = out.carry
        loss = torch.nn.functional.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]),
                                                 y.reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    fn_s, peak_s = paired(step, repeats, peak_n, backend=backend)
    best, med = min(fn_s), statistics.median(fn_s)
    model.eval()
    flops = flops_per_segment(model.cfg, H * W) * (1 + 2 / model.cfg.H_cycles) * batch
    return {"batch": batch, "samples_per_s_max": batch / best,
            "samples_per_s_median": batch / med, "gflops_max": flops / best / 1e9,
            "pct_peak_paired": paired_pct(flops, fn_s, peak_s, peak_n)}


def solving(model: EqR, grids: np.ndarray, depth: int, breadth: int, halt: str) -> dict:
    """End-to-end ``solve`` on a fixed puzzle set: puzzles/s and mean NFE."""
    from eqr_solve.solver import SolveConfig, solve

    t = time.perf_counter()
    res = solve(model, grids, SolveConfig(depth=depth, breadth=breadth, halt=halt))
    seconds = time.perf_counter() - t
    return {"depth": depth, "breadth": breadth, "halt": halt, "puzzles": len(grids),
            "puzzles_per_s": len(grids) / seconds, "seconds": seconds,
            "mean_nfe": float(np.mean([r.nfe for r in res]))}


def load_time(name: str) -> float:
    from eqr_solve import weights

    t = time.perf_counter()
    weights.load(name)
    return time.perf_counter() - t
