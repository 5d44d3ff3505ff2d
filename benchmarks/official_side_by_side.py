"""The published EqR implementation (github.com/locuslab/EqR, ``models/eqr.py``
``InnerNetwork``) side by side with eqr-solve's ``EqR`` on this CPU: the paper's Sudoku model
(hidden 512, 8 heads, expansion 4, L_layers 2, H_cycles 3, L_cycles 6, token MLP, 81 cells,
11 tokens, lambda 0.95, noise 0.01) with the same random weights, one segment per call under
``torch.inference_mode()``, in fp32 and bf16.

The official code is not part of this project: give a directory holding its ``models/`` and
``utils/`` packages (``models/eqr.py``, ``models/layers.py``, ``models/common/__init__.py``;
``utils/printing.py`` may be a stub defining only ``colored_exception``, the one name the
model imports from it) with ``--official-dir`` or ``OFFICIAL_EQR_DIR``. It needs ``pydantic``.

First a parity check: fp32, noise 0, the same z_H0/z_L0, one segment; max |logit
difference| (and halting logit, and z_H) between the two must be small, else the script stops.
The bf16 variants are compared with the fp32 reference for information. Then the four
variants are timed, alternating run by run, each run paired with a ``--peak-n``-cubed fp32
matmul (``eqr_solve.bench.alternating``; the host's speed drifts between minutes):

- official fp32: ``forward_dtype="float32"``;
- official bf16: ``forward_dtype="bfloat16"``, as the paper ran it: fp32 parameters cast to
  bf16 on every call, carry and activations bf16;
- eqr-solve fp32: model and carry fp32;
- eqr-solve bf16: ``model.to(torch.bfloat16)``, carry bf16.

Reported: puzzle-segments/s (batch / median seconds per segment; best run too), the ratio
to official fp32 at the same batch, and % of the paired matmul (median of per-run ratios,
same FLOPs for every variant: ``model.flops_per_segment``). Full run (quiet machine):

    .venv/bin/python benchmarks/official_side_by_side.py --official-dir /tmp/official-eqr \\
        --batches 1,16,64 --repeats 5 --json official_side_by_side.json

What the official code does on CPU that matters for speed (read at locuslab/EqR 8cf0c52):

- ``CastedLinear`` keeps fp32 parameters and calls ``F.linear(x, weight.to(x.dtype))``: in
  bf16 every f-call converts every weight again (4 GEMM weights x 2 layers x 21 f-calls a
  segment, plus the heads), and the bf16 GEMM then reorders that fresh weight each call; in
  fp32 the cast is a no-op and ``F.linear`` goes to PyTorch's default CPU GEMM (MKL on x86),
  unpacked. ``CastedEmbedding`` casts the whole table per call. eqr-solve runs its GEMMs
  through oneDNN's fused linear (silu / product / residual fused in) with weights packed once
  per weight version, in the model's own dtype.
- Element-wise work is unfused: silu, product, residual add, and ``rms_norm``, which upcasts
  to fp32 and back (in bf16: extra full-tensor passes), then the damped update
  ``(1 - lambda) * h + lambda * u + noise`` as separate ops, and ``torch.randn_like`` in the
  latent's dtype on every f-call (bf16 sampling on CPU), drawn even when noise_scale is 0.
- The token MLP runs on ``transpose(1, 2)`` views (``[B, D, L]``), normalised over L there.
- Attention (not in the Sudoku model: mlp_t; ``pos_encodings: rope`` builds RoPE tables that
  the token MLP never uses) is ``F.scaled_dot_product_attention`` on permuted q/k/v on CPU;
  flash-attention only on CUDA. RoPE is applied in fp32 and cast back.
- The whole batch is one call (no row chunks); eqr-solve splits a big CPU batch into row
  chunks (``EqR.rows_per_chunk``: 16 rows for this model), so batch 64 runs as 4 chunks.
- In bf16 the latents, blend and noise are bf16 in both (the eqr-solve bf16 variant here
  keeps its carry in bf16 too).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
from pathlib import Path

import torch

from eqr_solve import bench
from eqr_solve import official as converter
from eqr_solve.model import Carry, EqR, EqRConfig, flops_per_segment

OFFICIAL_REVISION = "8cf0c526bb19555d4961b64430e2b947799bcb5b"  # what the notes above describe
BOARD = (9, 9)
VARIANTS = ("official fp32", "official bf16", "eqr-solve fp32", "eqr-solve bf16")
PARITY_TOL = 1e-3  # default max |logit difference| accepted in fp32 (--parity-tol)


def official_arch(hidden: int) -> dict:
    """config/arch/eqr.yaml + config/train/eqr_sudoku.yaml (mlp_t) of the official repo."""
    return {
        "batch_size": 1, "seq_len": BOARD[0] * BOARD[1], "vocab_size": 11,
        "H_cycles": 3, "L_cycles": 6, "H_layers": 0, "L_layers": 2,
        "hidden_size": hidden, "expansion": 4, "num_heads": 8, "pos_encodings": "rope",
        "board_height": BOARD[0], "board_width": BOARD[1],
        "halt_max_steps": 16, "halt_exploration_prob": 0.1, "mlp_t": True,
        "lambda_": 0.95, "noise_scale": 0.01, "H_init_std": 1.0, "L_init_std": 1.0,
    }


def import_official(directory: str | None):
    """``models.eqr`` from ``directory``; exits with one line when it is not there."""
    if not directory:
        sys.exit("official EqR code not given: pass --official-dir DIR or set OFFICIAL_EQR_DIR "
                 "(a directory with the official models/ and utils/ packages)")
    root = Path(directory).expanduser().resolve()
    if not (root / "models" / "eqr.py").is_file():
        sys.exit(f"official EqR code not found: {root}/models/eqr.py does not exist")
    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module("models.eqr")
    except ImportError as e:
        sys.exit(f"cannot import the official EqR code from {root}: {e}")
    if not Path(module.__file__).resolve().is_relative_to(root):
        sys.exit(f"'models.eqr' resolved to {module.__file__}, not under {root}")
    return module


def build(official, hidden: int):
    """Official InnerNetwork in fp32 and bf16 and eqr-solve's EqR in fp32 and bf16, all with
    the official fp32 network's (random) weights."""
    arch = official_arch(hidden)
    off32 = official.InnerNetwork(official.EqRConfig(**arch, forward_dtype="float32")).eval()
    # the official init zeroes q_head's weight (a constant halting logit): random here, so the
    # parity check compares the halting logit too (same cost either way)
    official.trunc_normal_init_(off32.q_head.weight, std=hidden ** -0.5)
    off16 = official.InnerNetwork(official.EqRConfig(**arch, forward_dtype="bfloat16")).eval()
    off16.load_state_dict(off32.state_dict(), strict=True)  # fp32 parameters in both
    cfg = EqRConfig(  # as eqr_solve.official.convert builds it from a checkpoint's config.arch
        vocab_size=arch["vocab_size"], seq_len=arch["seq_len"], hidden_size=hidden,
        expansion=float(arch["expansion"]), num_heads=arch["num_heads"],
        L_layers=arch["L_layers"], H_cycles=arch["H_cycles"], L_cycles=arch["L_cycles"],
        mixer="mlp_t", pos_encoding="none", lambda_=arch["lambda_"],
        noise_scale=arch["noise_scale"], init_std=arch["H_init_std"], random_init=True,
        down_proj_init_scale=1.0, q_pool="first", rms_norm_eps=1e-5, q_outputs=2,
    )
    # the official state dict under the checkpoint's key prefix, through the converter's own
    # renaming / token-row mapping / strict load
    state = {f"model.inner.{k}": v for k, v in off32.state_dict().items()}
    ours32 = EqR(cfg).eval()
    converter._load(ours32, state, "sudoku", arch["vocab_size"], "official InnerNetwork")
    ours16 = EqR(cfg).eval()
    ours16.load_state_dict(ours32.state_dict(), strict=True)
    ours16.to(torch.bfloat16)
    return {"official fp32": off32, "official bf16": off16,
            "eqr-solve fp32": ours32, "eqr-solve bf16": ours16}, cfg


