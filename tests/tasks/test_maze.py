import numpy as np
import pytest

from eqr_solve.tasks import InputError, Puzzle, PuzzleError
from eqr_solve.tasks import maze as M

SMALL = ["#######", "#S    #", "# ### #", "#   #G#", "#######"]
# Two shortest paths of length 4 from S to G (around either side of the middle wall).
TWO_WAYS = ["#####", "#S  #", "# # #", "#  G#", "#####"]


def grid(rows: list[str]) -> np.ndarray:
    return M.from_rows(rows)


def answer(rows: list[str]) -> np.ndarray:
    return M.from_rows(rows)


def test_round_trip_and_tokens():
    g = grid(SMALL)
    assert g.dtype == np.uint8 and g.shape == (5, 7)
    assert g[0, 0] == M.WALL and g[1, 1] == M.START and g[1, 2] == M.OPEN and g[3, 5] == M.GOAL
    assert M.to_rows(g) == SMALL
    assert M.format_grid(g) == "\n".join(SMALL)
    assert grid(["#.o#"]).tolist() == [[M.WALL, M.OPEN, M.PATH, M.WALL]]
    with pytest.raises(InputError, match="bad character 'x' at row 1, column 2"):
        M.from_rows(["#x#"])


def test_parse_several_mazes_crlf_ragged_and_path_cells():
    ragged = ["#####", "#S", "#.o.G", "#####"]  # short row padded with open cells
    text = "\r\n".join(SMALL) + "\r\n \t \r\n\r\n" + "\n".join(ragged) + "\n"
    entries = M.parse(text, "m.txt")
    assert all(isinstance(e, Puzzle) for e in entries)
    first, second = entries
    assert first.source == "m.txt:1" and second.source == "m.txt:8"
    assert (first.grid == grid(SMALL)).all()
    assert second.grid.shape == (4, 5)
    assert M.to_rows(second.grid) == ["#####", "#S   ", "#   G", "#####"]  # o read as open


def test_trailing_spaces_are_not_cells():
    """Spaces after the widest drawn row (an editor's trailing white space) do not widen
    the maze; a short row is still padded with open cells."""
    (maze,) = M.parse("#####  \n#S G#   \n#  \n#####\n", "m.txt")
    assert M.to_rows(maze.grid) == ["#####", "#S G#", "#    ", "#####"]


def test_looks_like_a_maze():
    assert M.looks_like("\n".join(SMALL))
    assert not M.looks_like("# 9x9 Sudoku, Generated (S, G)\n" + "." * 81)


@pytest.mark.parametrize(
    "rows, message",
    [
        (["####", "#Sx#", "#G #", "####"], "bad character 'x' at row 2, column 3"),
        (["####", "#  #", "#G #", "####"], "no start 'S'"),
        (["####", "#SS#", "#G #", "####"], "2 cells are start 'S', expected one"),
        (["####", "#S #", "#  #", "####"], "no goal 'G'"),
        (["####", "#SG#", "#G #", "####"], "2 cells are goal 'G', expected one"),
        (["SG"], "maze is 1x2, need at least 2x2"),
    ],
)
def test_parse_errors_then_continue(rows, message):
    text = "\n".join(rows) + "\n\n" + "\n".join(SMALL)
    bad, good = M.parse(text, "e")
    assert isinstance(bad, PuzzleError) and bad.message == message and bad.source == "e:1"
    assert isinstance(good, Puzzle) and good.source == f"e:{len(rows) + 2}"


@pytest.mark.parametrize("text", ["", "\n  \n", "4.....8.5.3..........1.......\nhello\n"])
def test_not_a_maze_raises(text):
    with pytest.raises(InputError):
        M.parse(text, "x")


def test_solve_and_path_counts():
    g = grid(SMALL)
    label = M.solve(g)
    assert M.to_rows(label) == ["#######", "#Soooo#", "# ###o#", "#   #G#", "#######"]
    assert M.path_length(g) == 6
    assert M.count_shortest_paths(g) == 1
    two = grid(TWO_WAYS)
    assert M.count_shortest_paths(two) == 2 and M.count_shortest_paths(two, cap=5) == 2
    assert M.path_length(two) == 4
    assert (M.solve(two) == M.solve(two)).all()
    room = np.full((6, 6), M.OPEN, np.uint8)
    room[0, 0], room[5, 5] = M.START, M.GOAL
    assert M.count_shortest_paths(room, cap=1000) == 252  # C(10, 5) monotone lattice paths
    blocked = grid(["#####", "#S#G#", "#####"])
    assert (M.solve(blocked) == blocked).all() and M.path_length(blocked) == -1
    assert M.count_shortest_paths(blocked) == 0


def test_check_accepts_any_shortest_path():
    two = grid(TWO_WAYS)
    upper = answer(["#####", "#Soo#", "# #o#", "#  G#", "#####"])
    lower = answer(["#####", "#S  #", "#o# #", "#ooG#", "#####"])
    for a in (upper, lower, M.solve(two)):
        assert M.check(two, a) == [] and M.is_solution(two, a)
        assert not M.conflicts(two, a).any()


