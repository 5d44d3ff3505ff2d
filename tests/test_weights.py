import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from eqr_solve import weights
from eqr_solve.model import EqR
from tests.conftest import tiny_config


def save_tiny(path: Path, kind="sudoku", board=(4, 4), **meta) -> EqR:
    torch.manual_seed(0)
    model = EqR(tiny_config())
    weights.save(model, path, kind, board, meta)
    return model


def test_round_trip(tmp_path):
    model = save_tiny(tmp_path / "m.safetensors", recipe="x.toml")
    loaded, info = weights.load(str(tmp_path / "m.safetensors"))
    assert info.kind == "sudoku" and info.board == (4, 4) and info.meta["recipe"] == "x.toml"
    assert info.config == model.cfg
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    assert not loaded.training


def test_bundled_name_lookup(tmp_path, monkeypatch):
    monkeypatch.setenv("EQR_WEIGHTS_DIR", str(tmp_path))
    save_tiny(tmp_path / "sudoku-4x4.safetensors")
    _, info = weights.load("sudoku-4x4")
    assert info.name == "sudoku-4x4"
    assert [i.name for i in weights.list_bundled()] == ["sudoku-4x4"]
    with pytest.raises(weights.WeightsError, match="eqr-solve train"):
        weights.load("sudoku-9x9")
    # installed from a wheel: no weights/ folder at all, and the message says where they are
    monkeypatch.setenv("EQR_WEIGHTS_DIR", str(tmp_path / "absent"))
    with pytest.raises(weights.WeightsError, match="folder of a clone"):
        weights.load("sudoku-9x9")


def test_kind_and_shape_mismatch(tmp_path):
    save_tiny(tmp_path / "m.safetensors")
    info = weights.read_info(tmp_path / "m.safetensors")
    with pytest.raises(weights.WeightsError, match="not a maze model"):
        weights.check_compatible(info, "maze", (4, 4))
    with pytest.raises(weights.WeightsError, match="solves 4x4 boards"):
        weights.check_compatible(info, "sudoku", (9, 9))
    weights.check_compatible(info, "sudoku", (4, 4))
    # without a board in the file, the tokens and the token MLP's cells still have to fit
    info.board = None
    with pytest.raises(weights.WeightsError, match="reads 6 kinds of token, a 9x9 sudoku has 11"):
        weights.check_compatible(info, "sudoku", (9, 9))
    info.config.seq_len = 20
    with pytest.raises(weights.WeightsError, match="mixes exactly 20 cells, this puzzle has 16"):
        weights.check_compatible(info, "sudoku", (4, 4))


