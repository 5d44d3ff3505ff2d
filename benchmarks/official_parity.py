"""Parity of eqr-solve with the published EqR code on the tiny official fixtures, run on
this machine: is any gap an implementation difference or fp32 rounding?

The fixtures (``official-{sudoku,maze}-tiny.pth`` and ``*.expected.safetensors``: the
published code's own logits, q_halt and z_H for segments 1-3 from recorded z_H0/z_L0, EMA
weights, noise 0, fp32) were written on another machine. This script runs the published
code (``models/`` of github.com/locuslab/EqR, given with ``--official-dir``, as for
``official_side_by_side.py``) here as well, and prints max |difference| per segment:

- (a) published code, fp32, run here vs the recorded file
- (b) eqr-solve fp32 vs the published code fp32, run here
- (c) eqr-solve fp32 vs the recorded file (what tests/test_official.py checks)
- (d) published code fp32 vs the published code in pure fp64 (its fp32 rounding, amplified)
- (e) eqr-solve fp64 vs the published code in pure fp64 (the implementations themselves)

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/official_parity.py \\
        --official-dir /tmp/official-eqr --reference-dir ../shared/reference/official-checkpoints
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file

from eqr_solve import official, weights

FIXTURES = [("sudoku", None), ("maze", (6, 6))]


def build_official(off, ref: Path, name: str, dtype_name: str):
    ckpt = official.load_checkpoint(ref / f"official-{name}-tiny.pth")
    arch = dict(ckpt["config"]["arch"])
    shadow = {k.removeprefix("_orig_mod."): v for k, v in ckpt["ema"]["shadow"].items()}
    state = {k.removeprefix("model."): v for k, v in shadow.items()}  # ACTLossHead.model
    e = load_file(str(ref / f"official-{name}-tiny.expected.safetensors"))
    B, L = e["inputs"].shape
    cfg = {k: v for k, v in arch.items() if k not in ("name", "short_name", "loss")}
    cfg.update(batch_size=B, seq_len=L, forward_dtype=dtype_name, noise_scale=0.0,
               vocab_size=state["inner.embed_tokens.embedding_weight"].shape[0])
    model = off.EqRModel(cfg)
    model.load_state_dict(state, strict=True)
    return model.eval(), e


def run_official(off, model, e, dtype):
    """Three calls of the published ``EqRModel.forward`` (one segment each) from the recorded
    latents (halted=False: no reset), chaining the carry as its evaluation does."""
    model = model.to(dtype)
    B = e["inputs"].shape[0]
    batch = {"inputs": e["inputs"]}
    carry = off.ModelCarry(
        inner_carry=off.LatentCarry(e["z_H0"].to(dtype).clone(), e["z_L0"].to(dtype).clone()),
        steps=torch.zeros(B, dtype=torch.int32), halted=torch.zeros(B, dtype=torch.bool),
        current_data={k: v.clone() for k, v in batch.items()})
    out = []
    with torch.inference_mode():
        for _ in range(3):
            carry, o = model(carry, batch)
            out.append((o["logits"].double(), o["q_halt_logits"].double(),
                        carry.inner_carry.z_H.double()))
    return out


def diffs(x, y):
    return [[float((a - b).abs().max()) for a, b in zip(sx, sy)] for sx, sy in zip(x, y)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--official-dir", required=True, type=Path)
    ap.add_argument("--reference-dir", required=True, type=Path)
    args = ap.parse_args()
    sys.path.insert(0, str(args.official_dir))
    import models.eqr as off  # the published code

    def rms_fp64(h, variance_epsilon):  # its rms_norm without the fp32 upcast: pure fp64
        return h * torch.rsqrt(h.square().mean(-1, keepdim=True) + variance_epsilon)

    ref = args.reference_dir
    for name, board in FIXTURES:
        model32, e = build_official(off, ref, name, "float32")
        off32 = run_official(off, model32, e, torch.float32)
        rms = off.rms_norm
        off.rms_norm = rms_fp64
        off64 = run_official(off, build_official(off, ref, name, "float64")[0], e, torch.float64)
        off.rms_norm = rms
        recorded = [tuple(e[f"{k}_{i + 1}"].double() for k in ("logits", "q", "z_H"))
                    for i in range(3)]
        dst = Path(tempfile.mkdtemp()) / f"{name}.safetensors"
        official.convert_file(ref / f"official-{name}-tiny.pth", dst, board)
        ours, info = weights.load(str(dst))
        ours.cfg = replace(ours.cfg, noise_scale=0.0)
        ours32 = official.replay_fixture(ours, e, info.board, torch.float32)
        ours64 = official.replay_fixture(ours, e, info.board, torch.float64)
        rows = [("(a) published fp32 here vs recorded file", diffs(off32, recorded)),
                ("(b) eqr-solve fp32 vs published fp32", diffs(ours32, off32)),
                ("(c) eqr-solve fp32 vs recorded file", diffs(ours32, recorded)),
                ("(d) published fp32 vs published fp64", diffs(off32, off64)),
                ("(e) eqr-solve fp64 vs published fp64", diffs(ours64, off64))]
        print(f"\n{name}: max |diff| per segment (logits / q_halt / z_H)")
        for label, d in rows:
            print(f"{label:42s}" + "".join(f"  seg{k + 1} {a:8.1e} {b:8.1e} {c:8.1e}"
                                             for k, (a, b, c) in enumerate(d)))


if __name__ == "__main__":
    main()