def test_check_rejects_wrong_answers():
    g = grid(SMALL)
    cases = {
        "unmarked": (SMALL, "the path stops at r2c2 before reaching G"),
        "broken": (
            ["#######", "#Soo o#", "# ###o#", "#   #G#", "#######"],
            "the path stops at r2c4 before reaching G",
        ),
        "stray": (
            ["#######", "#Soooo#", "# ###o#", "#o  #G#", "#######"],
            "1 stray 'o' cell off the S-G path",
        ),
        "wall": (
            ["#######", "#Soooo#", "# ###o#", "#   #G#", "#o#####"],
            "cell r5c2 changed from '#' to 'o'",
        ),
        "moved_goal": (
            ["#######", "#Soooo#", "# ###o#", "#   #o#", "#####G#"],
            "cell r4c6 changed from 'G' to 'o'",
        ),
    }
    for name, (rows, message) in cases.items():
        problems = M.check(g, answer(rows))
        assert message in problems, (name, problems)
    assert M.check(g, answer(SMALL[:3])) != []


def test_check_other_shortest_paths_and_branches():
    room = grid(["#######", "#S    #", "#     #", "#    G#", "#######"])
    for rows in (
        ["#######", "#S    #", "#o    #", "#ooooG#", "#######"],
        ["#######", "#Sooo #", "#   o #", "#   oG#", "#######"],
        ["#######", "#Soooo#", "#    o#", "#    G#", "#######"],
    ):
        assert M.check(room, answer(rows)) == []
    zigzag = answer(["#######", "#Soo  #", "# oo  #", "#  ooG#", "#######"])
    assert M.check(room, zigzag) == ["the path branches or loops at r2c3"]


def test_check_path_too_long():
    g = grid(["#######", "#S   G#", "# ### #", "#     #", "#######"])
    way_round = answer(["#######", "#S   G#", "#o###o#", "#ooooo#", "#######"])
    assert M.check(g, way_round) == ["the path has length 8, the shortest is 4"]
    marked = M.conflicts(g, way_round)
    assert marked.sum() == 7 and not marked[1, 1]


def test_conflicts_marks_changed_cells():
    g = grid(SMALL)
    a = M.solve(g)
    a[4, 1] = M.PATH  # path on a wall
    a[3, 1] = M.WALL  # open cell made a wall
    marked = M.conflicts(g, a)
    assert marked[4, 1] and marked[3, 1] and marked.sum() == 2


def test_path_errors_counts_missing_and_extra_path_cells():
    label = M.solve(grid(SMALL))
    extra = label.copy()
    extra[3, 1] = M.PATH  # an open cell off the path marked as path
    missing = label.copy()
    missing[missing == M.PATH] = M.OPEN  # the whole path erased
    answers, labels = np.stack([label, extra, missing]), np.stack([label] * 3)
    exact, fp, fn = M.path_errors(answers, labels)
    n_path = int((label == M.PATH).sum())
    assert n_path > 0
    assert exact == pytest.approx(1 / 3)
    assert fp == pytest.approx(1 / 3) and fn == pytest.approx(n_path / 3)


