"""A new user's first run: the bundled weights solve the example files at the CLI defaults.

These use the real models in weights/ (no tiny stand-ins), so they fail if a bundle regresses.
The hard showcase files (sudoku-extreme.csv, sudoku-line.txt with its 17-clue puzzles, the
15x15 and 30x30 mazes) are not expected to be solved at the defaults and are left out.
"""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eqr_solve import weights
from eqr_solve.cli import app

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SOLVED_AT_DEFAULTS = {
    "sudoku-4x4.txt": "sudoku", "sudoku-6x6.txt": "sudoku", "sudoku-grid.txt": "sudoku",
    "sudoku-minimal.txt": "sudoku", "maze-9x9.txt": "maze",
}


@pytest.mark.parametrize("name", sorted(SOLVED_AT_DEFAULTS))
def test_bundled_model_solves_example_at_defaults(name, monkeypatch):
    monkeypatch.delenv("EQR_WEIGHTS_DIR", raising=False)
    kind = SOLVED_AT_DEFAULTS[name]
    if kind == "maze" and "maze" not in {i.name for i in weights.list_bundled()}:
        pytest.skip("no maze model bundled")
    r = CliRunner().invoke(app, [kind, str(EXAMPLES / name), "--json"])
    assert r.exit_code == 0, r.output
    results = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert results and all(x["valid"] for x in results), [x["source"] for x in results
                                                          if not x["valid"]]


def test_bundled_maze_model_solves_with_its_own_tolerance(monkeypatch):
    """The maze bundle's settled answers move more than the CLI's fallback 0.3 allows: its
    measured tolerance travels in the weights file and a default run uses it."""
    monkeypatch.delenv("EQR_WEIGHTS_DIR", raising=False)
    if "maze" not in {i.name for i in weights.list_bundled()}:
        pytest.skip("no maze model bundled")
    _, info = weights.load("maze")
    assert "tol" in info.meta
    r = CliRunner().invoke(app, ["maze", str(EXAMPLES / "maze-9x9.txt"), "--json"])
    records = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert records and {x["tol"] for x in records} == {weights.model_setting(info, "tol", 0.3, 9)}
    assert {x["q_accept"] for x in records} == {weights.model_setting(info, "q_accept", 0.0, 9)}
