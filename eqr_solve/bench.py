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
from collections.abc import Callable, Sequence

import numpy as np
import torch

from eqr_solve import cpu_engine
from eqr_solve.errors import InputError
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
    """The plain GEMMs this machine offers: PyTorch's default (MKL for fp32, oneDNN for bf16
    on x86) and, where present, oneDNN's linear (what the engine's CPU inference runs on). The
    peak is the faster of them: a model whose GEMMs beat ``torch.mm`` must not score above
    100% of "peak". Each dtype is measured against its own peak."""
    fns = {"torch.mm": torch.mm}
    if cpu_engine.available():  # a @ b.T: the same FLOPs on random operands
        fns["oneDNN"] = lambda a, b: torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")
    return fns


def paired(fn: Callable[[], None], repeats: int, peak_n: int = 2048, warmup: int = 1,
           backend: str = "torch.mm", dtype: torch.dtype = torch.float32
           ) -> tuple[list[float], list[float]]:
    """Seconds of ``fn`` and of a plain ``peak_n``-cubed matmul, alternating run by run.

    On a shared host the machine's speed drifts by 20-30% between minutes, so a ratio to one
    peak measured at the start inherits that drift; each run of ``fn`` here has a peak timed
    right beside it, and ``paired_pct`` takes the median of the per-run ratios."""
    mm = matmul_backends()[backend]
    a, b = torch.randn(peak_n, peak_n, dtype=dtype), torch.randn(peak_n, peak_n, dtype=dtype)
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
                warmup: int = 0, peak_n: int = 2048, dtype: torch.dtype = torch.float32,
                ) -> dict[str, tuple[list[float], list[float]]]:
    """An A/B (/C...) in one process: every repeat runs each of ``fns`` once, in turn, each run
    paired with a matmul as in ``paired`` (``warmup`` untimed runs before each). Returns, per
    name, the seconds of its runs and of their matmuls (for ``paired_pct``)."""
    out: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            fn_s, peak_s = paired(fn, 1, peak_n, warmup, backend, dtype)
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


def gemm(m: int, k: int, n: int, repeats: int = 5, backend: str = "torch.mm",
         dtype: torch.dtype = torch.float32) -> tuple[float, float]:
    """(max, median) GFLOP/s of one plain GEMM of ``m x k`` by ``k x n`` in ``dtype``."""
    mm = matmul_backends()[backend]
    a = torch.randn(m, k, dtype=dtype)
    b = torch.randn(n, k, dtype=dtype) if backend == "oneDNN" else torch.randn(k, n, dtype=dtype)
    best, med = timed(lambda: mm(a, b), repeats, warmup=2)
    flops = 2 * m * k * n
    return flops / best / 1e9, flops / med / 1e9


def matmul_peak(n: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32) -> dict:
    """GEMM GFLOP/s in ``dtype``, the fastest backend's: the reference for that dtype."""
    each = {name: gemm(n, n, n, repeats, name, dtype) for name in matmul_backends()}
    backend = max(each, key=lambda name: each[name][0])
    best, med = each[backend]
    name = str(dtype).removeprefix("torch.")
    return {"what": f"matmul {n}x{n}x{n} {name}, {backend}", "backend": backend,
            "gflops_max": best, "gflops_median": med,
            "by_backend": {name: g[0] for name, g in each.items()}}


def model_gemm(model: EqR, batch: int, shape: tuple[int, int], repeats: int = 5,
               training: bool = False, backend: str = "torch.mm",
               dtype: torch.dtype = torch.float32) -> float:
    """The "comparable shape" reference: GFLOP/s of the model's biggest matmul (the channel
    SwiGLU's up-projection) as one plain GEMM, on the rows one call runs at once (inference
    runs big CPU batches in chunks, training never)."""
    cfg, cells = model.cfg, shape[0] * shape[1]
    rows = batch if training else min(batch, model.rows_per_chunk(cells))
    return gemm(cells * rows, cfg.hidden_size, 2 * swiglu_width(cfg.hidden_size, cfg.expansion),
                repeats, backend, dtype)[0]


def inference(model: EqR, batch: int, shape: tuple[int, int], repeats: int = 3,
              peak_n: int = 2048, backend: str = "torch.mm") -> dict:
    """Puzzle-segments/s of one segment forward (inference mode) at a batch size, in the
    model's dtype (latents too), paired with a matmul peak of that dtype."""
    H, W = shape
    dtype = next(model.parameters()).dtype
    x = torch.randint(1, model.cfg.vocab_size, (batch, H, W))
    carry = model.initial_carry(batch, H * W, dtype=dtype)

    def run():
        with torch.inference_mode():
            model(carry, x)

    fn_s, peak_s = paired(run, repeats, peak_n, backend=backend, dtype=dtype)
    best, med = min(fn_s), statistics.median(fn_s)
    flops = flops_per_segment(model.cfg, H * W) * batch
    return {"batch": batch, "dtype": str(dtype).removeprefix("torch."),
            "segments_per_s_max": batch / best,
            "segments_per_s_median": batch / med, "gflops_max": flops / best / 1e9,
            "pct_peak_paired": paired_pct(flops, fn_s, peak_s, peak_n)}


