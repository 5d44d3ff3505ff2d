import itertools
import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from eqr_solve import data, evaluate
from eqr_solve.cli import app
from tests.test_cli import models  # noqa: F401  (fixture)


@pytest.mark.parametrize("n,c,k", [(8, 3, 1), (8, 3, 2), (8, 3, 4), (6, 1, 5), (5, 0, 2),
                                   (4, 4, 3), (7, 5, 3)])
def test_pass_at_k_matches_brute_force(n, c, k):
    outcomes = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    brute = sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)
    assert evaluate.pass_at_k(n, c, k) == pytest.approx(brute)


def test_auroc_and_spearman():
    scores = np.array([0.1, 0.2, 0.3, 0.9, 0.8])
    wrong = np.array([False, False, False, True, True])
    assert evaluate.auroc(scores, wrong) == 1.0
    assert evaluate.auroc(-scores, wrong) == 0.0
    assert evaluate.auroc(np.ones(5), wrong) == 0.5
    assert math.isnan(evaluate.auroc(scores, np.zeros(5, bool)))
    assert evaluate.spearman(scores, wrong) > 0.8


def test_rankdata_ties():
    assert evaluate.rankdata(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_grid_from_one_pass(tiny_model):
    ds = data.generate("sudoku", 4, seed=0, n=4, blanks=6)
    result = evaluate.evaluate(tiny_model, ds, depths=[1, 3], breadths=[1, 4], halt="both")
    cells = [c for c in result["cells"] if c["stratum"] == "all"]
    assert [(c["depth"], c["breadth"]) for c in cells] == [(1, 1), (1, 4), (3, 1), (3, 4)]
    for c in cells:
        assert 0 <= c["acc_residual"] <= c["any_correct"] <= 1
        assert c["mean_nfe"] == c["depth"] * c["breadth"]
        assert ("pass@2" in c) == (c["breadth"] == 4)
    assert len(result["alignment"]) == 2 and len(result["act"]) == len(result["cells"])
    assert any(c["stratum"].startswith("band") for c in result["cells"])


def test_residual_halting_pass(tiny_model):
    """tol = inf stops every trajectory at the earliest allowed segment, tol = 0 at none."""
    ds = data.generate("sudoku", 3, seed=0, n=4, blanks=6)
    eager = evaluate.evaluate(tiny_model, ds, depths=[5], breadths=[2], halt="residual",
                              tol=float("inf"))
    never = evaluate.evaluate(tiny_model, ds, depths=[5], breadths=[1, 2], halt="residual",
                              tol=0.0)
    assert eager["halt"] == "residual" and eager["tol"] == float("inf") and not eager["act"]
    first = [c for c in eager["cells"] if c["stratum"] == "all"][0]
    assert first["mean_steps"] == 2 and first["mean_nfe"] == 4
    assert first["mean_nfe_retry"] == 2  # the first restart halted early: no retry
    assert first["mean_nfe_race"] == 4  # both restarts settled at segment 2, side by side
    last = [c for c in never["cells"] if c["stratum"] == "all"][-1]
    assert last["breadth"] == 2 and last["mean_steps"] == 5
    assert last["mean_nfe_retry"] == 10 and last["acc_retry"] == last["acc_residual"]
    assert last["mean_nfe_race"] == 10 and last["acc_race"] == last["acc_residual"]
    # the halting honesty columns: every trajectory stopped early, or none did
    assert first["early_stop_share"] == 1.0
    assert first["early_stop_wrong"] == 1.0 - first["mean_pass_rate"]
    assert last["early_stop_share"] == 0.0 and np.isnan(last["early_stop_wrong"])


def test_race_replay_answers_with_the_first_restart_to_settle():
    """Restart 0 runs to the depth (unsettled) and is right; restart 1 settles at segment 4
    and is wrong: the residual rule picks restart 0, the race restart 1 at 2 x 4 NFE."""
    from eqr_solve.solver import Snapshot

    ds = data.generate("sudoku", 1, seed=0, n=4, blanks=6)
    answers = np.stack([ds.labels[0], ds.labels[0]])
    snap = Snapshot(answers=answers, scores=np.array([0.1, 0.5]), q=np.zeros(2),
                    steps=np.array([10, 4]))
    full = evaluate.Pass({10: snap}, {10: np.array([True, False])},
                         {10: np.ones(2)}, 1.0, 14)
    cell = evaluate.grid_cells(ds, full, [10], [2], B=2)[0]
    assert cell["acc_residual"] == 1.0 and cell["acc_race"] == 0.0
    assert cell["mean_nfe_race"] == 8 and cell["mean_nfe_retry"] == 14


def test_race_q_replay_waits_for_an_accepted_answer():
    """Restart 0 settles at segment 3 on a wrong answer its head rejects (q < 0); restart 1
    settles at 5, right and accepted; restart 2 never settles. race answers with restart 0
    at 3 x 3 NFE; race q with restart 1 at 3 + 5 + 5 NFE (2 runs until restart 1 settles)."""
    from eqr_solve.solver import Snapshot

    ds = data.generate("sudoku", 1, seed=0, n=4, blanks=6)
    answers = np.stack([ds.labels[0]] * 3)
    snap = Snapshot(answers=answers, scores=np.array([0.1, 0.2, 0.9]),
                    q=np.array([-1.0, 2.0, 3.0]), steps=np.array([3, 5, 10]))
    full = evaluate.Pass({10: snap}, {10: np.array([False, True, False])},
                         {10: np.ones(3)}, 1.0, 18)
    cell = evaluate.grid_cells(ds, full, [10], [3], B=3)[0]
    assert cell["acc_race"] == 0.0 and cell["mean_nfe_race"] == 9
    assert cell["acc_race_q"] == 1.0 and cell["mean_nfe_race_q"] == 13
    assert cell["acc_q"] == 0.0  # over all three, the highest q is the unsettled restart 2
    # nobody accepted: the highest q over all, at the full NFE
    rejected = Snapshot(answers=answers, scores=snap.scores, q=np.array([-1.0, -0.5, -2.0]),
                        steps=snap.steps)
    full = evaluate.Pass({10: rejected}, full.correct, full.cells, 1.0, 18)
    cell = evaluate.grid_cells(ds, full, [10], [3], B=3)[0]
    assert cell["acc_race_q"] == 1.0 and cell["mean_nfe_race_q"] == 18


def test_retry_replay_under_q_retries_an_unaccepted_first_restart():
    """Restart 0 halts at segment 3 on a wrong answer with q 1; restart 1 halts at 6, right,
    q 4. With q_accept 0 the first restart is accepted (3 NFE, wrong); with q_accept 2 the
    retries run and q picks restart 1 (3 + 6 NFE, right)."""
    from eqr_solve.solver import Snapshot

    ds = data.generate("sudoku", 1, seed=0, n=4, blanks=6)
    answers = np.stack([ds.labels[0]] * 2)
    snap = Snapshot(answers=answers, scores=np.zeros(2), q=np.array([1.0, 4.0]),
                    steps=np.array([3, 6]))
    full = evaluate.Pass({10: snap}, {10: np.array([False, True])}, {10: np.ones(2)}, 1.0, 9)
    for q_accept, acc, nfe in ((0.0, 0.0, 3), (2.0, 1.0, 9)):
        cell = evaluate.grid_cells(ds, full, [10], [2], B=2, retry_rule="q",
                                   q_accept=q_accept)[0]
        assert (cell["acc_retry"], cell["mean_nfe_retry"]) == (acc, nfe), q_accept


def test_q_replay_answers_no_path_where_every_restart_is_rejected():
    """Mazes have a "no answer" (no path): the q columns give it when the chosen restart's
    q <= 0, right for a maze without a path and wrong for one with a path."""
    from eqr_solve.solver import Snapshot
    from eqr_solve.tasks import maze

    ds = data.generate("maze", 2, seed=0, height=7, width=7, min_path=2, max_path=12)
    ds.inputs[1] = maze.no_answer(ds.labels[1])  # maze 1: its path walled off (no path)
    ds.inputs[1][ds.labels[1] == maze.PATH] = maze.WALL
    ds.labels[1] = ds.inputs[1]
    assert maze.has_path(ds.inputs[0]) and not maze.has_path(ds.inputs[1])
    answers = np.stack([ds.labels[0], ds.labels[0]])  # both draw maze 0's path
    ok = np.array([maze.is_solution(p, a) for p, a in zip(ds.inputs, answers)])
    for q, q_accept, expected in ((-1.0, 0.0, [0.0, 1.0]), (1.0, 0.0, [1.0, 0.0]),
                                  (1.0, 2.0, [0.0, 1.0]), (-1.0, -2.0, [1.0, 0.0])):
        snap = Snapshot(answers=answers, scores=np.zeros(2), q=np.full(2, q),
                        steps=np.array([3, 3]))
        full = evaluate.Pass({10: snap}, {10: ok}, {10: np.ones(2)}, 1.0, 6)
        for p, want in enumerate(expected):
            cell = evaluate.grid_cells(ds, full, [10], [1], B=1, rows=np.array([p]),
                                       q_accept=q_accept)[0]
            assert cell["acc_q"] == cell["acc_race_q"] == want, (q, p)
            assert cell["acc_residual"] == float(ok[p])  # other rules: the drawn answer


def test_eval_cli_writes_files(models, tmp_path):  # noqa: F811
    ds = data.generate("sudoku", 3, seed=0, n=4, blanks=6)
    ds.save(tmp_path / "set")
    r = CliRunner().invoke(app, ["eval", "sudoku", "--data", str(tmp_path / "set.npz"),
                                 "--depth", "1,2", "--breadth", "1,2",
                                 "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert "residual" in r.output and "AUROC" in r.output
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["puzzles"] == 3
    assert (tmp_path / "out" / "cells.csv").exists()
    pytest.importorskip("matplotlib")
    for name in ("accuracy_vs_depth", "depth_breadth_heatmap", "residual_vs_depth",
                 "accuracy_vs_nfe_act"):
        assert (tmp_path / "out" / f"{name}.png").stat().st_size > 1000


def test_eval_cli_on_puzzle_file(models, tmp_path):  # noqa: F811
    path = tmp_path / "p.txt"
    path.write_text("1...........3..2\n.2..........3..1\n")
    r = CliRunner().invoke(app, ["eval", "sudoku", "--data", str(path), "--depth", "2",
                                 "--breadth", "1", "--halt", "act"])
    assert r.exit_code == 0, r.output


def test_shared_holdout_spec(tmp_path, monkeypatch):
    """``shared:FILE:holdout:N`` is the last N puzzles of the train split; malformed forms
    are refused in one line before any file is read."""
    from eqr_solve.tasks import InputError
    from tests.test_data import fake_shared
    monkeypatch.setenv("EQR_DATA_DIR", str(fake_shared(tmp_path)))
    name = data.COLLECTIONS[0]
    train = evaluate.load_eval_data("sudoku", [f"shared:{name}:train"])
    held = evaluate.load_eval_data("sudoku", [f"shared:{name}:holdout:4"])
    assert held.source == train.source[-4:]
    for bad in (f"shared:{name}:holdout", f"shared:{name}:holdout:x",
                f"shared:{name}:holdout:0", f"shared:{name}:train:4"):
        with pytest.raises(InputError, match="shared:FILE:holdout:N"):
            evaluate.load_eval_data("sudoku", [bad])
