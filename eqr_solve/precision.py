"""Which floating-point type the network runs in on this machine: bf16 where it is really
faster (CUDA; CPUs with AMX / AVX512-BF16, confirmed by a short cached calibration), fp32
elsewhere. CPUs without native bf16 run a bf16 matmul far slower than fp32, so the choice is
measured per machine, never assumed.

What stays fp32 whatever is chosen (docs/deviations.md): the residual score and every
selection statistic, the halting comparison, the loss, the EMA and the optimizer's master
weights. Only the network's weights and activations become bf16, and at inference the
latents too (training keeps its carry in fp32: autocast).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
NAMES = {v: k for k, v in DTYPES.items()}
MIN_SPEEDUP = 2.0  # auto takes bf16 on a CPU only when its matmul is at least this much faster
# the paper model's channel SwiGLU at 16 puzzles (81 cells each), the shape that dominates
CALIBRATION_SHAPE = (16 * 81, 512, 1536)


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_bf16() -> bool:
    """The CPU advertises native bf16 matmul (AMX tiles or AVX512-BF16 dot products)."""
    return bool(cpu_flags() & {"amx_bf16", "avx512_bf16"})


def cache_file() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "eqr-solve" / "dtype-calibration.json"


def machine_key() -> str:
    from eqr_solve.bench import cpu_name

    return f"{cpu_name()}|{platform.machine()}|torch {torch.__version__}|" \
           f"{torch.get_num_threads()} threads"


def matmul_seconds(dtype: torch.dtype, repeats: int = 5) -> float:
    m, k, n = CALIBRATION_SHAPE
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return best


def calibrate() -> dict:
    """bf16 vs fp32 matmul speed on this CPU (about 0.1 s), cached per machine and torch."""
    path, key = cache_file(), machine_key()
    try:
        cached = json.loads(path.read_text())
        if (isinstance(cached, dict) and cached.get("key") == key
                and isinstance(cached.get("speedup"), (int, float))):
            return cached
    except (OSError, ValueError):  # unreadable or broken: measure again
        pass
    fp32, bf16 = matmul_seconds(torch.float32), matmul_seconds(torch.bfloat16)
    result = {"key": key, "fp32_s": fp32, "bf16_s": bf16, "speedup": fp32 / bf16}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result) + "\n")
        os.replace(tmp, path)
    except OSError:  # a read-only home only costs the calibration again next time
        pass
    return result


def resolve(name: str, device: torch.device) -> torch.dtype:
    """``auto``, ``fp32`` or ``bf16`` -> the dtype to run in on ``device``."""
    if name not in ("auto", *DTYPES):
        raise ValueError(f"unknown dtype {name!r}; choose auto, fp32 or bf16")
    if name != "auto":
        return DTYPES[name]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if device.type != "cpu" or not cpu_has_bf16():
        return torch.float32
    return torch.bfloat16 if calibrate()["speedup"] >= MIN_SPEEDUP else torch.float32