def training_step(model: EqR, batch: int, shape: tuple[int, int],
                  dtype: torch.dtype = torch.float32) -> Callable[[], None]:
    """One training step on random tokens (forward under the trainer's autocast, cross
    entropy, backward, AdamW), carrying its latents from call to call; puts ``model`` in
    training mode."""
    H, W = shape
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(1, model.cfg.vocab_size, (batch, H, W))
    y = torch.randint(1, model.cfg.vocab_size, (batch, H * W))
    state = {"carry": model.initial_carry(batch, H * W)}

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            out = model(state["carry"], x)
        state["carry"] = out.carry
        loss = torch.nn.functional.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]),
                                                 y.reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def training(model: EqR, batch: int, shape: tuple[int, int], repeats: int = 3,
             peak_n: int = 2048, backend: str = "torch.mm",
             dtype: torch.dtype = torch.float32) -> dict:
    """Sample-segments/s of a full training step (forward, backward, AdamW); bf16 is the
    trainer's autocast (fp32 master weights), paired with a bf16 matmul peak."""
    H, W = shape
    step = training_step(model, batch, shape, dtype)
    fn_s, peak_s = paired(step, repeats, peak_n, backend=backend, dtype=dtype)
    best, med = min(fn_s), statistics.median(fn_s)
    model.eval()
    flops = flops_per_segment(model.cfg, H * W) * (1 + 2 / model.cfg.H_cycles) * batch
    return {"batch": batch, "dtype": str(dtype).removeprefix("torch."),
            "samples_per_s_max": batch / best,
            "samples_per_s_median": batch / med, "gflops_max": flops / best / 1e9,
            "pct_peak_paired": paired_pct(flops, fn_s, peak_s, peak_n)}


def solving(model: EqR, grids: np.ndarray, depth: int, breadth: int, halt: str) -> dict:
    """End-to-end ``solve`` in the model's dtype."""
    from eqr_solve.solver import SolveConfig, solve

    t = time.perf_counter()
    res = solve(model, grids, SolveConfig(depth=depth, breadth=breadth, halt=halt))
    seconds = time.perf_counter() - t
    return {"depth": depth, "breadth": breadth, "halt": halt, "puzzles": len(grids),
            "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
            "puzzles_per_s": len(grids) / seconds, "seconds": seconds,
            "mean_nfe": float(np.mean([r.nfe for r in res]))}


def load_time(name: str) -> float:
    from eqr_solve import weights

    t = time.perf_counter()
    weights.load(name)
    return time.perf_counter() - t


PARTS = ("inference", "solving", "training")
DTYPE_CHOICES = ("both", "auto", "fp32", "bf16")


