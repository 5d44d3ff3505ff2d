import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eqr_solve import train as T
from eqr_solve import weights
from eqr_solve.model import EqR
from tests.conftest import tiny_config


def tiny_recipe(**train) -> dict:
    return {
        "name": "tiny", "kind": "sudoku", "board": [4, 4],
        "model": dict(hidden_size=32, num_heads=4, L_layers=1, H_cycles=2, L_cycles=2,
                      expansion=2.0),
        "train": dict(dict(batch_size=8, shards=2, lr=1e-3, warmup_steps=2, max_steps=6,
                           log_every_seconds=0, checkpoint_every_minutes=60,
                           eval_every_minutes=60, halt_max_steps=3, compile=False), **train),
        "data": [{"name": "easy", "count": 64, "seed": 1, "generate": {"n": 4, "blanks": 6}},
                 {"name": "hard", "count": 64, "seed": 2,
                  "generate": {"n": 4, "minimal": True}, "weight": 2.0}],
        "eval": {"count": 8, "seed": 99, "generate": {"n": 4, "blanks": 8}},
    }


def losses(run_dir: Path) -> list[tuple[int, float]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [(r["step"], r["lm_loss"]) for r in map(json.loads, lines) if "lm_loss" in r]


def test_stablemax_matches_definition():
    logits = torch.tensor([[[2.0, -1.0, 0.0]]])
    s = torch.tensor([3.0, 0.5, 1.0])
    expected = -torch.log(s / s.sum())
    for label in range(3):
        got = T.stablemax_cross_entropy(logits, torch.tensor([[label]]))
        assert torch.allclose(got, expected[label].view(1, 1))


def test_stablemax_has_finite_gradients_for_large_logits():
    logits = torch.tensor([[[50.0, -50.0, 1.0]]], requires_grad=True)
    T.stablemax_cross_entropy(logits, torch.tensor([[1]])).sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_softmax_option_is_cross_entropy():
    logits = torch.randn(2, 5, 4)
    labels = torch.randint(0, 4, (2, 5))
    got = T.token_loss(logits, labels, "softmax")
    ref = F.cross_entropy(logits.reshape(-1, 4), labels.reshape(-1), reduction="none")
    assert torch.allclose(got.reshape(-1), ref)


def test_adam_atan2_matches_reference_formula():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = T.AdamATan2([p], lr=0.1, betas=(0.9, 0.95), weight_decay=1.0)
    g = torch.tensor([0.5, 0.25])
    p.grad = g.clone()
    opt.step()
    m, v = 0.1 * g, 0.05 * g * g
    expected = torch.tensor([1.0, -2.0]) * (1 - 0.1) - (0.1 / 0.1) * torch.atan2(
        m, v.sqrt() / (1 - 0.95) ** 0.5)
    assert torch.allclose(p.detach(), expected)


def test_learning_rate_warmup_and_constant():
    cfg = T.TrainConfig(lr=1e-3, warmup_steps=10)
    assert T.learning_rate(cfg, 1) == pytest.approx(1e-4)
    assert T.learning_rate(cfg, 10) == pytest.approx(1e-3)
    assert T.learning_rate(cfg, 1000) == pytest.approx(1e-3)
    cfg = T.TrainConfig(lr=1e-3, warmup_steps=0, lr_min_ratio=0.1, max_steps=100)
    assert T.learning_rate(cfg, 100) == pytest.approx(1e-4)


def make_shard(halt_max=3, explore=0.0, rows=4):
    from eqr_solve.data import PuzzleStream, generate

    torch.manual_seed(0)
    model = EqR(tiny_config())
    ds = generate("sudoku", 32, 0, n=4, blanks=6)
    shard = T.Shard(0, rows, PuzzleStream([ds], [1.0], 0), model, 0, torch.device("cpu"))
    cfg = T.TrainConfig(halt_max_steps=halt_max, halt_exploration_prob=explore)
    return model, shard, cfg


def test_rows_halt_at_max_steps_and_are_replaced():
    model, shard, cfg = make_shard(halt_max=3)
    seen = []
    for step in range(1, 8):
        T.shard_step(model, shard, cfg, 4, step)
        seen.append((shard.steps.tolist(), shard.halted.tolist(), shard.inputs.clone()))
    assert seen[0][0] == [1] * 4 and seen[2][0] == [3] * 4
    assert seen[2][1] == [True] * 4 and seen[1][1] == [False] * 4
    assert seen[3][0] == [1] * 4  # replaced rows restart at step 1...
    assert not torch.equal(seen[2][2], seen[3][2])  # ...with new puzzles
    assert torch.equal(seen[0][2], seen[2][2])  # puzzles stay while their rows run


def test_halted_rows_get_fresh_latents_others_keep_theirs():
    model, shard, cfg = make_shard(halt_max=2)
    T.shard_step(model, shard, cfg, 4, 1)
    carry_after_1 = shard.carry
    shard.halted[:] = torch.tensor([True, False, False, False])
    reset = model.reset_rows(carry_after_1, shard.halted)
    assert torch.equal(reset.z_H[1:], carry_after_1.z_H[1:])
    assert not torch.equal(reset.z_H[0], carry_after_1.z_H[0])


def test_q_head_halts_rows_early():
    model, shard, cfg = make_shard(halt_max=16)
    with torch.no_grad():
        model.q_head.bias.fill_(10.0)  # always confident
    T.shard_step(model, shard, cfg, 4, 1)
    assert shard.halted.all() and (shard.steps == 1).all()


def test_exploration_delays_halting():
    model, shard, cfg = make_shard(halt_max=16, explore=1.0, rows=64)
    with torch.no_grad():
        model.q_head.bias.fill_(10.0)
    T.shard_step(model, shard, cfg, 64, 1)
    assert not shard.halted.any()  # every row explores with a minimum of >= 2 steps


def test_loss_is_per_row_mean_plus_half_bce():
    model, shard, cfg = make_shard()
    stats = T.shard_step(model, shard, cfg, 4, 1)
    s = dict(zip(T.STATS, stats.tolist()))
    assert s["rows"] == 4 and s["lm_loss"] > 0
    assert s["q_loss"] == pytest.approx(4 * F.softplus(torch.tensor(-5.0)).item(), rel=1e-3)


def test_label_weights_reweight_cells_within_a_row():
    """Uniform weights change nothing; weighting a token moves the per-row mean toward the
    loss of its cells; a wrong-length list is rejected with the token count."""
    model, shard, cfg = make_shard()
    carry = shard.carry
    base = dict(zip(T.STATS, T.shard_step(model, shard, cfg, 4, 1).tolist()))["lm_loss"]
    vocab = model.cfg.vocab_size
    for w, same in ((2.0, True), (50.0, False)):
        model2, shard2, _ = make_shard()
        shard2.carry = carry
        cfg2 = T.TrainConfig(halt_max_steps=3, halt_exploration_prob=0.0,
                             label_weights=[2.0] * vocab if same else [1.0] * (vocab - 1) + [w])
        got = dict(zip(T.STATS, T.shard_step(model2, shard2, cfg2, 4, 1).tolist()))["lm_loss"]
        assert (got == pytest.approx(base, rel=1e-5)) == same
    with pytest.raises(ValueError, match="one weight per token"):
        T.train_config(tiny_recipe(label_weights=[1.0, 2.0]))


def test_checkpoint_round_trip_and_weights_usable(tmp_path):
    trainer = T.run(tiny_recipe(max_steps=3), tmp_path / "run")
    model, info = weights.load(str(tmp_path / "run" / "model.safetensors"))
    assert info.kind == "sudoku" and info.board == (4, 4) and info.meta["step"] == 3
    for a, b in zip(model.parameters(), trainer.ema.parameters()):
        assert torch.equal(a, b)
    state = torch.load(tmp_path / "run" / "state.pt", weights_only=True)
    assert state["step"] == 3 and len(state["shards"]) == 2


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_resume_continues_exactly(tmp_path, dtype):
    T.run(tiny_recipe(max_steps=6, dtype=dtype), tmp_path / "a")
    T.run(tiny_recipe(max_steps=3, dtype=dtype), tmp_path / "b")
    with pytest.raises(T.RecipeError, match="already holds a run"):
        T.run(tiny_recipe(max_steps=6, dtype=dtype), tmp_path / "b")
    T.run(tiny_recipe(max_steps=6, dtype=dtype), tmp_path / "b", resume=True)
    assert losses(tmp_path / "a") == losses(tmp_path / "b")
    a, _ = weights.load(str(tmp_path / "a" / "model.safetensors"))
    b, _ = weights.load(str(tmp_path / "b" / "model.safetensors"))
    for x, y in zip(a.parameters(), b.parameters()):
        assert torch.equal(x, y)


def cli_train(run_dir: Path, recipe: Path, *extra, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "eqr_solve", "train", "sudoku", "--recipe", str(recipe),
         "--out", str(run_dir), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )


def write_recipe(path: Path, recipe: dict) -> Path:
    lines = [f'kind = "{recipe["kind"]}"', f"board = {recipe['board']}"]
    for section in ("model", "train"):
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in recipe[section].items()]
    for d in recipe["data"]:
        lines.append("[[data]]")
        for k, v in d.items():
            if isinstance(v, dict):
                v = "{ " + ", ".join(f"{a} = {json.dumps(b)}" for a, b in v.items()) + " }"
            else:
                v = json.dumps(v)
            lines.append(f"{k} = {v}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_kill_9_then_resume_matches_uninterrupted(tmp_path):
    recipe = tiny_recipe(max_steps=40, checkpoint_every_minutes=0)
    del recipe["eval"]
    rfile = write_recipe(tmp_path / "tiny.toml", recipe)
    T.run(T.load_recipe(str(rfile)), tmp_path / "whole")
    proc = cli_train(tmp_path / "killed", rfile)
    state = tmp_path / "killed" / "state.pt"
    deadline = time.time() + 120
    while time.time() < deadline:
        if state.exists() and len(losses(tmp_path / "killed")) >= 5:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = len(losses(tmp_path / "killed"))
    assert stopped_at < 40, "the run finished before it could be killed"
    resumed = cli_train(tmp_path / "killed", rfile, "--resume")
    _, errors = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, errors
    assert "resumed at step" in errors
    assert losses(tmp_path / "whole") == losses(tmp_path / "killed")


def test_sigterm_saves_and_stops(tmp_path):
    recipe = tiny_recipe(max_steps=100000)
    del recipe["eval"]
    rfile = write_recipe(tmp_path / "tiny.toml", recipe)
    proc = cli_train(tmp_path / "run", rfile)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "run" / "metrics.jsonl").exists():
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, errors = proc.communicate(timeout=120)
    assert proc.returncode == 0, errors
    assert "continue with --resume" in errors
    state = torch.load(tmp_path / "run" / "state.pt", weights_only=True)
    assert state["step"] == losses(tmp_path / "run")[-1][0]


