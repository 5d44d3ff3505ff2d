"""Named sets of inference settings: ``default`` (eqr-solve's own) and ``paper``.

``paper`` is the EqR paper's released evaluation (reference spec §4): every trajectory runs all
D segments (no halting, no retries), B restarts start from independent random latents and
get noise at every f-call (the model's own β), one restart per puzzle is chosen by the smallest
mean L2 logit change over its last 3 segments (computed in fp32), and accuracy is read at the
final segment. ``eqr-solve eval --protocol paper`` reports that top-1 accuracy with pass@k
(k < B), any-correct and the majority vote; ``eqr-solve sudoku|maze --protocol paper`` solves
with the same settings (``--halt none --retries 0 --budget 0 --select residual``).
"""

from __future__ import annotations

from eqr_solve.errors import InputError

PROTOCOLS: dict[str, dict] = {
    "default": {},
    "paper": {"halt": "none", "retries": 0, "budget": 0, "select": "residual", "window": 3},
}
DESCRIPTIONS = {
    "default": "eqr-solve defaults",
    "paper": "paper: all D segments, no halting, top-1 by the mean logit change over the last "
             "3 segments",
}


def apply(name: str, given: dict) -> dict:
    """The settings of protocol ``name`` merged into ``given`` (the user's options, None where
    not given). A given option that contradicts the protocol is refused with one line."""
    if name not in PROTOCOLS:
        raise InputError(f"unknown protocol {name!r}; choose {' or '.join(PROTOCOLS)}")
    out = dict(given)
    for key, value in PROTOCOLS[name].items():
        if key not in given:
            continue
        if given[key] is not None and given[key] != value:
            raise InputError(f"--protocol {name} runs with --{key} {value}; it cannot be "
                             f"combined with --{key} {given[key]}")
        out[key] = value
    return out