def calls(official, models: dict, cfg: EqRConfig, batch: int, seed: int,
          noise: float | None = None) -> dict:
    """One closure per variant running one segment on the same puzzles and the same fp32
    initial latents (cast to bf16 for the bf16 variants); each returns (logits, q, z_H)."""
    torch.manual_seed(seed)
    cells = cfg.seq_len
    grids = torch.randint(1, cfg.vocab_size, (batch, *BOARD))
    flat = {"inputs": grids.reshape(batch, cells)}
    z = models["eqr-solve fp32"].initial_carry(batch, cells, torch.Generator().manual_seed(seed))
    fns = {}
    for name, model in models.items():
        dtype = torch.bfloat16 if name.endswith("bf16") else torch.float32
        if name.startswith("official"):
            carry = official.LatentCarry(z.z_H.to(dtype, copy=True), z.z_L.to(dtype, copy=True))

            def run(model=model, carry=carry):
                out, logits, q = model(carry, flat)
                return logits, q, out.z_H
        else:
            carry = (Carry(z.z_H.to(dtype, copy=True), z.z_L.to(dtype, copy=True))
                     if noise is not None else model.initial_carry(batch, cells, dtype=dtype))
            gen = torch.Generator().manual_seed(seed)

            def run(model=model, carry=carry, gen=gen):
                out = model(carry, grids, gen, noise)
                return out.logits, out.q_halt, out.carry.z_H
        fns[name] = run
    return fns


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


