from dataclasses import replace

import numpy as np
import pytest
import torch

from eqr_solve.solver import SolveConfig, residual_score, select_restart, solve


def grids(n=3, seed=0):
    return np.random.default_rng(seed).integers(1, 6, size=(n, 4, 4)).astype(np.uint8)


def test_solve_returns_one_result_per_puzzle(tiny_model):
    res = solve(tiny_model, grids(3), SolveConfig(depth=4, breadth=2))
    assert len(res) == 3
    for r in res:
        assert r.answer.shape == (4, 4)
        assert r.steps == 4 and r.nfe == 8
        assert 0 <= r.restart < 2
        assert len(r.residuals) == 3 and len(r.q) == 4
        assert r.valid is None


def test_same_seed_same_answers(tiny_model):
    cfg = SolveConfig(depth=3, breadth=3, seed=7)
    a = solve(tiny_model, grids(2), cfg)
    b = solve(tiny_model, grids(2), cfg)
    for x, y in zip(a, b):
        assert np.array_equal(x.answer, y.answer) and x.residuals == y.residuals


def test_different_seeds_give_different_trajectories(tiny_model):
    a = solve(tiny_model, grids(1), SolveConfig(depth=3, seed=1))[0]
    b = solve(tiny_model, grids(1), SolveConfig(depth=3, seed=2))[0]
    assert a.residuals != b.residuals


class BatchSpy:
    """Wrap a model and record the batch size of every segment."""

    def __init__(self, model):
        self.model, self.sizes = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __call__(self, carry, inputs, generator=None, noise=None):
        self.sizes.append(len(inputs))
        return self.model(carry, inputs, generator, noise)

    def parameters(self):
        return self.model.parameters()


def test_act_halting_shrinks_the_working_batch(tiny_model):
    with torch.no_grad():  # make every other puzzle's q_halt fire: bias +5 only for token 5 at 0
        tiny_model.q_head.bias.fill_(5.0)
    spy = BatchSpy(tiny_model)
    res = solve(spy, grids(4), SolveConfig(depth=8, breadth=2, halt="act", min_steps=3))
    assert spy.sizes == [8, 8, 8]  # all halt at min_steps, nobody runs to depth 8
    assert all(r.steps == 3 and r.nfe == 6 for r in res)


def test_no_halting_runs_full_depth(tiny_model):
    spy = BatchSpy(tiny_model)
    solve(spy, grids(2), SolveConfig(depth=5, breadth=2, halt="none"))
    assert spy.sizes == [4] * 5


def test_residual_halting_stops_converged_rows(tiny_model):
    res = solve(tiny_model, grids(2), SolveConfig(depth=20, halt="residual", tol=1e9))
    assert all(r.steps == 2 for r in res)  # min_steps=2: first residual exists at step 2


def test_retries_only_for_unconverged_puzzles(tiny_model):
    added = []
    stuck = solve(tiny_model, grids(2), SolveConfig(depth=3, breadth=2, halt="residual",
                                                    tol=0.0, retries=3), on_retry=added.append)
    assert added == [6]  # no restart converged: 3 more for each of the 2 puzzles
    for r in stuck:
        assert r.nfe == 3 * 5 and len(r.restart_steps) == 5 and 0 <= r.restart < 5
    added.clear()
    done = solve(tiny_model, grids(2), SolveConfig(depth=3, breadth=2, halt="residual",
                                                   tol=float("inf"), retries=3),
                 on_retry=added.append)
    assert added == [] and all(r.nfe == 2 * 2 and len(r.restart_steps) == 2 for r in done)
    plain = solve(tiny_model, grids(2), SolveConfig(depth=3, breadth=2, retries=3))
    assert all(r.nfe == 6 for r in plain)  # no halting rule: nothing can converge early


def test_breadth_is_chunked_but_complete(tiny_model):
    spy = BatchSpy(tiny_model)
    res = solve(spy, grids(2), SolveConfig(depth=2, breadth=5, max_rows=4))
    assert max(spy.sizes) <= 4
    assert sum(spy.sizes) == 2 * 5 * 2  # every trajectory ran its 2 segments
    assert [r.nfe for r in res] == [10, 10]


def test_chunking_respects_memory_budget(tiny_model):
    spy = BatchSpy(tiny_model)
    solve(spy, grids(1), SolveConfig(depth=1, breadth=64, memory_gib=1e-4))
    assert max(spy.sizes) < 64


def test_record_depths_snapshots(tiny_model):
    from eqr_solve.solver import run_trajectories

    run, _ = run_trajectories(tiny_model, grids(2), SolveConfig(depth=6, breadth=2,
                                                                 record_depths=(2, 6)))
    snaps = run.snapshots_out()
    assert set(snaps) == {2, 6}
    assert (snaps[2].steps == 2).all() and (snaps[6].steps == 6).all()
    assert np.array_equal(snaps[6].answers, run.answers)


