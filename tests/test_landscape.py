import json

import numpy as np
from typer.testing import CliRunner

from eqr_solve.cli import app
from eqr_solve.landscape import Attractor, classify, explore
from tests.test_cli import models  # noqa: F401  (fixture)


def att(share, valid, moving=0.0):
    return Attractor(answer=np.zeros((1, 1)), inits=int(share * 100), share=share, valid=valid,
                     mean_residual=0.01, moving_share=moving, entry_step=3.0)


def test_mode_a_no_correct_attractor():
    assert classify([att(0.7, False), att(0.3, False, moving=1.0)])[0] == "a"


def test_mode_b_correct_and_wrong_compete():
    assert classify([att(0.6, True), att(0.4, False)])[0] == "b"
    assert classify([att(0.92, True), att(0.08, False), att(0.0, False)])[0] != "b"


def test_mode_c_narrow_or_unstable():
    # narrow: few inits find the correct answer, the rest wander (moving, wrong)
    mode, reason = classify([att(0.2, True), att(0.8, False, moving=1.0)])
    assert mode == "c" and "narrow" in reason
    # broad but unstable: the correct answer is reached but its latents keep moving
    mode, reason = classify([att(0.95, True, moving=0.9), att(0.05, False, moving=1.0)])
    assert mode == "c" and "unstable" in reason


def test_mode_d_broad_stable():
    assert classify([att(1.0, True)])[0] == "d"
    assert classify([att(0.93, True), att(0.07, False, moving=1.0)])[0] == "d"


def test_explore_groups_every_init(tiny_model):
    puzzle = np.array([[2, 1, 1, 1], [1, 1, 4, 1], [1, 5, 1, 1], [1, 1, 1, 3]], np.uint8)
    land = explore(tiny_model, "sudoku", puzzle, inits=16, depth=5)
    assert sum(a.inits for a in land.attractors) == 16
    assert abs(sum(a.share for a in land.attractors) - 1) < 1e-9
    assert land.final.shape == (16,) and land.final.max() < len(land.attractors)
    assert [a.inits for a in land.attractors] == sorted((a.inits for a in land.attractors),
                                                        reverse=True)
    assert all(1 <= a.entry_step <= 5 for a in land.attractors)
    assert land.projection.shape[0] == 16 and land.projection.shape[2] == 2
    assert land.mode in "abcd"


def test_landscape_cli(models, tmp_path):  # noqa: F811
    path = tmp_path / "p.txt"
    path.write_text("1...\n..3.\n.4..\n...2\n")
    r = CliRunner().invoke(app, ["landscape", str(path), "--inits", "8", "--depth", "3",
                                 "--json", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    record = json.loads(r.stdout)
    assert record["inits"] == 8 and record["mode"] in "abcd"
    assert len(record["final_attractor"]) == 8
    assert (tmp_path / "o" / "landscape.json").exists()
    r = CliRunner().invoke(app, ["landscape", str(path), "--inits", "8", "--depth", "3"])
    assert r.exit_code == 0 and "mode (" in r.output
    r = CliRunner().invoke(app, ["landscape", str(path), "--index", "3"])
    assert r.exit_code == 2
