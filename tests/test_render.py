import numpy as np

from eqr_solve.render import trace_line
from eqr_solve.solver import Result


def result(**kw) -> Result:
    base = dict(answer=np.zeros((2, 2), np.uint8), valid=True, steps=5, nfe=40, restart=2,
                residuals=[0.5, 0.1, 0.01], q=[1.0] * 5, seconds=0.5,
                restart_steps=np.full(8, 5))
    return Result(**(base | kw))


def test_trace_line_says_how_the_answer_was_chosen():
    """Halted or not, which restart of how many, the NFE, and whether the halting head
    rejected every answer."""
    line = trace_line(result(), depth=64, halt="residual").plain
    assert "halted (residual) at 5/64" in line and "restart 3 of 8" in line
    assert "NFE 40" in line and "✓ valid" in line and "rejected" not in line
    line = trace_line(result(rejected=True, valid=False), 64, "residual").plain
    assert "rejected every answer" in line and "not a valid solution" in line