def test_verifier_selection_and_validity(tiny_model):
    target = grids(1)[0]
    calls = []

    def check(puzzle, answer):
        calls.append(1)
        return False

    res = solve(tiny_model, target[None], SolveConfig(depth=2, breadth=3, select="verify"),
                check=check)
    assert res[0].valid is False and calls


def test_residual_score_uses_last_window():
    residuals = np.array([[np.nan, 5, 4, 3, 2, 1]], dtype=np.float32)
    assert residual_score(residuals, np.array([6]), 3)[0] == pytest.approx(2.0)
    assert residual_score(residuals, np.array([3]), 3)[0] == pytest.approx(4.5)
    assert residual_score(residuals, np.array([1]), 3)[0] == np.inf


def test_selection_rules():
    answers = np.array([[1, 1], [2, 2], [2, 2], [3, 3]], dtype=np.uint8)
    scores = np.array([0.5, 0.2, 0.9, 0.2])
    q = np.array([-1.0, 0.0, 3.0, 1.0])
    assert select_restart("residual", answers, scores, q) == 1  # first of the tied minima
    assert select_restart("vote", answers, scores, q) == 1  # [2,2] twice, first seen
    assert select_restart("q", answers, scores, q) == 2
    assert select_restart("verify", answers, scores, q, lambda a: a[0] == 3) == 3
    assert select_restart("verify", answers, scores, q, lambda a: False) == 1  # falls back
    with pytest.raises(ValueError):
        select_restart("verify", answers, scores, q)


def test_vote_tie_goes_to_first_seen():
    answers = np.array([[3], [1], [1], [3]], dtype=np.uint8)
    assert select_restart("vote", answers, np.zeros(4), np.zeros(4)) == 0


def test_noise_override_is_restored(tiny_model):
    before = tiny_model.cfg.noise_scale
    solve(tiny_model, grids(1), SolveConfig(depth=2, noise=0.5))
    assert tiny_model.cfg.noise_scale == before


def test_bad_config_rejected():
    with pytest.raises(ValueError):
        SolveConfig(retries=-1)
    with pytest.raises(ValueError):
        SolveConfig(halt="sometimes")
    with pytest.raises(ValueError):
        SolveConfig(depth=0)


def test_escalation_plan_stays_within_the_budget():
    from eqr_solve.solver import stages

    assert stages(SolveConfig(depth=16, retries=7)) == [(16, 1), (16, 7)]
    plan = stages(SolveConfig(depth=16, retries=7, budget=20_000))
    assert plan == [(16, 1), (16, 7), (64, 14), (256, 28)]
    assert sum(d * b for d, b in plan) <= 20_000
    assert stages(SolveConfig(depth=16, budget=100)) == [(16, 1)]  # 16 + 64*2 > 100
    assert stages(SolveConfig(depth=16, budget=200)) == [(16, 1), (64, 2)]


def test_only_unsettled_puzzles_escalate(tiny_model, monkeypatch):
    """A puzzle whose restart halted early is done; one that never halts gets every stage,
    and its answer is chosen among all of its restarts."""
    import eqr_solve.solver as S

    grids = np.random.default_rng(0).integers(1, 6, (2, 4, 4)).astype(np.uint8)
    real = S.run_trajectories

    def fake(model, g, cfg, progress=None, on_puzzle=None):
        run, seconds = real(model, g, cfg, progress)
        # the first puzzle "settles" (its restarts stop at step 2), the second never does
        first = np.flatnonzero(np.isin(np.arange(len(g) * cfg.breadth) // cfg.breadth,
                                       [i for i, x in enumerate(g) if (x == grids[0]).all()]))
        run.steps[first] = np.minimum(run.steps[first], 2)
        run.settled[first] = True
        for i in range(len(g)):
            on_puzzle(i, run)
        return run, seconds

    monkeypatch.setattr(S, "run_trajectories", fake)
    handed = []
    res = S.solve(tiny_model, grids, SolveConfig(depth=4, retries=2, budget=100, halt="act"),
                  on_result=lambda p, r: handed.append((p, r.stages)))
    assert handed == [(0, 1), (1, 3)]  # each once, the escalated one after its last stage
    assert res[0].stages == 1 and len(res[0].restart_steps) == 1
    assert res[1].stages == 3 and len(res[1].restart_steps) == 1 + 2 + 4
    assert res[1].nfe == 4 + 2 * 4 + 4 * 16
    assert res[0].depth == 4 and res[1].depth == (16 if res[1].restart >= 3 else 4)


def test_frames_follow_the_chosen_restart_through_every_stage(tiny_model):
    """keep_frames: one answer per segment run by the chosen restart, the last one its
    answer; without it no frames are kept."""
    g = grids(2)
    cfg = SolveConfig(depth=3, breadth=2, retries=2, budget=100, halt="act", seed=1,
                      keep_frames=True)
    for r in solve(tiny_model, g, cfg):
        assert len(r.frames) == r.steps
        assert np.array_equal(r.frames[-1], r.answer)
        assert all(f.shape == (4, 4) for f in r.frames)
    assert solve(tiny_model, g, SolveConfig(depth=2))[0].frames is None


