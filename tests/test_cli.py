import json
import os

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from eqr_solve import cli, data, solver, weights
from eqr_solve.cli import app
from eqr_solve.errors import InputError
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

    def solve(model, grids, cfg=None, check=None, progress=None, on_retry=None, no_answer=None,
              on_result=None):
        def exact(p, r):  # before the result is handed over (the CLI writes it at once)
            g = grids[p]
            r.answer = sudoku.solve(g) if g.shape[0] == 4 and g.max() <= 5 else maze.solve(g)
            r.valid = bool(check(g, r.answer))
            if on_result is not None:
                on_result(p, r)

        return real(model, grids, cfg, check, progress, on_retry, no_answer, exact)

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
    # a random model never halts: the default 7 retries run, then escalation within the
    # default budget of 2000 NFE (12 x 14, 48 x 28; 192 x 56 would exceed it)
    assert rec["nfe"] == 3 * (2 + 7) + 12 * 14 + 48 * 28 and rec["stages"] == 4


def test_retries_add_restarts_to_unconverged_puzzles(models, tmp_path):
    path = write(tmp_path, "p.txt", "1...........3..2\n.2..........3..1\n")
    args = ["sudoku", str(path), "--depth", "3", "--halt", "residual", "--retries", "3",
            "--budget", "0", "--min-steps", "2", "--json", "--tol"]
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
    assert "per s" in r.output and "retried" in r.output and "3 (100.0%)" in r.output
    assert "…" not in r.output  # nothing cut to fit the 80 columns of the test terminal


def test_maze_command(models, oracle, tmp_path):
    path = write(tmp_path, "m.txt", "#####\n#S  #\n# # #\n#  G#\n#####\n\n#####\n#S G#\n#####\n")
    r = runner.invoke(app, ["maze", str(path), "--depth", "2", "--json"])
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert records[1]["solution"] == ["#####", "#SoG#", "#####"]
    # the maze default: 8 restarts side by side, the first to settle on an answer its halting
    # head accepts answers
    assert records[0]["race"] is True and records[0]["breadth"] == 8
    assert records[0]["retries"] == 0 and records[0]["select"] == "q"
    assert records[0]["min_steps"] == 2
    r = runner.invoke(app, ["maze", str(path), "--depth", "2", "--json", "--no-race",
                            "--breadth", "1"])
    rec = json.loads(r.stdout.splitlines()[0])
    assert rec["race"] is False and rec["breadth"] == 1 and rec["retries"] == 0
    r = runner.invoke(app, ["sudoku", str(write(tmp_path, "p.txt", PUZZLE_4x4)), "--depth", "2",
                            "--json"])
    rec = json.loads(r.stdout.splitlines()[0])  # sudoku: one restart + 7 retries, no race
    assert rec["race"] is False and rec["breadth"] == 1 and rec["retries"] == 7
    assert rec["min_steps"] == 4  # no halting before segment 4 (docs/models.md)


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


def test_recipe_by_name_without_a_train_folder(tmp_path, monkeypatch):
    """Installed from a wheel there is no train/ folder: say where the recipes are."""
    from eqr_solve import train

    monkeypatch.setattr(train, "RECIPES_DIR", tmp_path / "absent")
    msg = one_error_line(runner.invoke(app, ["train", "sudoku", "--recipe", "sudoku-9x9-cpu"]))
    assert "folder of a clone" in msg


def test_resume_of_an_empty_checkpoint_is_one_line(tmp_path):
    (tmp_path / "state.pt").write_bytes(b"")
    args = ["train", "maze", "--out", str(tmp_path), "--resume"]
    r = runner.invoke(app, [*args, "--set", "train.lr=1e-4"])
    assert r.exit_code == 2 and "not a usable checkpoint" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


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