def test_distributed_matches_single_process(tmp_path):
    """Two ranks with one shard each train the same weights as one process with two shards.

    The ranks run one thread each and reduce gradients in another order, so weights agree to
    rounding, not bit for bit: 1e-4 is a tenth of one Adam step at lr 1e-3, while a lost or
    doubled shard changes the gradient's direction and moves weights by whole steps.
    """
    recipe = tiny_recipe(max_steps=4, dtype="fp32")
    del recipe["eval"]
    rfile = write_recipe(tmp_path / "tiny.toml", recipe)
    T.run(T.load_recipe(str(rfile)), tmp_path / "single")
    env = {"OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--master-port", str(29500 + os.getpid() % 1000), "-m", "eqr_solve", "train", "sudoku",
         "--recipe", str(rfile), "--out", str(tmp_path / "ddp")],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, _ = weights.load(str(tmp_path / "single" / "model.safetensors"))
    b, _ = weights.load(str(tmp_path / "ddp" / "model.safetensors"))
    for x, y in zip(a.parameters(), b.parameters()):
        assert torch.allclose(x, y, atol=1e-4)
    la, lb = losses(tmp_path / "single"), losses(tmp_path / "ddp")
    assert [s for s, _ in la] == [s for s, _ in lb]
    assert np.allclose([v for _, v in la], [v for _, v in lb], atol=1e-4)