def run(batches: Sequence[int] = (1, 16, 64, 256), repeats: int = 3, compiled: bool = True,
        quick: bool = False, parts: Sequence[str] = PARTS, dtype: str = "both",
        models: Sequence[str] | None = None, recipes: Sequence[str] | None = None,
        progress: Callable[[str], None] | None = None) -> dict:
    """The whole ``eqr-solve bench`` report: each dtype's matmul peak, segment inference of
    the paper's Sudoku model and the bundled models (eager and, with ``compiled``,
    torch.compile'd), end-to-end solving with and without ACT, and a training step of every
    CPU recipe. ``dtype`` is fp32, bf16, both or auto (the one the tool picks here); each dtype
    is measured against its own peak. ``quick`` measures one model at a small peak size, no
    solving or training rows. ``progress(line)`` hears of every measurement as it ends."""
    import copy

    from eqr_solve import precision, weights
    from eqr_solve import train as trainer
    from eqr_solve.data import generate

    say = progress or (lambda line: None)
    if not set(parts) <= set(PARTS):
        raise InputError(f"parts are {', '.join(PARTS)}, not {', '.join(parts)}")
    if dtype not in DTYPE_CHOICES:
        raise InputError(f"dtype is one of {', '.join(DTYPE_CHOICES)}, not {dtype!r}")
    if not batches or min(batches) < 1 or repeats < 1:
        raise InputError("batch sizes and repeats must be at least 1")
    cpu = torch.device("cpu")
    dtypes = [torch.float32, torch.bfloat16] if dtype == "both" else [precision.resolve(dtype,
                                                                                        cpu)]
    report: dict = {"machine": dict(machine(), cpu_bf16=precision.cpu_has_bf16(),
                                    auto_dtype=precision.NAMES[precision.resolve("auto", cpu)]),
                    "peaks": {}, "inference": [], "solving": [], "training": []}
    peak_n = 512 if quick else 2048
    for dt in dtypes:
        peak = matmul_peak(peak_n, repeats, dt)
        report["peaks"][precision.NAMES[dt]] = peak
        each = ", ".join(f"{k} {v:.0f}" for k, v in peak["by_backend"].items())
        say(f"peak: {peak['gflops_max']:.0f} GFLOP/s ({peak['what']}; {each})")
    report["peak"] = report["peaks"][precision.NAMES[dtypes[0]]]
    torch.manual_seed(0)
    todo = [("paper-sudoku", EqR(PAPER_SUDOKU).eval(), (9, 9))]
    for info in weights.list_bundled():
        m, _ = weights.load(str(info.path))
        todo.append((info.name, m, info.board or (15, 15)))
    if models:
        todo = [t for t in todo if t[0] in models]
    if quick:
        todo = todo[:1]
    if compiled:  # every model and batch size recompiles the shared Block.forward; past the
        # default limit (8) dynamo silently runs eager, and "compiled" rows would be mislabelled
        import torch._dynamo.config as dynamo_config

        dynamo_config.recompile_limit = 256
    for dt in dtypes:
        peak = report["peaks"][precision.NAMES[dt]]
        backend = peak["backend"]
        for name, model, shape in todo if "inference" in parts else []:
            m = copy.deepcopy(model).to(dt)
            variants = [("eager", m)]
            if compiled:
                c = copy.deepcopy(m)
                if c.compile_blocks():
                    variants.append(("compiled", c))
            for mode, v in variants:
                for b in batches:
                    r = inference(v, b, shape, repeats, peak_n, backend)
                    g = model_gemm(v, b, shape, backend=backend, dtype=dt)
                    r.update(model=name, mode=mode, gemm_gflops=g,
                             pct_gemm=100 * r["gflops_max"] / g,
                             pct_peak=100 * r["gflops_max"] / peak["gflops_max"])
                    report["inference"].append(r)
                    say(f"  {name} {mode} {r['dtype']} batch {b}: "
                        f"{r['segments_per_s_max']:.1f} seg/s")
    if any(i.name == "sudoku-9x9" for i in weights.list_bundled()) and not quick \
            and "solving" in parts:
        report["load_seconds"] = load_time("sudoku-9x9")
        grids = generate("sudoku", 16, seed=123, n=9, blanks=[40, 50]).inputs
        for dt in dtypes:
            model, _ = weights.load("sudoku-9x9", "cpu", dt)
            for depth, breadth, n in ((16, 1, 16), (64, 8, 4)):
                for halt in ("none", "act"):
                    r = solving(model, grids[:n], depth, breadth, halt)
                    report["solving"].append(r)
                    say(f"  solve {r['dtype']} D{depth} B{breadth} {halt}: "
                        f"{r['puzzles_per_s']:.2f}/s")
    recipe_files = ([] if quick or "training" not in parts
                    else sorted(trainer.RECIPES_DIR.glob("*cpu*.toml")))
    if recipes:
        recipe_files = [p for p in recipe_files if p.stem in recipes]
    for path in recipe_files:
        rec = trainer.load_recipe(str(path))
        if rec.get("init_from"):  # a fine-tune stage: the same shapes as the recipe it starts from
            continue
        shape = tuple(rec["board"]) if rec.get("board") else (15, 15)
        batch = trainer.train_config(rec).batch_size
        for dt in dtypes:
            peak = report["peaks"][precision.NAMES[dt]]
            model = EqR(trainer.model_config(rec))
            modes = ["eager"] + (["compiled"] if compiled else [])
            for mode in modes:  # compiled last: compile_blocks changes the model in place
                if mode == "compiled" and not model.compile_blocks():
                    continue
                r = training(model, batch, shape, repeats, peak_n, peak["backend"], dt)
                g = model_gemm(model, batch, shape, training=True, backend=peak["backend"],
                               dtype=dt)
                r.update(recipe=path.stem, mode=mode, gemm_gflops=g,
                         pct_gemm=100 * r["gflops_max"] / g,
                         pct_peak=100 * r["gflops_max"] / peak["gflops_max"])
                report["training"].append(r)
                say(f"  train {path.stem} {mode} {r['dtype']}: "
                    f"{r['samples_per_s_max']:.1f} samples/s")
    return report
