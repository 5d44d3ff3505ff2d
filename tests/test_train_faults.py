"""Training under faults (issue: reliability, items 6 and 9): broken or hostile checkpoints,
a bad init_from, a --set on resume, two trainers on one run, a stop during an evaluation, a
kill -9 in the middle of a checkpoint write."""

import fcntl
import json

import pytest
import torch

from eqr_solve import train as T
from eqr_solve import weights
from eqr_solve.errors import RecipeError, ResourceError
from tests.test_train import losses, tiny_recipe


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def run_dir(tmp_path):
    T.run(tiny_recipe(max_steps=3), tmp_path / "run")
    return tmp_path / "run"


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "hostile", "foreign"])
def test_damaged_checkpoint_is_one_line_and_touches_nothing(run_dir, damage, tmp_path):
    state = run_dir / "state.pt"
    marker = tmp_path / "pwned"
    if damage == "truncated":
        state.write_bytes(state.read_bytes()[: len(state.read_bytes()) // 2])
    elif damage == "empty":
        state.write_bytes(b"")
    elif damage == "garbage":
        state.write_bytes(b"\x00" * 1000)
    elif damage == "hostile":
        torch.save({"step": 1, "recipe": "{}", "model": Payload(marker), "shards": []}, state)
    else:
        torch.save({"something": "else"}, state)
    before = snapshot(run_dir)
    with pytest.raises(RecipeError) as e:
        T.run(tiny_recipe(max_steps=6), run_dir, resume=True)
    assert "\n" not in str(e.value) and "state.pt" in str(e.value)
    assert not marker.exists()
    assert snapshot(run_dir) == before
    with pytest.raises(RecipeError):  # prepare() reads it too when a --set is given
        T.read_state(state)


def test_bad_init_from_fails_before_the_run_dir_exists(tmp_path):
    for source in ("missing.safetensors", str(tmp_path / "x.pt")):
        (tmp_path / "x.pt").write_bytes(b"not weights")
        recipe = dict(tiny_recipe(max_steps=1), init_from=source)
        with pytest.raises(RecipeError, match="init_from"):
            T.run(recipe, tmp_path / "new")
        assert not (tmp_path / "new").exists()


def test_resume_accepts_a_set_equal_to_the_saved_value(run_dir, monkeypatch):
    monkeypatch.setattr(T, "load_recipe", lambda name: tiny_recipe(max_steps=3))
    same = [f"train.lr={tiny_recipe()['train']['lr']}"]
    recipe, _ = T.prepare("sudoku", "tiny", same, run_dir, resume=True)
    assert recipe["train"]["lr"] == tiny_recipe()["train"]["lr"]
    with pytest.raises(RecipeError, match="--set train.lr would not"):
        T.prepare("sudoku", "tiny", ["train.lr=0.5"], run_dir, resume=True)


def test_resume_keeps_the_runs_own_settings_over_the_recipe_file(run_dir, monkeypatch):
    """The recipe file is not read again on --resume: its max_minutes (the run has none)
    does not apply; a --set does. Extending a run whose LR follows a cosine keeps the
    cosine's length, so the LR goes on at its floor instead of jumping back up."""
    monkeypatch.setattr(T, "load_recipe", lambda name: tiny_recipe(max_steps=3, max_minutes=5))
    recipe, _ = T.prepare("sudoku", "tiny", [], run_dir, resume=True)
    assert recipe["train"]["max_steps"] == 3 and not recipe["train"].get("max_minutes")
    recipe, _ = T.prepare("sudoku", "tiny", ["train.max_minutes=7"], run_dir, resume=True)
    assert recipe["train"]["max_minutes"] == 7
    saved = T.read_state(run_dir / "state.pt")
    saved["recipe"] = json.dumps(tiny_recipe(max_steps=3, lr_min_ratio=0.1))
    torch.save(saved, run_dir / "state.pt")
    recipe, _ = T.prepare("sudoku", "tiny", ["train.max_steps=9"], run_dir, resume=True)
    assert recipe["train"]["decay_steps"] == 3
    cfg = T.TrainConfig(**recipe["train"])
    floor = cfg.lr * cfg.lr_min_ratio
    assert T.learning_rate(cfg, 3) == pytest.approx(floor)
    assert T.learning_rate(cfg, 8) == pytest.approx(floor)


def test_a_second_trainer_on_the_same_run_is_refused(run_dir):
    with open(run_dir / "train.lock", "a+") as held:  # another trainer holds the lock
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ResourceError, match="another process"):
            T.run(tiny_recipe(max_steps=6), run_dir, resume=True)
    T.run(tiny_recipe(max_steps=4), run_dir, resume=True)  # a released (or dead) lock is fine
    assert json.loads((run_dir / "recipe.json").read_text())["name"] == "tiny"


def test_stop_during_evaluation_drops_it_quickly(tmp_path):
    trainer = T.Trainer(tiny_recipe(), tmp_path, torch.device("cpu"))
    calls = []

    def stop_now():
        calls.append(1)
        return True

    with pytest.raises(T.Interrupted):
        trainer.evaluate(stop_now)
    assert len(calls) == 1  # stopped after the first segment of the first pass


def test_kill_during_checkpoint_write_leaves_a_resumable_run(tmp_path, monkeypatch):
    """The checkpoint is written to state.pt.tmp and renamed: a crash mid-write leaves the
    previous state.pt, and resuming from it matches an uninterrupted run."""
    T.run(tiny_recipe(max_steps=6), tmp_path / "a")
    T.run(tiny_recipe(max_steps=3), tmp_path / "b")
    (tmp_path / "b" / "state.pt.tmp").write_bytes(b"half a checkpoint")  # the crash's leftover
    T.run(tiny_recipe(max_steps=6), tmp_path / "b", resume=True)
    assert losses(tmp_path / "a") == losses(tmp_path / "b")
    a, _ = weights.load(str(tmp_path / "a" / "model.safetensors"))
    b, _ = weights.load(str(tmp_path / "b" / "model.safetensors"))
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def test_resume_drops_a_torn_metrics_line(tmp_path):
    """A kill during an append leaves half a JSON line; the resume drops it (and the lines
    of steps the checkpoint had not reached) instead of failing on it."""
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text('{"step": 1, "lm_loss": 2.0}\n{"step": 5, "lm_loss": 1.0}\n'
                       '{"step": 6, "lm_lo')
    T.truncate_metrics(metrics, 5)
    assert [json.loads(x)["step"] for x in metrics.read_text().splitlines()] == [1, 5]
    T.truncate_metrics(metrics, 1)
    assert [json.loads(x)["step"] for x in metrics.read_text().splitlines()] == [1]


def test_the_eval_clock_survives_a_resume(run_dir):
    """Evaluations are due by training time across resumes: a run stopped more often than
    eval_every_minutes is still evaluated (here: 60 minutes of training "already" passed)."""
    state = T.read_state(run_dir / "state.pt")
    assert "last_eval_seconds" in state
    state["last_eval_seconds"] = state["train_seconds"] - 3601
    torch.save(state, run_dir / "state.pt")
    T.run(tiny_recipe(max_steps=4), run_dir, resume=True)
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    # one due after the first resumed step, one at the end of the run
    assert [r["step"] for r in lines if "eval" in r] == [3, 4, 4]


def test_a_cached_source_the_guard_now_refuses_says_how_to_rebuild(run_dir, monkeypatch):
    def guard(ds):
        raise ValueError("training data holds 1 test puzzles, e.g. x:1")

    monkeypatch.setattr(T, "assert_no_test_puzzles", guard)
    with pytest.raises(RecipeError, match="easy.npz was built by an older split guard"):
        T.run(tiny_recipe(max_steps=4), run_dir, resume=True)
