from pathlib import Path

import numpy as np
import pytest

from eqr_solve import data
from eqr_solve.tasks import InputError, sudoku

REAL = data.data_dir()
HAVE_REAL = all((REAL / "sudoku" / n).is_file() or (REAL / n).is_file() for n in data.COLLECTIONS)
needs_real = pytest.mark.skipif(
    not HAVE_REAL, reason=f"the shared Sudoku collections are not in {REAL} (set EQR_DATA_DIR)")
RELABEL = np.array([0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 2], dtype=np.uint8)  # digits d -> d+1 mod 9


def disguise(grids: np.ndarray) -> np.ndarray:
    """A copy that augmentation could make: relabelled, transposed, bands 0 and 1 swapped,
    rows 6 and 8 swapped, the first two stacks swapped."""
    g = RELABEL[grids].transpose(0, 2, 1)
    g = g[:, [3, 4, 5, 0, 1, 2, 8, 7, 6]]
    return g[:, :, [3, 4, 5, 0, 1, 2, 6, 7, 8]]


def fake_shared(tmp_path: Path) -> Path:
    """A tiny stand-in for shared/data, nothing real in it: a file with every shared
    collection's name, generated unique puzzles inside. ``puzzles2_17_clue.txt`` holds 30 of
    them between comments and blank lines; the test-only magictour file holds an augmented
    copy of its train puzzle 1."""
    sub = tmp_path / "shared" / "sudoku"
    sub.mkdir(parents=True)
    ds = data.generate("sudoku", 40, seed=11, n=9, blanks=45)
    lines = [sudoku.to_line(g) for g in ds.inputs]
    mine = ["# comment", ""] + lines[:15] + ["", "# another"] + lines[15:30]
    (sub / data.COLLECTIONS[0]).write_text("\r\n".join(mine) + "\r\n")
    (sub / data.TEST_ONLY_FILES[0]).write_text(sudoku.to_line(disguise(ds.inputs[1:2])[0]) + "\n")
    for name, part in zip(data.COLLECTIONS[2:], (lines[30:33], lines[33:35], lines[35:40])):
        (sub / name).write_text("\n".join(part) + "\n")
    return tmp_path / "shared"


def numbers(ds: data.Dataset) -> set[int]:
    return {int(s.rsplit(":", 1)[1]) for s in ds.source}


def test_split_rule():
    assert data.split_of("x.txt", 0) == "test" and data.split_of("x.txt", 30) == "test"
    assert data.split_of("x.txt", 1) == "train" and data.split_of("x.txt", 19) == "train"
    for name in data.TEST_ONLY_FILES:
        assert data.split_of(name, 1) == "test"


def test_collection_numbering_skips_comments_and_blanks(tmp_path):
    shared = fake_shared(tmp_path)
    lines = data.collection_lines(shared / "sudoku" / data.COLLECTIONS[0])
    assert [n for n, _ in lines] == list(range(30))


def test_train_split_never_holds_test_puzzles(tmp_path):
    shared = fake_shared(tmp_path)
    name = data.COLLECTIONS[0]
    train = data.load_collection(name, "train", shared_dir=shared)
    test = data.load_collection(name, "test", shared_dir=shared)
    assert numbers(test) == {0, 10, 20}
    assert numbers(train).isdisjoint(numbers(test))
    assert 1 not in numbers(train)  # its augmented copy is in a test-only file
    assert train.manifest["dropped_as_test_duplicates"] == 1
    assert len(train) == 26
    for p, y in zip(train.inputs, train.labels):
        assert sudoku.is_solution(p, y)


def guard_refuses_test_puzzles(shared: Path, source: Path) -> None:
    """The split guard with data directory ``shared`` refuses the test puzzles of the fake
    collections in ``source`` and augmented copies of them, and passes their train split."""
    name = data.COLLECTIONS[0]
    test = data.load_collection(name, "test", shared_dir=source)
    with pytest.raises(ValueError, match="3 test puzzles"):
        data.assert_no_test_puzzles(test, shared)
    disguised = test.subset([0])
    disguised.inputs = disguise(disguised.inputs)
    with pytest.raises(ValueError, match="1 test puzzles"):
        data.assert_no_test_puzzles(disguised, shared)
    data.assert_no_test_puzzles(data.load_collection(name, "train", shared_dir=source), shared)
    only = data.load_collection(data.TEST_ONLY_FILES[0], "test", shared_dir=source)
    only.inputs = disguise(only.inputs)  # a copy of train puzzle 1, disguised twice
    with pytest.raises(ValueError, match="1 test puzzles"):
        data.assert_no_test_puzzles(only, shared)


def test_guard_with_collections(tmp_path, monkeypatch):
    """The collections present, no fingerprint: their own test keys guard."""
    shared = fake_shared(tmp_path)
    monkeypatch.setattr(data, "FINGERPRINT", tmp_path / "none.npz")
    guard_refuses_test_puzzles(shared, shared)