def test_recipe_overrides_and_errors():
    rec = T.apply_overrides(tiny_recipe(), ["train.lr=0.5", "model.hidden_size=64",
                                            "train.optimizer=adam_atan2"])
    assert rec["train"]["lr"] == 0.5 and rec["model"]["hidden_size"] == 64
    assert rec["train"]["optimizer"] == "adam_atan2"
    with pytest.raises(ValueError):
        T.train_config(T.apply_overrides(tiny_recipe(), ["train.nonsense=1"]))
    with pytest.raises(FileNotFoundError):
        T.load_recipe("no-such-recipe")


def test_shipped_recipes_are_valid():
    for path in sorted(T.RECIPES_DIR.glob("*.toml")):
        rec = T.load_recipe(str(path))
        T.config_summary(rec)
        EqR(T.model_config(rec))


def test_init_from_starts_at_given_weights(tmp_path):
    T.run(tiny_recipe(max_steps=2), tmp_path / "a")
    rec = tiny_recipe(max_steps=1, lr=0.0, warmup_steps=0)
    rec["init_from"] = str(tmp_path / "a" / "model.safetensors")
    trainer = T.run(rec, tmp_path / "b")
    src, _ = weights.load(rec["init_from"])
    for a, b in zip(src.parameters(), trainer.model.parameters()):
        assert torch.equal(a, b)


def test_best_checkpoint_keeps_the_best_heldout_eval(tmp_path):
    T.run(tiny_recipe(max_steps=4, eval_every_minutes=0), tmp_path / "run")
    evals = [json.loads(line)["eval"] for line in
             (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if "eval" in line]
    assert len(evals) >= 4
    assert all(0 <= e["act_exact"] <= 1 and 1 <= e["act_steps"] <= 16 for e in evals)
    _, info = weights.load(str(tmp_path / "run" / "best.safetensors"))
    best = max(e["exact"] for e in evals)
    first_best = next(e for e in evals if e["exact"] == best)
    assert info.meta["eval"] == first_best
    state = torch.load(tmp_path / "run" / "state.pt", weights_only=True)
    assert state["best_exact"] == best


def test_best_checkpoint_survives_a_resume(tmp_path):
    """The final eval of a run comes after its last state save; a resumed run must still
    know that eval's result and not replace best.safetensors with a worse or equal one."""
    T.run(tiny_recipe(max_steps=2), tmp_path / "run")
    T.run(tiny_recipe(max_steps=4), tmp_path / "run", resume=True)
    records = [json.loads(line) for line in
               (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if "eval" in line]
    assert [r["step"] for r in records] == [2, 4]
    best = max(r["eval"]["exact"] for r in records)
    first_best = next(r for r in records if r["eval"]["exact"] == best)
    _, info = weights.load(str(tmp_path / "run" / "best.safetensors"))
    assert (info.meta["step"], info.meta["eval"]) == (first_best["step"], first_best["eval"])
