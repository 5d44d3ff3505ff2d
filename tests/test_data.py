from pathlib import Path

import numpy as np
import pytest

from eqr_solve import data
from eqr_solve.tasks import InputError, sudoku

SHARED = data.SHARED_DIR


def fake_shared(tmp_path: Path) -> Path:
    """A small shared/data layout: 30 real puzzles from a collection plus a test-only file."""
    src = data.collection_lines(SHARED / "sudoku" / "puzzles5_forum_hardest_1905_11+.txt")[:30]
    (tmp_path / "sudoku").mkdir()
    lines = ["# comment", ""] + [s for _, s in src]
    (tmp_path / "sudoku" / "mine.txt").write_text("\r\n".join(lines) + "\r\n")
    # a test-only file holding a relabelled copy of train puzzle 1
    g = sudoku.from_line(src[1][1][:81])
    relabel = np.array([0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 2], dtype=np.uint8)
    (tmp_path / "sudoku" / data.TEST_ONLY_FILES[0]).write_text(sudoku.to_line(relabel[g]) + "\n")
    return tmp_path


def test_split_rule():
    assert data.split_of("x.txt", 0) == "test" and data.split_of("x.txt", 30) == "test"
    assert data.split_of("x.txt", 1) == "train" and data.split_of("x.txt", 19) == "train"
    for name in data.TEST_ONLY_FILES:
        assert data.split_of(name, 1) == "test"


def test_collection_numbering_skips_comments_and_blanks(tmp_path):
    shared = fake_shared(tmp_path)
    lines = data.collection_lines(shared / "sudoku" / "mine.txt")
    assert [n for n, _ in lines] == list(range(30))


def test_train_split_never_holds_test_puzzles(tmp_path):
    shared = fake_shared(tmp_path)
    train = data.load_collection("mine.txt", "train", shared_dir=shared)
    test = data.load_collection("mine.txt", "test", shared_dir=shared)
    numbers = lambda ds: {int(s.rsplit(":", 1)[1]) for s in ds.source}  # noqa: E731
    assert numbers(test) == {0, 10, 20}
    assert numbers(train).isdisjoint(numbers(test))
    assert 1 not in numbers(train)  # its relabelled copy is in a test-only file
    assert train.manifest["dropped_as_test_duplicates"] == 1
    for p, y in zip(train.inputs, train.labels):
        assert sudoku.is_solution(p, y)


def test_guard_refuses_test_puzzles_even_relabelled(tmp_path):
    shared = fake_shared(tmp_path)
    test = data.load_collection("mine.txt", "test", shared_dir=shared)
    with pytest.raises(ValueError, match="test puzzles"):
        data.assert_no_test_puzzles(test, shared)
    relabel = np.array([0, 1, 10, 9, 8, 7, 6, 5, 4, 3, 2], dtype=np.uint8)
    disguised = test.subset([0])
    disguised.inputs = relabel[disguised.inputs]
    with pytest.raises(ValueError, match="test puzzles"):
        data.assert_no_test_puzzles(disguised, shared)
    data.assert_no_test_puzzles(data.load_collection("mine.txt", "train", shared_dir=shared),
                                shared)


def test_real_shared_train_split_is_clean():
    ds = data.load_collection("puzzles2_17_clue.txt", "train", limit=200)
    data.assert_no_test_puzzles(ds)
    assert all(int(s.rsplit(":", 1)[1]) % 10 for s in ds.source)


def test_generated_dataset_save_load(tmp_path):
    ds = data.generate("sudoku", 20, seed=3, n=4, blanks=[6, 8])
    assert sorted(set((ds.inputs == 1).sum((1, 2)).tolist())) == [6, 7, 8]
    ds.save(tmp_path / "set")
    back = data.Dataset.load(tmp_path / "set")
    assert np.array_equal(back.inputs, ds.inputs) and back.manifest["seed"] == 3
    assert back.manifest["count"] == 20 and back.shape == (4, 4)
    again = data.generate("sudoku", 20, seed=3, n=4, blanks=[6, 8])
    assert np.array_equal(again.inputs, ds.inputs)  # deterministic in the seed
    with pytest.raises(InputError):
        data.Dataset.load(tmp_path / "missing")


def test_stream_is_resumable_and_augments_validly():
    ds = data.generate("sudoku", 16, seed=0, n=4, blanks=8)
    a = data.PuzzleStream([ds], [1.0], seed=5)
    a.take(3)
    state = a.state_dict()
    x1, y1 = a.take(4)
    b = data.PuzzleStream([ds], [1.0], seed=99)
    b.load_state_dict(state)
    x2, y2 = b.take(4)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    for p, s in zip(x1, y1):
        assert sudoku.is_solution(p, s)


def test_curriculum_moves_the_mix():
    easy = data.generate("sudoku", 8, seed=0, n=4, blanks=4)
    hard = data.generate("sudoku", 8, seed=1, n=4, blanks=10)
    s = data.PuzzleStream([easy, hard], [0.0, 1.0], seed=0, start_weights=[1.0, 0.0])
    assert s.mix(0.0).tolist() == [1.0, 0.0] and s.mix(1.0).tolist() == [0.0, 1.0]
    assert ((s.take(32, 0.0)[0] == 1).sum((1, 2)) == 4).all()
    assert ((s.take(32, 1.0)[0] == 1).sum((1, 2)) == 10).all()


def test_maze_dataset_difficulty_is_path_length():
    ds = data.generate("maze", 5, seed=0, height=9, width=9, min_path=4, max_path=8)
    assert ((ds.difficulty >= 4) & (ds.difficulty <= 8)).all()


def test_drop_seen_removes_symmetric_copies_of_training_mazes(tmp_path):
    from eqr_solve.tasks import maze

    train = data.generate("maze", 300, seed=1, height=5, width=5, min_path=2, max_path=4)
    evals = data.generate("maze", 50, seed=2, height=5, width=5, min_path=2, max_path=4)
    flipped = train.inputs[:10, ::-1].copy()  # mirror images of training mazes
    evals.inputs[:10], evals.labels[:10] = flipped, train.labels[:10, ::-1]
    kept, dropped = data.drop_seen(evals, [train])
    assert dropped >= 10 and len(kept) == len(evals) - dropped
    assert kept.manifest["dropped_as_seen"] == dropped
    seen = {maze.canonical_key(g) for g in train.inputs}
    assert all(maze.canonical_key(g) not in seen for g in kept.inputs)
    kept.save(tmp_path / "kept")
    assert len(data.Dataset.load(tmp_path / "kept")) == len(kept)
