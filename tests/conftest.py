import os

import numpy as np
import pytest
import torch

from eqr_solve.model import EqR, EqRConfig

torch.set_num_threads(2)


def tiny_config(**kw) -> EqRConfig:
    base = dict(vocab_size=6, seq_len=16, hidden_size=32, num_heads=4, L_layers=1, H_cycles=2,
                L_cycles=2, mixer="mlp_t", expansion=2.0)
    base.update(kw)
    return EqRConfig(**base)


@pytest.fixture
def tiny_model() -> EqR:
    """A 4x4-Sudoku-shaped model with random weights (tokens 1..5)."""
    torch.manual_seed(0)
    return EqR(tiny_config()).eval()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(autouse=True, scope="session")
def _no_user_models(tmp_path_factory):
    """Keep the user's registered models ($EQR_MODELS_DIR, ~/.local/share/eqr-solve/models)
    out of every test: an empty directory unless a test points it elsewhere."""
    os.environ["EQR_MODELS_DIR"] = str(tmp_path_factory.mktemp("user-models"))