def test_corrupt_and_foreign_files(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(weights.WeightsError, match="not a readable safetensors"):
        weights.load(str(bad))
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(weights.WeightsError, match="not an eqr-solve model"):
        weights.load(str(tmp_path / "foreign.safetensors"))
    with pytest.raises(weights.WeightsError, match="not found"):
        weights.load(str(tmp_path / "missing.safetensors"))


def test_truncated_file(tmp_path):
    path = tmp_path / "m.safetensors"
    save_tiny(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(weights.WeightsError):
        weights.load(str(path))


def test_weights_not_matching_config(tmp_path):
    path = tmp_path / "m.safetensors"
    torch.manual_seed(0)
    model = EqR(tiny_config(hidden_size=16))
    weights.save(model, path, "sudoku", (4, 4))
    # rewrite the metadata to claim another width
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["config"] = meta["config"].replace('"hidden_size": 16', '"hidden_size": 32')
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(weights.WeightsError, match="do not match"):
        weights.load(str(path))


def test_parse_hf():
    assert weights.parse_hf("hf://a/b/model.safetensors") == ("a/b", "model.safetensors", None)
    assert weights.parse_hf("hf://a/b@v1/x/m.safetensors") == ("a/b", "x/m.safetensors", "v1")
    with pytest.raises(weights.WeightsError):
        weights.parse_hf("hf://a")


def populate_hub_cache(cache: Path, repo: str, filename: str, src: Path, commit="a" * 40):
    """Lay out a model in the Hugging Face cache exactly as huggingface_hub does."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snap = folder / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap / filename).write_bytes(src.read_bytes())


def run_cli(args, env):
    return subprocess.run([sys.executable, "-m", "eqr_solve", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=120)


def test_hub_pull_and_use_offline_from_cache(tmp_path):
    src = tmp_path / "src.safetensors"
    save_tiny(src)
    cache = tmp_path / "hub"
    populate_hub_cache(cache, "someone/eqr-4x4", "model.safetensors", src)
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    r = run_cli(["weights", "pull", "someone/eqr-4x4"], env)
    assert r.returncode == 0, r.stderr
    assert "sudoku model" in r.stdout
    puzzle = tmp_path / "p.txt"
    puzzle.write_text("1...\n..3.\n.4..\n...2\n")
    r = run_cli(["sudoku", str(puzzle), "--weights", "hf://someone/eqr-4x4/model.safetensors",
                 "--depth", "2", "--json"], env)
    assert r.returncode in (0, 1), r.stderr
    assert '"kind": "sudoku"' in r.stdout


def test_hub_failure_is_a_clear_error(tmp_path):
    env = {"HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1"}
    r = run_cli(["weights", "pull", "nobody/nothing"], env)
    assert r.returncode == 2
    assert "cannot download nobody/nothing" in r.stderr
    assert "Traceback" not in r.stderr


def test_bundle_merges_measured_accuracy(tmp_path, monkeypatch):
    monkeypatch.setenv("EQR_WEIGHTS_DIR", str(tmp_path / "w"))
    save_tiny(tmp_path / "run.safetensors", step=7)
    dst = weights.bundle(tmp_path / "run.safetensors", "sudoku-4x4", {"accuracy": {"x": 1}})
    info = weights.read_info(dst)
    assert info.meta == {"step": 7, "accuracy": {"x": 1}}
    weights.load("sudoku-4x4")


def test_mix_averages_two_models_and_keeps_the_first_ones_metadata(tmp_path):
    a = save_tiny(tmp_path / "a.safetensors", step=1)
    torch.manual_seed(1)
    b = EqR(tiny_config())
    weights.save(b, tmp_path / "b.safetensors", "sudoku", (4, 4), {"step": 2})
    dst = weights.mix(tmp_path / "a.safetensors", tmp_path / "b.safetensors", 0.25,
                      tmp_path / "m.safetensors")
    mixed, info = weights.load(str(dst))
    assert "step" not in info.meta and info.meta["mixed_from"]["alpha"] == 0.25
    assert (info.meta["mixed_from"]["a"]["step"], info.meta["mixed_from"]["b"]["step"]) == (1, 2)
    sa, sb = a.state_dict(), b.state_dict()
    for k, v in mixed.state_dict().items():
        torch.testing.assert_close(v, 0.75 * sa[k] + 0.25 * sb[k])
    assert any(not torch.equal(sa[k], sb[k]) for k in sa)  # the two really differ


def test_mix_refuses_different_models_and_a_weight_outside_0_1(tmp_path):
    save_tiny(tmp_path / "a.safetensors")
    save_tiny(tmp_path / "b.safetensors", kind="sudoku", board=None)
    with pytest.raises(weights.WeightsError, match="not the same model"):
        weights.mix(tmp_path / "a.safetensors", tmp_path / "b.safetensors", 0.5,
                    tmp_path / "m.safetensors")
    with pytest.raises(weights.InputError, match="between 0 and 1"):
        weights.mix(tmp_path / "a.safetensors", tmp_path / "a.safetensors", 1.5,
                    tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


def test_saved_model_is_readable_by_others_as_umask_allows(tmp_path):
    old = os.umask(0o022)
    try:
        weights.save(EqR(tiny_config()), tmp_path / "a.safetensors", "sudoku", (4, 4))
        os.umask(0o077)
        weights.save(EqR(tiny_config()), tmp_path / "b.safetensors", "sudoku", (4, 4))
    finally:
        os.umask(old)
    assert (tmp_path / "a.safetensors").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.safetensors").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("board", [(4, 4, 4), (4,), (0, 4)])
def test_board_metadata_must_be_two_sizes(tmp_path, board):
    path = tmp_path / "m.safetensors"
    weights.save(EqR(tiny_config()), path, "sudoku", board)
    with pytest.raises(weights.WeightsError, match="board"):
        weights.read_info(path)


def test_old_error_import_paths_are_the_typed_errors():
    from eqr_solve import errors, tasks

    assert weights.WeightsError is errors.WeightsError and tasks.InputError is errors.InputError
    assert issubclass(errors.InputError, ValueError) and issubclass(errors.RecipeError, ValueError)


def test_model_settings_from_metadata(tmp_path):
    torch.manual_seed(0)
    model = EqR(tiny_config())
    path = tmp_path / "m.safetensors"
    for meta, name, expected in (({}, "tol", 0.3), ({"tol": 0.7}, "tol", 0.7),
                                 ({"tol": 1}, "tol", 1.0), ({"tol": 0.7}, "q_accept", 0.3),
                                 ({"q_accept": 4.5}, "q_accept", 4.5),
                                 ({"q_accept": -1}, "q_accept", -1.0)):
        weights.save(model, path, "maze", None, meta)
        assert weights.model_setting(weights.read_info(path), name, 0.3) == expected
    for name, bad in (("tol", "0.7"), ("tol", -1), ("tol", True), ("tol", float("nan")),
                      ("q_accept", float("inf")), ("q_accept", "4")):
        weights.save(model, path, "maze", None, {name: bad})
        with pytest.raises(weights.WeightsError, match=name):
            weights.model_setting(weights.read_info(path), name, 0.3)


def test_model_setting_measured_per_puzzle_size(tmp_path):
    """A table {side: value} gives a puzzle the value of the largest measured side not above
    its own, the smallest side's below them all; text from `weights bundle` parses to it."""
    torch.manual_seed(0)
    model = EqR(tiny_config())
    path = tmp_path / "m.safetensors"
    table = weights.parse_setting("9:2,15:3,30:4", float("-inf"))
    assert table == {"9": 2.0, "15": 3.0, "30": 4.0}
    assert weights.parse_setting("-1.5", float("-inf")) == -1.5
    weights.save(model, path, "maze", None, {"q_accept": table})
    info = weights.read_info(path)
    for side, expected in ((5, 2.0), (9, 2.0), (11, 2.0), (15, 3.0), (29, 3.0), (30, 4.0),
                           (60, 4.0)):
        assert weights.model_setting(info, "q_accept", 0.0, side) == expected
    with pytest.raises(ValueError, match="side"):
        weights.model_setting(info, "q_accept", 0.0)
    for bad in ("", "x", "9:", "9:2,15", "9:2:3", "-9:2", "0:1,9:2", "9:inf", "4,5"):
        with pytest.raises(ValueError):
            weights.parse_setting(bad, float("-inf"))
    with pytest.raises(ValueError):
        weights.parse_setting("9:-1", 0.0)
    for bad in ({}, {"9": "2"}, {"x": 2.0}, {"0": 1.0, "9": 2.0}):
        weights.save(model, path, "maze", None, {"q_accept": bad})
        with pytest.raises(weights.WeightsError, match="q_accept"):
            weights.model_setting(weights.read_info(path), "q_accept", 0.0, 9)