def mean_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().mean())


def parity(official, models: dict, cfg: EqRConfig, batch: int) -> dict:
    """Noise 0, same inputs and z0, one segment: every variant against official fp32."""
    saved = {name: m.L_level.noise_scale for name, m in models.items()
             if name.startswith("official")}
    for name in saved:
        models[name].L_level.noise_scale = 0.0
    try:
        with torch.inference_mode():
            outs = {name: fn() for name, fn in calls(official, models, cfg, batch, 1,
                                                     noise=0.0).items()}
    finally:
        for name, value in saved.items():
            models[name].L_level.noise_scale = value
    ref = outs["official fp32"]
    scale = float(ref[0].abs().max())
    report = {"batch": batch, "noise": 0.0, "max_abs_logit": scale}
    for name in VARIANTS[1:]:
        logits, q, z_H = outs[name]
        report[name] = {"logits": max_diff(logits, ref[0]), "q_halt": max_diff(q, ref[1]),
                        "z_H": max_diff(z_H, ref[2]), "logits_mean": mean_diff(logits, ref[0])}
    a, b = outs["eqr-solve bf16"][0], outs["official bf16"][0]
    report["eqr-solve bf16 vs official bf16"] = {"logits": max_diff(a, b),
                                                 "logits_mean": mean_diff(a, b)}
    return report