@pytest.mark.parametrize("kind, args", [
    ("sudoku", ["--size", "4", "--blanks", "6-8"]),
    ("maze", ["--size", "9", "--path-length", "4-8", "--no-path", "0.5"]),
])
def test_data_text_reads_back_as_the_same_puzzles(tmp_path, kind, args):
    """--text writes the set in the solve commands' input format: parsing it gives the
    saved inputs, in order."""
    from eqr_solve.tasks import get_task

    r = runner.invoke(app, ["data", kind, *args, "--count", "6", "--text",
                            "--out", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    parsed = get_task(kind).parse((tmp_path / "s.txt").read_text(), "s.txt")
    inputs = np.load(tmp_path / "s.npz")["inputs"]
    assert len(parsed) == len(inputs)
    assert all(np.array_equal(p.grid, x) for p, x in zip(parsed, inputs))


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


def test_weights_mix(models, tmp_path):
    src = str(models / "sudoku-4x4.safetensors")
    r = runner.invoke(app, ["weights", "mix", src, src, str(tmp_path / "m.safetensors"),
                            "--alpha", "0.3"])
    assert r.exit_code == 0, r.output
    assert weights.read_info(tmp_path / "m.safetensors").meta["mixed_from"]["alpha"] == 0.3
    r = runner.invoke(app, ["weights", "mix", src, src, str(tmp_path / "m.pt")])
    assert r.exit_code == 2 and "must be a .safetensors file" in r.output
    r = runner.invoke(app, ["weights", "mix", src, str(models / "maze.safetensors"),
                            str(tmp_path / "n.safetensors")])
    assert r.exit_code != 0 and "not the same model" in r.output


def test_model_settings_travel_with_the_model(models, oracle, tmp_path):
    """A model bundled with --tol / --q-accept is solved (and evaluated) with its own values
    unless the option is given; a model without them gets the task's default (tol) or 0."""
    path = write(tmp_path, "m.txt", "#####\n#S G#\n#####\n")
    args = ["maze", str(path), "--depth", "2", "--json"]

    def record(extra=()):
        r = runner.invoke(app, args + list(extra))
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout.splitlines()[0])

    assert (record()["tol"], record()["q_accept"]) == (0.3, 0.0)
    r = runner.invoke(app, ["weights", "bundle", str(models / "maze.safetensors"), "maze",
                            "--tol", "0.7", "--q-accept", "4.5"])
    assert r.exit_code == 0, r.output
    meta = weights.read_info(models / "maze.safetensors").meta
    assert meta["tol"] == 0.7 and meta["q_accept"] == 4.5
    assert (record()["tol"], record()["q_accept"]) == (0.7, 4.5)
    rec = record(["--tol", "0.2", "--q-accept", "-1"])
    assert (rec["tol"], rec["q_accept"]) == (0.2, -1.0)
    ds = data.generate("maze", 2, seed=0, height=7, width=7, min_path=2, max_path=12)
    ds.save(tmp_path / "set")
    r = runner.invoke(app, ["eval", "maze", "--data", str(tmp_path / "set.npz"), "--depth", "2",
                            "--breadth", "1", "--halt", "residual", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["q_accept"] == 4.5
    r = runner.invoke(app, ["weights", "bundle", str(models / "maze.safetensors"), "maze",
                            "--q-accept", "5:2.5,7:-1"])
    assert r.exit_code == 0, r.output
    assert record()["q_accept"] == 2.5  # the 3x5 maze takes side 5's value
    r = runner.invoke(app, ["eval", "maze", "--data", str(tmp_path / "set.npz"), "--depth", "2",
                            "--breadth", "1", "--halt", "residual", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["q_accept"] == -1.0, r.output
    assert record()["budget"] == 0  # a maze model without its own budget: no escalation
    r = runner.invoke(app, ["weights", "bundle", str(models / "maze.safetensors"), "maze",
                            "--budget", "3:0,5:96"])
    assert r.exit_code == 0, r.output
    assert weights.read_info(models / "maze.safetensors").meta["budget"] == {"3": 0, "5": 96}
    assert record()["budget"] == 96
    assert record(["--budget", "0"])["budget"] == 0
    assert record(["--protocol", "paper"])["budget"] == 0
    r = runner.invoke(app, ["weights", "info", "maze", "--json"])
    assert json.loads(r.stdout)["settings"]["budget"] == {"3": 0, "5": 96}, r.output
    for opt, bad in (("--tol", "-1"), ("--q-accept", "inf"), ("--q-accept", "9:x"),
                     ("--budget", "-1"), ("--budget", "45:x"), ("--budget", "45:4608.5")):
        r = runner.invoke(app, ["weights", "bundle", str(models / "maze.safetensors"), "maze",
                                opt, bad])
        assert r.exit_code == 2 and opt in r.output


def test_data_from_sudoku_extreme_csv(tmp_path):
    from pathlib import Path

    csv = Path(__file__).resolve().parent.parent / "examples" / "sudoku-extreme.csv"
    r = runner.invoke(app, ["data", "sudoku", "--from", str(csv), "--out", str(tmp_path / "x")])
    assert r.exit_code == 0, r.output
    ds = np.load(tmp_path / "x.npz")
    assert len(ds["inputs"]) == 3
    assert all(sudoku.is_solution(p, y) for p, y in zip(ds["inputs"], ds["labels"]))


# -- exit codes, one-line errors, --json everywhere, --protocol, reliability -----------------------
def one_error_line(r, code: int = 2) -> str:
    """The run exited with ``code`` and said why in exactly one line on stderr."""
    assert r.exit_code == code, (r.exit_code, r.output)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in r.output, r.stderr
    return lines[0]


@pytest.mark.parametrize("option", [
    ["--depth", "1000000000"], ["--depth", "0"], ["--depth", "1e20"], ["--breadth", "100001"],
    ["--seed", str(2**64)], ["--seed", "-1"], ["--noise", "nan"], ["--noise", "-1"],
    ["--noise", "inf"], ["--tol", "nan"], ["--tol", "-1"], ["--tol", "inf"], ["--min-steps", "-3"],
    ["--retries", "-1"], ["--budget", "-5"], ["--halt", "sometimes"],
])
def test_option_out_of_bounds_is_refused_in_one_line(models, tmp_path, monkeypatch, option):
    monkeypatch.setattr(solver, "solve", None)  # refused before any solving
    path = write(tmp_path, "p.txt", PUZZLE_4x4)
    msg = one_error_line(runner.invoke(app, ["sudoku", str(path), *option]))
    assert msg.startswith("error: ") and option[0] in msg


def test_solve_config_checks_its_own_bounds():
    for bad in (dict(depth=10**9), dict(breadth=0), dict(seed=2**64), dict(noise=float("nan")),
                dict(tol=-1.0), dict(min_steps=-3), dict(retries=-1)):
        with pytest.raises(InputError):
            solver.SolveConfig(**bad)


def test_deep_run_allocates_traces_by_the_steps_run(tiny_model):
    grids = np.stack([sudoku.from_line("1...........3..2")])
    cfg = solver.SolveConfig(depth=1_000_000, halt="residual", tol=1e9, min_steps=2)
    run, _ = solver.run_trajectories(tiny_model, grids, cfg)
    assert run.steps.tolist() == [2] and run.residuals.shape[1] <= 64
    res = solver.solve(tiny_model, grids, solver.SolveConfig(depth=100, halt="none"))
    assert res[0].steps == 100 and len(res[0].residuals) == 99  # traces grew past 64


def test_internal_error_is_exit_3_in_one_line(models, tmp_path, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("something broke\nover two lines")

    monkeypatch.setattr(solver, "solve", broken)
    monkeypatch.delenv("EQR_DEBUG", raising=False)
    path = write(tmp_path, "p.txt", PUZZLE_4x4)
    msg = one_error_line(runner.invoke(app, ["sudoku", str(path)]), 3)
    assert msg == ("internal error: RuntimeError: something broke over two lines "
                   "(set EQR_DEBUG=1 for the traceback)")
    monkeypatch.setenv("EQR_DEBUG", "1")
    r = runner.invoke(app, ["sudoku", str(path)])
    assert r.exit_code == 3 and "Traceback" in r.stderr and "in broken" in r.stderr


def test_long_error_stays_one_line_and_markup_is_literal(models, tmp_path, monkeypatch):
    monkeypatch.setattr(cli.err, "width", 40)
    folder = tmp_path / ("a-long-folder-name-" * 4 + "[bold]")
    folder.mkdir()
    msg = one_error_line(runner.invoke(app, ["sudoku", str(folder / "missing.txt")]))
    assert msg == f"error: {folder / 'missing.txt'}: no such file or directory"


def test_usage_error_is_one_line(models):
    msg = one_error_line(runner.invoke(app, ["sudoku"]))
    assert msg.startswith("error: Missing argument") and "sudoku --help" in msg


def test_out_that_cannot_be_written_fails_before_solving(models, tmp_path, monkeypatch):
    monkeypatch.setattr(solver, "solve", None)  # never reached
    path = write(tmp_path, "p.txt", PUZZLE_4x4)
    a_file = write(tmp_path, "a-file", "x")
    blocked = tmp_path / "blocked"
    (blocked / "eqr-solve-sudoku.jsonl").mkdir(parents=True)  # a folder where the file goes
    for out, says in (("/dev/null", "not a folder"), (str(a_file), "not a folder"),
                      (str(blocked), "not a regular file")):
        msg = one_error_line(runner.invoke(app, ["sudoku", str(path), "--out", out]))
        assert says in msg, msg
    if os.geteuid() != 0:  # root writes into read-only folders
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        msg = one_error_line(runner.invoke(app, ["sudoku", str(path), "--out", str(ro)]))
        assert "not writable" in msg or "cannot write" in msg


def test_json_records_are_written_per_shape_group(models, oracle, tmp_path, monkeypatch):
    import sys

    seen = []
    real = solver.solve

    def solve(model, grids, *a, **k):  # what was already written when a group starts
        sys.stdout.flush()
        seen.append((sys.stdout.buffer.getvalue().count(b"\n"),
                     len((tmp_path / "o" / "eqr-solve-maze.jsonl").read_text().splitlines())))
        return real(model, grids, *a, **k)

    monkeypatch.setattr(solver, "solve", solve)
    path = write(tmp_path, "m.txt", "#####\n#S  #\n# # #\n#  G#\n#####\n\n#####\n#S G#\n#####\n"
                                    "\n######\n#S  G#\n######\n")
    r = runner.invoke(app, ["maze", str(path), "--depth", "2", "--json", "--out",
                            str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert seen == [(0, 0), (1, 1), (2, 2)]  # three shapes: 5x5, then 3x5, then 3x6
    assert [json.loads(x)["source"] for x in r.stdout.splitlines()] == [
        f"{path}:1", f"{path}:7", f"{path}:11"]


def test_json_records_are_written_before_their_group_ends(models, tmp_path, monkeypatch):
    """A long run shows progress in JSON too: each record is out as soon as its puzzle is
    final, before the solver returns the group."""
    import sys

    written = []
    real = solver.solve

    def solve(*a, **k):
        results = real(*a, **k)
        sys.stdout.flush()
        written.append(sys.stdout.buffer.getvalue().count(b"\n"))
        return results

    monkeypatch.setattr(solver, "solve", solve)
    path = write(tmp_path, "p.txt", "1...........3..2\n.2..........3..1\n4...........3..2\n")
    r = runner.invoke(app, ["sudoku", str(path), "--depth", "2", "--json"])
    assert r.exit_code == 1, r.output  # a random model: wrong answers
    assert written == [3]
    assert sorted(json.loads(x)["source"] for x in r.stdout.splitlines()) == [
        f"{path}:{i}" for i in (1, 2, 3)]


def ctrl_c_after(first: int, monkeypatch) -> None:
    """Make the solver hand over `first` results, then be interrupted (Ctrl-C)."""
    real = solver.solve
    handed = [0]

    def solve(*a, on_result=None, **k):
        def then_ctrl_c(p, r):
            if handed[0] == first:
                raise KeyboardInterrupt
            handed[0] += 1
            on_result(p, r)
        return real(*a, on_result=then_ctrl_c, **k)

    monkeypatch.setattr(solver, "solve", solve)


THREE_4x4 = "1...........3..2\n.2..........3..1\n4...........3..2\n"


@pytest.mark.parametrize("json_", [False, True])
def test_ctrl_c_says_how_many_records_were_kept_and_where(models, tmp_path, monkeypatch,
                                                          json_):
    """An interrupted run keeps the records already written and says so before 'aborted'."""
    ctrl_c_after(1, monkeypatch)
    path = write(tmp_path, "p.txt", THREE_4x4)
    out_file = tmp_path / "o" / "eqr-solve-sudoku.jsonl"
    r = runner.invoke(app, ["sudoku", str(path), "--depth", "2", "--out", str(tmp_path / "o")]
                      + ["--json"] * json_)
    assert r.exit_code == 130, r.output
    assert len(out_file.read_text().splitlines()) == 1
    assert len(r.stdout.splitlines()) == (1 if json_ else 0)
    assert r.stderr.splitlines()[-2:] == [f"1 of 3 records written to {out_file}", "aborted"]


def test_ctrl_c_with_json_only_counts_stdout_records(models, tmp_path, monkeypatch):
    ctrl_c_after(2, monkeypatch)
    path = write(tmp_path, "p.txt", THREE_4x4)
    r = runner.invoke(app, ["sudoku", str(path), "--depth", "2", "--json"])
    assert r.exit_code == 130, r.output
    assert len(r.stdout.splitlines()) == 2
    assert r.stderr.splitlines()[-2:] == ["2 of 3 records written", "aborted"]


def test_ctrl_c_while_boards_are_shown_says_every_record_is_kept(models, tmp_path,
                                                                  monkeypatch):
    from eqr_solve.cli import solve as solve_cli

    def board(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(solve_cli.render, "board", board)
    path = write(tmp_path, "p.txt", THREE_4x4)
    r = runner.invoke(app, ["sudoku", str(path), "--depth", "2", "--out", str(tmp_path / "o")])
    assert r.exit_code == 130, r.output
    out_file = tmp_path / "o" / "eqr-solve-sudoku.jsonl"
    assert r.stderr.splitlines()[-2:] == [f"3 of 3 records written to {out_file}", "aborted"]


def test_ctrl_c_in_any_command_says_aborted(models, tmp_path, monkeypatch):
    """typer would end a command on Ctrl-C silently; every command says it was aborted."""
    from eqr_solve import evaluate

    def evaluate_(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "evaluate", evaluate_)
    path = write(tmp_path, "p.txt", THREE_4x4)
    r = runner.invoke(app, ["eval", "sudoku", "--data", str(path), "--depth", "2"])
    assert r.exit_code == 130, r.output
    assert r.stderr.splitlines()[-1] == "aborted"


def test_bad_file_in_a_folder_only_skips_that_file(models, oracle, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder, "a.csv", "'question',answer\n1...........3..2,1243432121343412\n")
    (folder / "b.txt").write_bytes(b"\x00binary")
    write(folder, "c.txt", PUZZLE_4x4)
    (folder / "loop").symlink_to(folder / "loop")
    (folder / "sub").mkdir()
    r = runner.invoke(app, ["sudoku", str(folder), "--depth", "2", "--json"])
    assert r.exit_code == 2  # some input was unusable; the rest is solved
    assert [json.loads(x)["source"] for x in r.stdout.splitlines()] == [
        f"{folder / 'a.csv'}:2", f"{folder / 'c.txt'}:1"]
    warnings = r.stderr.splitlines()
    assert f"skipped {folder / 'b.txt'}: not a text file" in warnings
    assert f"skipped {folder / 'loop'}: a symbolic link loop" in warnings
    assert any(w.startswith(f"skipped {folder / 'sub'}: a directory") for w in warnings)


def test_protocol_paper_for_solving(models, tmp_path):
    path = write(tmp_path, "p.txt", PUZZLE_4x4)
    r = runner.invoke(app, ["sudoku", str(path), "--depth", "3", "--breadth", "2", "--json",
                            "--protocol", "paper"])
    rec = json.loads(r.stdout)
    assert (rec["halt"], rec["retries"], rec["select"], rec["nfe"]) == ("none", 0, "residual", 6)
    msg = one_error_line(runner.invoke(app, ["sudoku", str(path), "--protocol", "paper",
                                             "--halt", "act"]))
    assert "--protocol paper" in msg and "--halt act" in msg
    r = runner.invoke(app, ["sudoku", str(path), "--protocol", "paper", "--halt", "none",
                            "--depth", "2"])
    assert r.exit_code == 1 and r.stderr.startswith("protocol: paper")


def test_weights_list_and_info_json(models):
    r = runner.invoke(app, ["weights", "list", "--json"])
    records = [json.loads(x) for x in r.stdout.splitlines()]
    assert r.exit_code == 0 and {x["name"] for x in records} == {"maze", "sudoku-4x4"}
    assert next(x for x in records if x["name"] == "sudoku-4x4")["board"] == [4, 4]
    r = runner.invoke(app, ["weights", "info", "sudoku-4x4", "--json"])
    (info,) = [json.loads(x) for x in r.stdout.splitlines()]
    assert info["config"]["hidden_size"] == 32 and info["parameters"] > 0



def test_weights_list_names_an_unreadable_model_file(models):
    (models / "broken.safetensors").write_bytes(b"truncated")
    r = runner.invoke(app, ["weights", "list", "--json"])
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 2
    assert f"skipped {models / 'broken.safetensors'}: not a readable safetensors" in r.stderr


def test_data_json_and_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EQR_DATA_DIR", "unused")  # restored after the command changes it
    from eqr_solve import data as D

    shared = tmp_path / "shared"
    (shared / "sudoku").mkdir(parents=True)
    ds = D.generate("sudoku", 12, seed=5, n=9, blanks=40)
    (shared / "sudoku" / "mine.txt").write_text("".join(sudoku.to_line(g) + "\n"
                                                        for g in ds.inputs))
    r = runner.invoke(app, ["data", "sudoku", "--collection", "mine.txt", "--data-dir",
                            str(shared), "--out", str(tmp_path / "t"), "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["count"] == 2 and rec["shape"] == [9, 9]  # puzzles 0 and 10: the test split
    msg = one_error_line(runner.invoke(app, ["data", "sudoku", "--collection", "mine.txt",
                                             "--data-dir", str(tmp_path / "none"), "--out",
                                             str(tmp_path / "u")]))
    assert "--data-dir" in msg


def test_eval_protocol_paper_json(models, tmp_path):
    path = write(tmp_path, "p.txt", "1...........3..2\n.2..........3..1\n")
    r = runner.invoke(app, ["eval", "sudoku", "--data", str(path), "--depth", "2,3",
                            "--breadth", "1,4", "--protocol", "paper", "--json"])
    assert r.exit_code == 0, r.output
    (result,) = [json.loads(x) for x in r.stdout.splitlines()]
    assert result["protocol"] == "paper" and result["halt"] == "none" and result["act"] == []
    cell = next(c for c in result["cells"] if c["stratum"] == "all" and c["depth"] == 3
                and c["breadth"] == 4)
    assert {"acc_residual", "acc_vote", "any_correct", "pass@1", "pass@2"} <= set(cell)
    assert "pass@4" not in cell and cell["mean_steps"] == 3  # k < B; every segment runs
    r = runner.invoke(app, ["eval", "sudoku", "--data", str(path), "--protocol", "paper"])
    # (the human view says which protocol ran)
    assert r.exit_code == 0 and "protocol: paper" in r.stderr
    one_error_line(runner.invoke(app, ["eval", "sudoku", "--data", str(path), "--protocol",
                                       "paper", "--halt", "both"]))


def test_eval_noise_override(models, tmp_path):
    """--noise sets β for the eval's trajectories (recorded in the result): the same β and seed
    repeat exactly, another β moves the trajectories; a negative β is refused in one line."""
    path = write(tmp_path, "p.txt", "1...........3..2\n.2..........3..1\n")
    args = ["eval", "sudoku", "--data", str(path), "--depth", "3", "--breadth", "2", "--json"]

    def curves(noise: str) -> list:
        r = runner.invoke(app, [*args, "--noise", noise])
        assert r.exit_code == 0, r.output
        result = json.loads(r.stdout)
        assert result["noise"] == float(noise)
        return result["residual_curves"]

    assert curves("0") == curves("0") != curves("0.5")
    assert "noise" not in json.loads(runner.invoke(app, args).stdout)
    assert "--noise" in one_error_line(runner.invoke(app, [*args, "--noise", "-1"]))


def test_landscape_refuses_a_size_that_does_not_fit(models, tmp_path):
    path = write(tmp_path, "p.txt", PUZZLE_4x4)
    msg = one_error_line(runner.invoke(app, ["landscape", str(path), "--inits", "100000",
                                             "--depth", "1000000"]))
    assert "GiB" in msg


def test_train_json_records_on_stdout(tmp_path):
    from tests.test_train import tiny_recipe, write_recipe

    rfile = write_recipe(tmp_path / "tiny.toml", tiny_recipe(max_steps=3))
    r = runner.invoke(app, ["train", "sudoku", "--recipe", str(rfile), "--out",
                            str(tmp_path / "run"), "--json"])
    assert r.exit_code == 0, r.output
    records = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["step"] for x in records if "lm_loss" in x] == [1, 2, 3]
    assert "training tiny" in r.stderr and "weights:" in r.stderr


def test_python_dash_m_runs_the_cli():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "eqr_solve", "weights", "info", "nope"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: no bundled or registered model")


def test_watch_shows_one_puzzle_segment_by_segment(models, tmp_path):
    one = write(tmp_path, "one.txt", "#######\n#S    #\n# ### #\n#    G#\n#######\n")
    r = runner.invoke(app, ["maze", str(one), "--depth", "5", "--halt", "none", "--watch"])
    assert r.exit_code in (0, 1), r.output
    # not a terminal: segments 1, 2, 4 and the last are printed
    for k in (1, 2, 4, 5):
        assert f"segment {k}/5 · " in r.stdout
    assert "segment 3/5" not in r.stdout
    # residual selection: the shown answer is the last frame (under q it may be "no path")
    r = runner.invoke(app, ["maze", str(one), "--depth", "3", "--halt", "none", "--watch",
                            "--select", "residual", "--json"])
    record = json.loads(r.stdout)
    assert len(record["frames"]) == 3 and record["frames"][-1] == record["solution"]
    two = write(tmp_path, "two.txt", PUZZLE_4x4 + "\n" + PUZZLE_4x4)
    r = runner.invoke(app, ["sudoku", str(two), "--watch"])
    assert r.exit_code == 2 and "--watch follows one puzzle" in r.output


def test_a_maze_without_a_path_is_solved_as_no_path(models, oracle, tmp_path):
    path = write(tmp_path, "cut.txt", "#####\n#S#G#\n#####\n")
    r = runner.invoke(app, ["maze", str(path), "--depth", "2"])
    assert r.exit_code == 0, r.output
    assert "no path from S to G" in r.stdout and "✓ valid" in r.stdout
    r = runner.invoke(app, ["maze", str(path), "--depth", "2", "--json"])
    record = json.loads(r.stdout)
    assert record["valid"] and record["no_path"] and record["solution"] == record["puzzle"]


def test_eval_min_steps(models, tmp_path):
    """--min-steps holds learned halting back in the eval's ACT pass as in solve (the Sudoku
    default is 4, recorded in the result); a negative value is refused in one line."""
    path = write(tmp_path, "p.txt", "1...........3..2\n.2..........3..1\n")
    torch.manual_seed(0)
    eager = EqR(tiny_config())
    with torch.no_grad():
        eager.q_head.bias.fill_(5.0)  # halts as soon as it is allowed to
    weights.save(eager, tmp_path / "eager.safetensors", "sudoku", (4, 4))
    args = ["eval", "sudoku", "--data", str(path), "--depth", "6", "--breadth", "2", "--halt",
            "act", "--json", "-w", str(tmp_path / "eager.safetensors")]

    def result(*more: str) -> dict:
        r = runner.invoke(app, [*args, *more])
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)

    default = result()
    assert default["min_steps"] == 4 and {c["mean_steps"] for c in default["cells"]} == {4}
    for k in (1, 5):
        res = result("--min-steps", str(k))
        assert res["min_steps"] == k
        assert {c["mean_steps"] for c in res["cells"]} == {k}
    assert "--min-steps" in one_error_line(runner.invoke(app, [*args, "--min-steps", "-1"]))


def test_data_writes_text_only_when_asked(tmp_path):
    """Without --text only the .npz and its manifest are written (the --blanks default
    once shadowed the flag)."""
    r = runner.invoke(app, ["data", "sudoku", "--size", "4", "--count", "2", "--json",
                            "--out", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["text_file"] is None
    assert not (tmp_path / "s.txt").exists() and (tmp_path / "s.npz").exists()


def test_data_refuses_a_sudoku_size_the_solver_cannot_read(tmp_path):
    r = runner.invoke(app, ["data", "sudoku", "--size", "5", "--count", "2",
                            "--out", str(tmp_path / "s")])
    assert r.exit_code == 2 and "--size 5" in r.output
    assert not (tmp_path / "s.npz").exists()


def test_a_size_without_a_model_skips_only_those_puzzles(models, oracle, tmp_path):
    """A 9x9 puzzle beside a 4x4 one (only a 4x4 model is bundled here): the 4x4 one is
    solved, the 9x9 one is reported in one line, exit 2. Alone, it is one error."""
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder, "a.txt", PUZZLE_4x4)
    nine = write(folder, "b.txt", "." * 81 + "\n")
    r = runner.invoke(app, ["sudoku", str(folder), "--depth", "2", "--json"])
    assert r.exit_code == 2
    assert [json.loads(x)["source"] for x in r.stdout.splitlines()] == [f"{folder / 'a.txt'}:1"]
    assert (f"skipped {nine}:1: no model for a 9x9 sudoku (available: sudoku-4x4); "
            "pass --weights FILE") in r.stderr.splitlines()
    msg = one_error_line(runner.invoke(app, ["sudoku", str(nine)]))
    assert "no bundled or registered model named 'sudoku-9x9'" in msg


def test_closed_stdout_is_exit_141_and_quiet(models):
    """`eqr-solve … --json | head`: the reader goes away; not exit 1 ("no valid answer")."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-m", "eqr_solve", "weights", "list", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()
    assert p.wait(timeout=120) == 141
    assert p.stderr.read() == b""


def test_depth_within_min_steps_gets_a_note(models, tmp_path):
    path = write(tmp_path, "p.txt", PUZZLE_4x4)
    r = runner.invoke(app, ["sudoku", str(path), "--depth", "2", "--min-steps", "2",
                            "--retries", "0", "--budget", "0"])
    assert "note: --depth 2 leaves no segment to settle in after --min-steps 2" in r.stderr
    r = runner.invoke(app, ["sudoku", str(path), "--depth", "3", "--min-steps", "2"])
    assert "note:" not in r.stderr


def test_puzzles_from_standard_input(models, oracle):
    """`-` reads the puzzles from stdin; they are named "stdin:LINE"."""
    r = runner.invoke(app, ["sudoku", "-", "--depth", "2", "--json"],
                      input="# piped\n" + PUZZLE_4x4.replace("\n", "") + "\n")
    assert r.exit_code == 0, r.output
    (rec,) = [json.loads(x) for x in r.stdout.splitlines()]
    assert rec["source"] == "stdin:2" and rec["valid"]
    msg = one_error_line(runner.invoke(app, ["sudoku", "-"], input=""))
    assert msg == "error: stdin: no puzzles found: the text is empty or only comments"