def test_guard_without_collections_uses_the_fingerprint(tmp_path, monkeypatch):
    """No collections: the fingerprint alone refuses the same puzzles."""
    shared = fake_shared(tmp_path)
    fingerprint = data.make_fingerprint(tmp_path / "fp.npz", shared)
    with np.load(fingerprint) as f:
        assert f["test_puzzles"].tolist() == [3, 1, 1, 2, 1]  # 0/10/20; both test-only; 0s
        assert len(f["digests"]) == 8 and f["digests"].dtype == np.uint64
    monkeypatch.setattr(data, "FINGERPRINT", fingerprint)
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    guard_refuses_test_puzzles(empty, shared)


def test_guard_with_neither_refuses_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "FINGERPRINT", tmp_path / "none.npz")
    ds = data.generate("sudoku", 2, seed=0, n=9, blanks=40)
    with pytest.raises(InputError) as e:
        data.assert_no_test_puzzles(ds, tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "none.npz" in msg and data.COLLECTIONS[0] in msg
    assert str(tmp_path) in msg and "tdoku" in msg
    data.assert_no_test_puzzles(data.generate("sudoku", 2, seed=0, n=4, blanks=6), tmp_path)


def test_missing_collection_is_one_line_naming_file_dir_and_source(tmp_path):
    with pytest.raises(InputError) as e:
        data.load_collection("puzzles2_17_clue.txt", "test", shared_dir=tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "puzzles2_17_clue.txt" in msg and str(tmp_path) in msg
    assert "https://github.com/t-dillon/tdoku" in msg and "EQR_DATA_DIR" in msg


def test_data_dir_from_environment_or_argument(tmp_path, monkeypatch):
    shared = fake_shared(tmp_path)
    for var in data.DATA_DIR_VARS:
        monkeypatch.delenv(var, raising=False)
    assert data.data_dir() == data.DEFAULT_DATA_DIR
    monkeypatch.setenv("EQR_SHARED_DATA", str(tmp_path / "old"))
    assert data.data_dir() == tmp_path / "old"  # the older name still works
    monkeypatch.setenv("EQR_DATA_DIR", str(shared))
    assert data.data_dir() == shared  # EQR_DATA_DIR wins
    assert data.data_dir(tmp_path / "arg") == tmp_path / "arg"  # an argument wins over both
    assert numbers(data.load_collection(data.COLLECTIONS[0], "test")) == {0, 10, 20}
    flat = tmp_path / "flat"  # the files straight in the directory, no sudoku/
    (shared / "sudoku").rename(flat)
    (flat / "notes.txt").write_text("not a puzzle\n")  # other files there are not read
    assert len(data.load_collection(data.COLLECTIONS[0], "test", shared_dir=flat)) == 3
    assert len(data.test_keys(flat)) == 8


def test_packaged_fingerprint_is_small_and_complete(tmp_path, monkeypatch):
    assert data.FINGERPRINT.is_file() and data.FINGERPRINT.stat().st_size < 300_000
    with np.load(data.FINGERPRINT) as f:
        d = f["digests"]
        assert f["files"].tolist() == list(data.COLLECTIONS)
        assert f["test_puzzles"].sum() >= len(d) > 12_000
    assert d.dtype == np.uint64 and (np.diff(d) > 0).all()
    # without the collections, generated training data is checked against it and passes
    monkeypatch.setenv("EQR_DATA_DIR", str(tmp_path))
    data.assert_no_test_puzzles(data.generate("sudoku", 20, seed=4, n=9, blanks=50))


@needs_real
def test_packaged_fingerprint_matches_the_collections(tmp_path):
    again = data.make_fingerprint(tmp_path / "fp.npz", REAL)
    with np.load(again) as a, np.load(data.FINGERPRINT) as b:
        assert np.array_equal(a["digests"], b["digests"])
        assert a["test_puzzles"].tolist() == b["test_puzzles"].tolist()


@needs_real
def test_real_shared_train_split_is_clean():
    ds = data.load_collection("puzzles2_17_clue.txt", "train", limit=200)
    data.assert_no_test_puzzles(ds)
    assert all(int(s.rsplit(":", 1)[1]) % 10 for s in ds.source)


@needs_real
@pytest.mark.parametrize("where", ["collections", "fingerprint only"])
def test_real_test_puzzles_refused(tmp_path, monkeypatch, where):
    """Real test puzzles, relabelled, as training data: refused by the real collections' keys
    alone, and by the packaged fingerprint alone."""
    if where == "collections":
        shared = REAL
        monkeypatch.setattr(data, "FINGERPRINT", tmp_path / "none.npz")
    else:
        shared = tmp_path
    for name in (data.COLLECTIONS[0], data.TEST_ONLY_FILES[1]):
        test = data.load_collection(name, "test", limit=5)
        test.inputs = RELABEL[test.inputs]
        with pytest.raises(ValueError, match="5 test puzzles"):
            data.assert_no_test_puzzles(test, shared)


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
