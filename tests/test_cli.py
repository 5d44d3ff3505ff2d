import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from eqr_solve import cli, solver, weights
from eqr_solve.cli import app
from eqr_solve.model import EqR
from eqr_solve.tasks import maze, sudoku
from tests.conftest import tiny_config

runner = CliRunner()
PUZZLE_4x4 = "1...\n..3.\n.4..\n...2\n"


@pytest.fixture
def models(tmp_path, monkeypatch):
    """Bundled-weights folder with a tiny 4x4 Sudoku model and a tiny any-size maze model."""
    folder = tmp_path / "weights"
    torch.manual_seed(0)
    weights.save(EqR(tiny_config()), folder / "sudoku-4x4.safetensors", "sudoku", (4, 4))
    weights.save(EqR(tiny_config(mixer="attn", pos_encoding="rope2d", seq_len=0)),
                 folder / "maze.safetensors", "maze", None)
    monkeypatch.setenv("EQR_WEIGHTS_DIR", str(folder))
    monkeypatch.setattr(cli.out, "width", 160)
    monkeypatch.setattr(cli.err, "width", 160)
    return folder


@pytest.fixture
def oracle(monkeypatch):
    """Replace the network's answers with the exact solver's, to test the CLI plumbing."""
    real = solver.solve

    def solve(model, grids, cfg=None, check=None, progress=None, on_retry=None):
        results = real(model, grids, cfg, check, progress, on_retry)
        for r, g in zip(results, grids):
            r.answer = sudoku.solve(g) if g.shape[0] == 4 and g.max() <= 5 else maze.solve(g)
            r.valid = bool(check(g, r.answer))
        return results

    monkeypatch.setattr(solver, "solve", solve)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_help_for_every_command():
    for args in (["--help"], ["sudoku", "--help"], ["maze", "--help"], ["train", "--help"],
                 ["weights", "--help"], ["weights", "pull", "--help"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 0, args
        assert "Usage" in r.output


def test_solves_and_exits_0_when_all_valid(models, oracle, tmp_path):
    path = write(tmp_path, "p.txt", PUZZLE_4x4)
    r = runner.invoke(app, ["sudoku", str(path), "--depth", "3"])
    assert r.exit_code == 0, r.output
    assert "✓ valid" in r.output
    assert "3/3 segments" in r.output


def test_random_model_answers_are_invalid_exit_1(models, tmp_path):
    path = write(tmp_path, "p.txt", PUZZLE_4x4)
    r = runner.invoke(app, ["sudoku", str(path), "--depth", "2"])
    assert r.exit_code == 1
    assert "✗" in r.output


def test_json_records(models, oracle, tmp_path):
    path = write(tmp_path, "p.txt", "1...........3..2\n.2..........3..1\n")
    r = runner.invoke(app, ["sudoku", str(path), "--depth", "3", "--breadth", "2", "--json"])
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [rec["source"] for rec in records] == [f"{path}:1", f"{path}:2"]
    rec = records[0]
    for key in ("source", "kind", "puzzle", "solution", "valid", "steps", "nfe", "restart",
                "residuals", "seconds"):
        assert key in rec
    assert rec["puzzle"] == "1...........3..2" and len(rec["solution"]) == 16
    assert "." not in rec["solution"] and len(rec["residuals"]) == 2
    assert rec["nfe"] == 3 * (2 + 7)  # a random model never halts: the default 7 retries run


def test_retries_add_restarts_to_unconverged_puzzles(models, tmp_path):
    path = write(tmp_path, "p.txt", "1...........3..2\n.2..........3..1\n")
    args = ["sudoku", str(path), "--depth", "3", "--halt", "residual", "--retries", "3",
            "--json", "--tol"]
    never = [json.loads(x) for x in runner.invoke(app, args + ["0"]).stdout.splitlines()]
    assert [rec["nfe"] for rec in never] == [12, 12] and never[0]["retries"] == 3
    first = [json.loads(x) for x in runner.invoke(app, args + ["1e9"]).stdout.splitlines()]
    assert [rec["nfe"] for rec in first] == [2, 2]  # converged at min_steps: no retry
    shown = runner.invoke(app, args[:-2] + ["--tol", "0"]).output
    assert "of 4 · NFE 12" in shown  # the trace counts the retried restarts
    r = runner.invoke(app, ["sudoku", str(path), "--retries", "-1"])
    assert r.exit_code == 2 and "--retries" in r.output


def test_bad_puzzle_in_batch_is_reported_rest_solved(models, oracle, tmp_path):
    path = write(tmp_path, "p.txt", "1...........3..2\n11..........3..2\n.2..........3..1\n")
    r = runner.invoke(app, ["sudoku", str(path), "--depth", "2", "--json"])
    assert r.exit_code == 2
    assert f"{path}:2" in r.stderr and "twice" in r.stderr
    assert len(r.stdout.splitlines()) == 2


def test_out_dir_writes_jsonl(models, oracle, tmp_path):
    path = write(tmp_path, "p.txt", PUZZLE_4x4)
    r = runner.invoke(app, ["sudoku", str(path), "--depth", "2", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "o" / "eqr-solve-sudoku.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["valid"] is True


def test_directory_input_with_summary(models, oracle, tmp_path):
    folder = tmp_path / "puzzles"
    folder.mkdir()
    for i in range(3):
        write(folder, f"{i}.txt", PUZZLE_4x4)
    r = runner.invoke(app, ["sudoku", str(folder), "--depth", "2"])
    assert r.exit_code == 0, r.output
    assert "puzzles/s" in r.output and "3 (100.0%)" in r.output


def test_maze_command(models, oracle, tmp_path):
    path = write(tmp_path, "m.txt", "#####\n#S  #\n# # #\n#  G#\n#####\n\n#####\n#S G#\n#####\n")
    r = runner.invoke(app, ["maze", str(path), "--depth", "2", "--json"])
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert records[1]["solution"] == ["#####", "#SoG#", "#####"]


def test_errors_are_one_line_with_exit_2(models, tmp_path):
    r = runner.invoke(app, ["sudoku", str(tmp_path / "missing.txt")])
    assert r.exit_code == 2 and "no such file" in r.stderr
    path = write(tmp_path, "nine.txt", "." * 81 + "\n")
    r = runner.invoke(app, ["sudoku", str(path)])
    assert r.exit_code == 2 and "eqr-solve train" in r.stderr and "Traceback" not in r.output
    path = write(tmp_path, "p.txt", PUZZLE_4x4)
    r = runner.invoke(app, ["maze", str(path)])
    assert r.exit_code == 2
    r = runner.invoke(app, ["sudoku", str(path), "--weights", "maze"])
    assert r.exit_code == 2 and "not a sudoku model" in r.stderr
    bad = write(tmp_path, "bin.txt", "")
    bad.write_bytes(b"\x00\x01\x02")
    r = runner.invoke(app, ["sudoku", str(bad)])
    assert r.exit_code == 2 and "not a text file" in r.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_request_without_cuda(models, tmp_path):
    path = write(tmp_path, "p.txt", PUZZLE_4x4)
    r = runner.invoke(app, ["sudoku", str(path), "--device", "cuda"])
    assert r.exit_code == 2 and "CUDA is not available" in r.stderr


def test_seed_makes_runs_reproducible(models, tmp_path):
    path = write(tmp_path, "p.txt", PUZZLE_4x4)
    args = ["sudoku", str(path), "--depth", "3", "--breadth", "2", "--json", "--seed", "5"]
    a, b = runner.invoke(app, args), runner.invoke(app, args)
    strip = [{k: v for k, v in json.loads(x).items() if k != "seconds"}
             for x in (a.stdout, b.stdout)]
    assert strip[0] == strip[1]


def test_weights_list_and_info(models):
    r = runner.invoke(app, ["weights", "list"])
    assert r.exit_code == 0 and "sudoku-4x4" in r.output and "maze" in r.output
    r = runner.invoke(app, ["weights", "info", "sudoku-4x4"])
    assert r.exit_code == 0 and "hidden_size" in r.output
    r = runner.invoke(app, ["weights", "info", "nope"])
    assert r.exit_code == 2


def test_train_rejects_bad_recipe():
    r = runner.invoke(app, ["train", "sudoku", "--recipe", "no-such-recipe"])
    assert r.exit_code == 2 and "no recipe" in r.stderr


def test_resume_refuses_a_set_that_would_not_apply(tmp_path):
    (tmp_path / "state.pt").write_bytes(b"")  # a run exists: the check comes before loading it
    args = ["train", "maze", "--out", str(tmp_path), "--resume"]
    r = runner.invoke(app, [*args, "--set", "train.lr=1e-4"])
    assert r.exit_code == 2 and "--set train.lr would not" in r.stderr


def test_every_example_parses():
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "examples"
    files = sorted(folder.glob("*"))
    assert files
    for f in files:
        task = sudoku if f.name.startswith("sudoku") else maze
        items = task.parse(f.read_text(), f.name)
        assert items and all(hasattr(i, "grid") for i in items), f
        assert all(np.asarray(i.grid).ndim == 2 for i in items)


def test_data_command_builds_reproducible_sets(tmp_path):
    args = ["data", "sudoku", "--size", "4", "--count", "10", "--blanks", "6-8", "--seed", "3"]
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    runner.invoke(app, [*args, "--out", str(tmp_path / "b")])
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert np.array_equal(a["inputs"], b["inputs"])
    manifest = json.loads((tmp_path / "a.json").read_text())
    assert manifest["count"] == 10 and manifest["seed"] == 3
    r = runner.invoke(app, ["data", "maze", "--size", "9", "--path-length", "4-8", "--count",
                            "5", "--out", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["data", "maze", "--size", "5", "--path-length", "90-99", "--count",
                            "5", "--out", str(tmp_path / "bad")])
    assert r.exit_code == 2
    # --exclude: the same set again minus itself is empty, a clear error and no file
    r = runner.invoke(app, ["data", "maze", "--size", "9", "--path-length", "4-8", "--count",
                            "5", "--exclude", str(tmp_path / "m"), "--out", str(tmp_path / "e")])
    assert r.exit_code == 2 and "--exclude" in r.output and not (tmp_path / "e.npz").exists()


def test_weights_bundle_records_eval(models, tmp_path):
    result = {"data": ["x"], "halt": "both", "cells": [
        {"stratum": "all", "depth": 16, "breadth": 1, "puzzles": 5, "acc_residual": 0.8,
         "acc_vote": 0.8, "any_correct": 0.8, "mean_nfe": 16.0, "acc_retry": 0.9}]}
    (tmp_path / "r.json").write_text(json.dumps(result))
    r = runner.invoke(app, ["weights", "bundle", str(models / "sudoku-4x4.safetensors"),
                            "sudoku-4x4b", "--eval", str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output
    info = weights.read_info(models / "sudoku-4x4b.safetensors")
    cell = list(info.meta["accuracy"].values())[0]["cells"][0]
    assert cell["acc_residual"] == 0.8 and cell["acc_retry"] == 0.9 and "acc_q" not in cell


def test_data_from_sudoku_extreme_csv(tmp_path):
    from pathlib import Path

    csv = Path(__file__).resolve().parent.parent / "examples" / "sudoku-extreme.csv"
    r = runner.invoke(app, ["data", "sudoku", "--from", str(csv), "--out", str(tmp_path / "x")])
    assert r.exit_code == 0, r.output
    ds = np.load(tmp_path / "x.npz")
    assert len(ds["inputs"]) == 3
    assert all(sudoku.is_solution(p, y) for p, y in zip(ds["inputs"], ds["labels"]))