@pytest.mark.parametrize("in_flight", [1, 2])
def test_race_stops_a_puzzle_at_its_first_settled_restart(tiny_model, in_flight):
    """Every restart settles at step 2 (a huge tol): without race all 4 run; with race the
    puzzle stops when the first ones settle, and restarts not yet started never run."""
    g = grids(2)
    base = dict(depth=8, breadth=4, halt="residual", tol=1e9, max_rows=in_flight)
    for r in solve(tiny_model, g, SolveConfig(**base)):
        assert r.nfe == 4 * 2 and len(r.restart_steps) == 4
    for r in solve(tiny_model, g, SolveConfig(**base, race=True)):
        assert r.nfe == in_flight * 2 and len(r.restart_steps) == in_flight
        assert r.stages == 1 and r.steps == 2
    # no halting rule: nothing settles, race changes nothing
    res = solve(tiny_model, g, SolveConfig(depth=3, breadth=3, race=True, max_rows=1))
    assert all(r.nfe == 9 for r in res)


def test_under_q_selection_only_an_accepted_answer_settles(tiny_model):
    """--race --select q: a restart stopped by the residual on an answer its halting head
    rejects (q <= 0) neither ends the race nor spares the puzzle its retries; accepted
    (q > 0), the first one answers as under residual selection."""
    import copy

    g = grids(2)
    base = dict(depth=8, breadth=4, halt="residual", tol=1e9, race=True, select="q",
                max_rows=2, retries=3)
    rejecting, accepting = copy.deepcopy(tiny_model), copy.deepcopy(tiny_model)
    with torch.no_grad():
        rejecting.q_head.weight.zero_()
        rejecting.q_head.bias.fill_(-5.0)
        accepting.q_head.weight.zero_()
        accepting.q_head.bias.fill_(5.0)
    for r in solve(rejecting, g, SolveConfig(**base)):
        assert r.stages == 2 and len(r.restart_steps) == 4 + 3 and r.nfe == 7 * 2
    for r in solve(accepting, g, SolveConfig(**base)):
        assert r.stages == 1 and r.nfe == 2 * 2 and len(r.restart_steps) == 2
    for r in solve(rejecting, g, SolveConfig(**{**base, "select": "residual"})):
        assert r.stages == 1 and r.nfe == 2 * 2  # residual selection: settling suffices
    # the bar is the model's q_accept: q = 5 falls short of 6 and clears -6
    for r in solve(accepting, g, SolveConfig(**base, q_accept=6.0)):
        assert r.stages == 2
    for r in solve(rejecting, g, SolveConfig(**base, q_accept=-6.0)):
        assert r.stages == 1


def test_a_rejected_answer_becomes_the_tasks_no_answer(tiny_model):
    """Under q selection, when the halting head rejects every restart (q <= 0), the task's
    "no answer" is given instead (mazes: no path), flagged; accepted, or under another rule,
    the model's answer stands."""
    import copy

    g = grids(2)
    blank = np.zeros((4, 4), dtype=np.uint8)
    cfg = SolveConfig(depth=3, breadth=2, select="q")
    rejecting, accepting = copy.deepcopy(tiny_model), copy.deepcopy(tiny_model)
    with torch.no_grad():
        for m, bias in ((rejecting, -5.0), (accepting, 5.0)):
            m.q_head.weight.zero_()
            m.q_head.bias.fill_(bias)
    for r in solve(rejecting, g, cfg, no_answer=lambda p: blank):
        assert r.rejected and np.array_equal(r.answer, blank)
    for r in solve(accepting, g, replace(cfg, q_accept=5.5), no_answer=lambda p: blank):
        assert r.rejected and np.array_equal(r.answer, blank)
    for model, c in ((accepting, cfg), (rejecting, SolveConfig(depth=3, breadth=2)),
                     (rejecting, replace(cfg, q_accept=-5.5))):
        for r in solve(model, g, c, no_answer=lambda p: blank):
            assert not r.rejected and not np.array_equal(r.answer, blank)


@pytest.mark.parametrize("race", [False, True])
def test_each_result_is_handed_over_as_soon_as_it_is_final(tiny_model, race):
    """on_result gets every puzzle once, with the result solve returns, and the first one
    while later puzzles are still running (one trajectory in flight at a time)."""
    events = []
    cfg = SolveConfig(depth=3, breadth=2, retries=2, budget=100, halt="act", race=race,
                      max_rows=1, seed=2)
    res = solve(tiny_model, grids(4), cfg, progress=lambda n: events.append(("ran", n)),
                on_result=lambda p, r: events.append(("result", p, r)))
    handed = [e for e in events if e[0] == "result"]
    assert sorted(e[1] for e in handed) == [0, 1, 2, 3]
    assert all(res[p] is r for _, p, r in handed)
    first = events.index(handed[0])
    assert sum(e[1] for e in events[first:] if e[0] == "ran") > 0