def timing(official, models: dict, cfg: EqRConfig, batches: list[int], repeats: int,
           warmup: int, peak_n: int, backend: str) -> list[dict]:
    rows = []
    for batch in batches:
        fns = calls(official, models, cfg, batch, 2)
        flops = flops_per_segment(cfg, cfg.seq_len) * batch
        with torch.inference_mode():
            for _ in range(warmup):
                for fn in fns.values():
                    fn()
            runs = bench.alternating(fns, repeats, backend, warmup=0, peak_n=peak_n)
        base = batch / statistics.median(runs["official fp32"][0])
        for name, (seconds, peak_s) in runs.items():
            median = statistics.median(seconds)
            rows.append({
                "batch": batch, "variant": name, "seconds": seconds, "matmul_seconds": peak_s,
                "segments_per_s": batch / median, "segments_per_s_best": batch / min(seconds),
                "vs_official_fp32": batch / median / base,
                "pct_paired": bench.paired_pct(flops, seconds, peak_s, peak_n),
            })
        print(f"  batch {batch}: " + ", ".join(
            f"{r['variant']} {r['segments_per_s']:.2f}" for r in rows if r["batch"] == batch),
            file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| batch | variant | segments/s (median) | best | ms/segment | vs official fp32 "
             "| % paired fp32 matmul |", "|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['batch']} | {r['variant']} | {r['segments_per_s']:.2f} | "
                     f"{r['segments_per_s_best']:.2f} | "
                     f"{1000 * statistics.median(r['seconds']):.1f} | "
                     f"{r['vs_official_fp32']:.2f}x | {r['pct_paired']:.0f}% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official-dir", default=os.environ.get("OFFICIAL_EQR_DIR"),
                    help="directory with the official models/ and utils/ (env OFFICIAL_EQR_DIR)")
    ap.add_argument("--batches", default="1,16,64")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs of each variant first")
    ap.add_argument("--hidden", type=int, default=512, help="512 is the paper's model")
    ap.add_argument("--parity-batch", type=int, default=None,
                    help="batch of the parity check (default: the largest of --batches)")
    ap.add_argument("--parity-tol", type=float, default=PARITY_TOL,
                    help="max |logit difference| in fp32 below which timing goes ahead")
    ap.add_argument("--parity-only", action="store_true", help="stop after the parity check")
    ap.add_argument("--peak-n", type=int, default=2048, help="size of the paired matmul")
    ap.add_argument("--peak-backend", default="torch.mm", choices=list(bench.matmul_backends()))
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    if not batches or min(batches) < 1 or args.repeats < 1:
        sys.exit("--batches needs positive integers and --repeats at least 1")

    official = import_official(args.official_dir)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    models, cfg = build(official, args.hidden)

    par = parity(official, models, cfg, args.parity_batch or max(batches))
    worst = par["eqr-solve fp32"]["logits"]
    print(f"parity (fp32, noise 0, same z0, batch {par['batch']}, |logits| up to "
          f"{par['max_abs_logit']:.2f}): max |logit diff| {worst:.2e}, q_halt "
          f"{par['eqr-solve fp32']['q_halt']:.2e}, z_H {par['eqr-solve fp32']['z_H']:.2e}")
    for name in ("official bf16", "eqr-solve bf16"):
        print(f"  {name} vs official fp32: max |logit diff| {par[name]['logits']:.2e} (mean "
              f"{par[name]['logits_mean']:.2e}), q_halt {par[name]['q_halt']:.2e}, "
              f"z_H {par[name]['z_H']:.2e}")
    both = par["eqr-solve bf16 vs official bf16"]
    print(f"  eqr-solve bf16 vs official bf16: max |logit diff| {both['logits']:.2e} (mean "
          f"{both['logits_mean']:.2e})")
    if not worst <= args.parity_tol:
        sys.exit(f"parity failed: max |logit diff| {worst:.2e} > {args.parity_tol:g} in fp32; "
                 "not timing different models")
    if args.parity_only:
        return

    machine = bench.machine()
    print(f"timing one segment, {args.repeats} alternating repeats, hidden {args.hidden}, "
          f"{machine['threads']} threads, {machine['cpu']}", file=sys.stderr, flush=True)
    rows = timing(official, models, cfg, batches, args.repeats, args.warmup, args.peak_n,
                  args.peak_backend)
    print()
    print(table(rows))

    if args.json:
        args.json.write_text(json.dumps({
            "machine": machine, "official_dir": str(Path(args.official_dir).resolve()),
            "official_revision_described": OFFICIAL_REVISION,
            "official_arch": official_arch(args.hidden), "eqr_solve_config": cfg.to_dict(),
            "gflop_per_segment": flops_per_segment(cfg, cfg.seq_len) / 1e9,
            "repeats": args.repeats, "warmup": args.warmup,
            "paired_matmul": {"n": args.peak_n, "backend": args.peak_backend, "dtype": "fp32"},
            "parity": par, "results": rows,
        }, indent=1) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
