"""The dtype choice (eqr_solve/precision.py) and the bf16 paths of model, solver and trainer."""

import copy
import json

import numpy as np
import pytest
import torch

from eqr_solve import precision
from eqr_solve.model import EqR
from eqr_solve.solver import SolveConfig, solve
from tests.conftest import tiny_config

CPU = torch.device("cpu")


def test_explicit_dtypes_and_bad_name():
    assert precision.resolve("fp32", CPU) == torch.float32
    assert precision.resolve("bf16", CPU) == torch.bfloat16
    with pytest.raises(ValueError, match="auto, fp32 or bf16"):
        precision.resolve("fp16", CPU)


def test_auto_is_fp32_without_native_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(precision, "calibrate", lambda: pytest.fail("must not calibrate"))
    assert precision.resolve("auto", CPU) == torch.float32


@pytest.mark.parametrize("speedup, expected", [(5.0, torch.bfloat16), (1.5, torch.float32)])
def test_auto_follows_the_measured_speedup(monkeypatch, speedup, expected):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(precision, "calibrate", lambda: {"speedup": speedup})
    assert precision.resolve("auto", CPU) == expected


def test_calibration_is_cached_per_machine(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []
    monkeypatch.setattr(precision, "matmul_seconds",
                        lambda dt, repeats=5: calls.append(dt) or (4.0 if dt == torch.float32
                                                                   else 1.0))
    first = precision.calibrate()
    assert first["speedup"] == 4.0 and len(calls) == 2
    assert precision.calibrate() == first and len(calls) == 2  # from the cache
    path = precision.cache_file()
    path.write_text(json.dumps(dict(first, key="another machine")))
    precision.calibrate()
    assert len(calls) == 4  # another machine's entry is not trusted


def test_unwritable_cache_still_answers(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file where a folder should be
    monkeypatch.setattr(precision, "matmul_seconds", lambda dt, repeats=5: 1.0)
    assert precision.calibrate()["speedup"] == 1.0


@pytest.mark.parametrize("mixer, pos", [("mlp_t", "none"), ("attn", "rope"),
                                        ("attn", "rope2d"), ("conv", "none")])
def test_bf16_model_tracks_fp32(mixer, pos):
    """Same weights, same initial latents: bf16 logits stay close to fp32 ones."""
    torch.manual_seed(0)
    model = EqR(tiny_config(mixer=mixer, pos_encoding=pos, noise_scale=0.0)).eval()
    half = copy.deepcopy(model).to(torch.bfloat16)
    x = torch.randint(1, 6, (4, 4, 4))
    carry = model.initial_carry(4, 16, torch.Generator().manual_seed(1))
    with torch.inference_mode():
        full = model(carry, x)
        low = half(model.initial_carry(4, 16, torch.Generator().manual_seed(1),
                                       torch.bfloat16), x)
        mixed = half(carry, x)  # fp32 latents under bf16 weights
    assert low.carry.z_H.dtype == torch.bfloat16 and mixed.carry.z_H.dtype == torch.float32
    assert low.q_halt.dtype == torch.float32  # the halting comparison is made in fp32
    for out in (low, mixed):
        err = (out.logits.float() - full.logits).abs().max()
        assert err < 0.05 * full.logits.abs().max()


def test_fused_bf16_path_matches_plain_bf16(monkeypatch):
    import eqr_solve.cpu_engine as model_module

    if not model_module.available():
        pytest.skip("no oneDNN in this PyTorch build")
    torch.manual_seed(0)
    model = EqR(tiny_config(noise_scale=0.0)).eval().to(torch.bfloat16)
    x = torch.randint(1, 6, (3, 4, 4))
    c = model.initial_carry(3, 16, dtype=torch.bfloat16)
    with torch.no_grad():
        fused = model(c, x)
        monkeypatch.setattr(model_module, "ENABLED", False)
        plain = model(c, x)
    scale = plain.logits.float().abs().max()
    assert (fused.logits.float() - plain.logits.float()).abs().max() < 0.05 * scale


def test_solver_runs_in_the_models_dtype():
    torch.manual_seed(0)
    model = EqR(tiny_config()).eval().to(torch.bfloat16)
    grids = np.random.default_rng(0).integers(1, 6, (3, 4, 4)).astype(np.uint8)
    a = solve(model, grids, SolveConfig(depth=4, breadth=2, seed=3))
    b = solve(model, grids, SolveConfig(depth=4, breadth=2, seed=3))
    assert all(np.array_equal(x.answer, y.answer) for x, y in zip(a, b))  # reproducible
    assert all(np.isfinite(x.residuals).all() for x in a)
    seen = []
    real = model.forward

    def spy(carry, *args, **kwargs):
        seen.append(carry.z_H.dtype)
        return real(carry, *args, **kwargs)

    model.forward = spy
    solve(model, grids, SolveConfig(depth=4, breadth=2, seed=3))
    assert set(seen) == {torch.bfloat16}  # bf16 latents under a bf16 model
    seen.clear()
    solve(model, grids, SolveConfig(depth=4, breadth=2, seed=3, fp32_latents=True))
    assert set(seen) == {torch.float32}


def test_bf16_training_step_keeps_fp32_master_weights():
    from eqr_solve import train as T
    from eqr_solve.data import PuzzleStream, generate

    torch.manual_seed(0)
    model = EqR(tiny_config())
    shard = T.Shard(0, 4, PuzzleStream([generate("sudoku", 16, 0, n=4, blanks=6)], [1.0], 0),
                    model, 0, CPU)
    before = [p.detach().clone() for p in model.parameters()]
    T.shard_step(model, shard, T.TrainConfig(halt_max_steps=3), 4, 1, torch.bfloat16)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.dtype ==
               torch.float32 for p in model.parameters() if p.requires_grad)
    assert shard.carry.z_H.dtype == torch.float32  # the carry (and checkpoint) stays fp32
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # no step yet
