"""Where the time of one inference segment goes: torch.profiler over segments of the paper
Sudoku model (random weights), self CPU time per op, grouped into GEMM and the rest.
Usage: python benchmarks/profile_segment.py [BATCH ...]   (default: 1 16 64)"""

import sys

import torch
from torch.profiler import ProfilerActivity, profile

from eqr_solve.bench import PAPER_SUDOKU
from eqr_solve.model import EqR

GEMM_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear",
            "mkldnn::_linear_pointwise"}


def report(prof: profile, calls: int, what: str, top: int = 10) -> None:
    """Print the profiled time per call of ``what``, the GEMMs' share, and the ``top`` ops by
    self CPU time (``calls`` of ``what`` were profiled)."""
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    gemm = sum(e.self_cpu_time_total for e in events if e.key in GEMM_OPS)
    print(f"{what}: {total / calls / 1e3:.1f} ms each, GEMM {gemm / total:.0%} of it")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]:
        print(f"  {e.key:40} {e.self_cpu_time_total / total:6.1%}  calls {e.count // calls}")


if __name__ == "__main__":
    torch.manual_seed(0)
    model = EqR(PAPER_SUDOKU).eval()
    for batch in [int(b) for b in sys.argv[1:]] or [1, 16, 64]:
        x = torch.randint(1, 11, (batch, 9, 9))
        carry = model.initial_carry(batch, 81)
        with torch.inference_mode():
            model(carry, x)  # warm-up
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(2):
                    model(carry, x)
        report(prof, 2, f"batch {batch} segment")