@pytest.mark.parametrize(
    "h, w, lo, hi",
    [(9, 9, 4, 10), (15, 15, 20, 40), (30, 30, 100, 140), (11, 20, 10, 30)],
)
def test_generate_perfect(h, w, lo, hi):
    x, y = M.generate(np.random.default_rng(h * w), 40, h, w, lo, hi)
    assert x.shape == y.shape == (40, h, w) and x.dtype == np.uint8
    assert set(np.unique(x)) == {M.WALL, M.OPEN, M.START, M.GOAL}
    open_cells = 2 * ((h - 1) // 2) * ((w - 1) // 2) - 1
    for p, label in zip(x, y, strict=True):
        assert (p != M.WALL).sum() == open_cells
        assert lo <= M.path_length(p) <= hi
        assert M.count_shortest_paths(p) == 1
        assert (M.solve(p) == label).all()
        assert M.check(p, label) == []
    if h % 2 == 0:  # even sizes: the last row / column stay wall
        assert (x[:, -1, :] == M.WALL).all()
    if w % 2 == 0:
        assert (x[:, :, -1] == M.WALL).all()


def test_30x30_has_391_open_cells():
    x, _ = M.generate(np.random.default_rng(0), 3)
    assert ((x != M.WALL).sum(axis=(1, 2)) == 391).all()


def test_generate_random_mode():
    x, y = M.generate(np.random.default_rng(1), 30, 15, 15, 8, 20, mode="random")
    for p, label in zip(x, y, strict=True):
        assert 8 <= M.path_length(p) <= 20
        assert M.count_shortest_paths(p) == 1
        assert (M.solve(p) == label).all()
        assert (p[0] == M.WALL).all() and (p[:, -1] == M.WALL).all()
    x, y = M.generate(
        np.random.default_rng(2), 30, 15, 15, 8, 20, mode="random", require_unique=False
    )
    assert all((M.solve(p) == label).all() for p, label in zip(x, y, strict=True))


def test_generate_impossible_raises():
    with pytest.raises(ValueError, match="cannot fit"):
        M.generate(np.random.default_rng(0), 1, 9, 9, 40, 50)
    with pytest.raises(ValueError, match="could not place"):  # 3x3 open room: at most 4 steps
        M.generate(np.random.default_rng(0), 1, 5, 5, 8, 8, mode="random")
    with pytest.raises(ValueError):
        M.generate(np.random.default_rng(0), 1, 9, 9, 4, 10, mode="spiral")


def test_dedupe():
    x, y = M.generate(np.random.default_rng(3), 300, 5, 5, 2, 3)
    dx, dy = M.dedupe(x, y)
    assert len(dx) < len(x)  # 5x5 mazes repeat a lot
    assert len({p.tobytes() for p in dx}) == len(dx)
    assert all((M.solve(p) == label).all() for p, label in zip(dx, dy, strict=True))
    assert (dx[0] == x[0]).all()  # first occurrences kept in order


@pytest.mark.parametrize("h, w", [(15, 15), (11, 21)])
def test_augment(h, w):
    x, y = M.generate(np.random.default_rng(4), 64, h, w, 10, 20)
    ax, ay = M.augment(np.random.default_rng(5), x, y)
    assert ax.shape == x.shape
    for p, label, orig in zip(ax, ay, x, strict=True):
        assert M.check(p, label) == []
        assert M.path_length(p) == M.path_length(orig)
    variants = {M.augment(np.random.default_rng(k), x[:1], y[:1])[0].tobytes() for k in range(64)}
    assert len(variants) == (8 if h == w else 4)
    assert (
        x == M.generate(np.random.default_rng(4), 64, h, w, 10, 20)[0]
    ).all()  # inputs untouched


@pytest.mark.parametrize("h, w", [(9, 9), (7, 11)])
def test_canonical_key_is_the_same_for_every_symmetry_and_only_for_it(h, w):
    x, y = M.generate(np.random.default_rng(6), 40, h, w, 3, 8)
    keys = [M.canonical_key(g) for g in x]
    for k in range(8):
        ax, _ = M.augment(np.random.default_rng(k), x, y)
        assert [M.canonical_key(g) for g in ax] == keys
    distinct = {g.tobytes() for g in x}
    assert len(set(keys)) <= len(distinct) and len(set(keys)) > 1


def test_canvas_walls_small_mazes_in_at_random_places():
    rng = np.random.default_rng(0)
    x, y = M.generate(rng, 20, height=7, width=7, min_path=2, max_path=8, canvas=(15, 15))
    assert x.shape == y.shape == (20, 15, 15)
    open_rows = {int(np.flatnonzero((g != M.WALL).any(1))[0]) for g in x}
    assert len(open_rows) > 1  # offsets vary
    for g, lab in zip(x, y):
        assert (g != M.WALL).sum() <= 7 * 7 and M.check(g, lab) == []
    with pytest.raises(ValueError, match="does not fit"):
        M.generate(rng, 1, height=9, width=9, min_path=2, max_path=8, canvas=(7, 7))


def test_a_maze_without_a_path_is_a_puzzle_whose_answer_is_no_path():
    rows = ["#####", "#S#G#", "#####"]
    (p,) = M.parse("\n".join(rows), "n")
    assert isinstance(p, Puzzle) and not M.has_path(p.grid) and M.path_length(p.grid) == -1
    assert (M.solve(p.grid) == p.grid).all()  # the label: nothing marked
    assert M.check(p.grid, p.grid) == []
    drawn = p.grid.copy()
    drawn[1, 2] = M.PATH  # a path through the wall: changed cell and a path where none exists
    problems = M.check(p.grid, drawn)
    assert "cell r2c3 changed from '#' to 'o'" in problems
    assert problems[-1] == "the maze has no path from S to G, but 1 cell is marked 'o'"
    assert M.conflicts(p.grid, drawn)[1, 2]


@pytest.mark.parametrize("mode", ["perfect", "random"])
def test_generate_no_path_share(mode):
    rng = np.random.default_rng(5)
    x, y = M.generate(rng, 200, 11, 11, 3, 20, mode=mode, no_path=0.5)
    none = np.array([not M.has_path(g) for g in x])
    assert 0.3 < none.mean() < 0.7  # a perfect maze always loses its path; a random one may not
    assert (y[none] == x[none]).all()  # "no path" labels are the inputs
    for g, label in zip(x, y):
        assert M.check(g, label) == [] and (M.solve(g) == label).all()
    x0, _ = M.generate(np.random.default_rng(5), 50, 11, 11, 3, 20, mode=mode)
    assert all(M.has_path(g) for g in x0)
    with pytest.raises(ValueError, match="no_path"):
        M.generate(rng, 1, 11, 11, 3, 20, no_path=1.5)
