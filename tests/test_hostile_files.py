"""A corpus of hostile and broken files, fed to every command path that takes a file: each
is refused with exit code 2, one line on stderr, and no side effect (issue: reliability,
"campaign to keep it so")."""

import json
import pickle
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from eqr_solve import weights
from eqr_solve.cli import app
from eqr_solve.model import EqR
from tests.conftest import tiny_config

runner = CliRunner()


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def corpus(folder, marker):
    """name -> path of a file no command may accept (or run)."""
    folder.mkdir()
    good = folder / "good.safetensors"
    torch.manual_seed(0)
    weights.save(EqR(tiny_config()), good, "sudoku", (4, 4))
    raw = good.read_bytes()
    files = {
        "truncated": raw[: len(raw) // 2],
        "empty": b"",
        "header-bomb": struct.pack("<Q", 2**62) + b"{",
        "not-json-header": struct.pack("<Q", 8) + b"\xff" * 8,
        "pickle-payload": pickle.dumps(Payload(marker)),
    }
    out = {}
    for name, data in files.items():
        out[name] = folder / f"{name}.safetensors"
        out[name].write_bytes(data)
    meta = {"format": "eqr-solve/1", "kind": "sudoku", "board": "[4, 4]", "meta": "{}"}
    cfg = EqR(tiny_config()).cfg.to_dict()
    for name, change in {"bad-config": {"H_cycles": 10**9}, "bad-mixer": {"mixer": "rnn"}}.items():
        out[name] = folder / f"{name}.safetensors"
        save_file({"x": torch.zeros(1)}, str(out[name]),
                  metadata=dict(meta, config=json.dumps(dict(cfg, **change))))
    out["int-tensors"] = folder / "int-tensors.safetensors"
    tensors = {k: v.to(torch.int32) for k, v in EqR(tiny_config()).state_dict().items()}
    save_file(tensors, str(out["int-tensors"]), metadata=dict(meta, config=json.dumps(cfg)))
    out["pth-payload"] = folder / "payload.pth"
    torch.save({"model": Payload(marker), "config": {"arch": {}}}, out["pth-payload"])
    return out


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("EQR_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("EQR_WEIGHTS_DIR", str(tmp_path / "weights"))
    marker = tmp_path / "pwned"
    puzzle = tmp_path / "p.txt"
    puzzle.write_text("1...\n..3.\n.4..\n...2\n")
    return corpus(tmp_path / "corpus", marker), puzzle, marker, tmp_path


def refused(args):
    r = runner.invoke(app, args)
    assert r.exit_code == 2, (args, r.exit_code, r.output)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), (args, r.stderr)
    return r


def test_every_file_path_refuses_the_corpus(setup):
    files, puzzle, marker, tmp = setup
    for name, path in files.items():
        if path.suffix == ".safetensors":
            refused(["sudoku", str(puzzle), "--weights", str(path)])
            refused(["weights", "info", str(path)])
            refused(["weights", "bundle", str(path), "x-" + name])
        refused(["weights", "convert", str(path), str(tmp / "out.safetensors")])
        refused(["eval", "sudoku", "--data", str(puzzle), "--weights", str(path),
                 "--depth", "1", "--breadth", "1"])
    assert not marker.exists()
    assert not (tmp / "out.safetensors").exists()
    assert not list((tmp / "weights").glob("x-*"))
    refused(["weights", "bundle", str(files["truncated"]), "../escape"])


def test_hostile_dataset_files_are_refused(setup, tmp_path):
    _, _, marker, _ = setup
    bad = tmp_path / "evil.npz"
    np.savez(bad, inputs=np.array([Payload(marker)], dtype=object))
    (tmp_path / "evil.json").write_text(json.dumps({"kind": "sudoku"}))
    refused(["eval", "sudoku", "--data", str(bad)])
    assert not marker.exists()
