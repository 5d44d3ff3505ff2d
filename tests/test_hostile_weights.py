"""Model files with hostile or broken metadata and tensors: refused with one line before
anything big is built (issue: reliability and security, item 4)."""

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from eqr_solve import weights
from eqr_solve.model import EqR
from tests.conftest import tiny_config


def rewrite(path, changes=None, tensors=None, **meta_updates):
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        data = {k: f.get_tensor(k) for k in f.keys()}
    if changes is not None:
        cfg = json.loads(meta["config"])
        cfg.update(changes)
        meta["config"] = json.dumps(cfg)
    meta.update(meta_updates)
    save_file(tensors(data) if tensors else data, str(path), metadata=meta)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "m.safetensors"
    torch.manual_seed(0)
    weights.save(EqR(tiny_config()), path, "sudoku", (4, 4))
    return path


@pytest.mark.parametrize("change", [
    {"H_cycles": 10**9}, {"hidden_size": 10**7}, {"mixer": "transformer"},
    {"L_layers": -1}, {"L_cycles": 0}, {"hidden_size": 32.5}, {"num_heads": "8"},
    {"lambda_": float("nan")}, {"noise_scale": -1.0}, {"random_init": "yes"},
    {"expansion": 1e9}, {"vocab_size": True}, {"surprise": 1},
])
def test_bad_config_values_are_refused(model_file, change):
    rewrite(model_file, changes=change)
    with pytest.raises(weights.WeightsError, match="broken model metadata") as e:
        weights.load(str(model_file))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("updates", [
    {"meta": json.dumps([1, 2, 3])}, {"board": json.dumps([4, 4, 4])},
    {"board": json.dumps([0, 4])}, {"board": json.dumps([3, 3])}, {"kind": "chess"},
    {"config": "[]"}, {"config": "{" * 100_000},
])
def test_bad_metadata_is_refused(model_file, updates):
    rewrite(model_file, **updates)
    with pytest.raises(weights.WeightsError, match="broken model metadata"):
        weights.read_info(model_file)


def test_integer_tensors_are_refused(model_file):
    rewrite(model_file, tensors=lambda d: {k: v.to(torch.int32) for k, v in d.items()})
    with pytest.raises(weights.WeightsError, match="not a floating-point tensor"):
        weights.load(str(model_file))


def test_extra_or_reshaped_tensors_are_refused(model_file):
    rewrite(model_file, tensors=lambda d: dict(d, extra=torch.zeros(3)))
    with pytest.raises(weights.WeightsError, match="do not match"):
        weights.load(str(model_file))
    rewrite(model_file, tensors=lambda d: {k: v.flatten() for k, v in d.items()})
    with pytest.raises(weights.WeightsError, match="do not match"):
        weights.load(str(model_file))


def test_bf16_file_loads(model_file):
    rewrite(model_file, tensors=lambda d: {k: v.bfloat16() for k, v in d.items()})
    model, _ = weights.load(str(model_file))
    assert next(model.parameters()).dtype == torch.float32
