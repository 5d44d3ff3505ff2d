"""``python -m eqr_solve ...`` is ``eqr-solve ...``; it is also how torchrun starts a
data-parallel run: ``torchrun --nproc-per-node N -m eqr_solve train ...``."""

from eqr_solve.cli import app

app(prog_name="eqr-solve")
