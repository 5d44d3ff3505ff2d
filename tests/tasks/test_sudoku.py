import numpy as np
import pytest

from eqr_solve.data import data_dir
from eqr_solve.tasks import InputError, Puzzle, PuzzleError, read_text
from eqr_solve.tasks import sudoku as S

SHARED = data_dir()  # the shared collections ($EQR_DATA_DIR, default ../shared/data)

# A well-known puzzle and its solution (public domain example).
PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
GRID_TEXT = """\
5 3 . | . 7 . | . . .
6 . . | 1 9 5 | . . .
. 9 8 | . . . | . 6 .
------+-------+------
8 . . | . 6 . | . . 3
4 . . | 8 . 3 | . . 1
7 . . | . 2 . | . . 6
------+-------+------
. 6 . | . . . | 2 8 .
. . . | 4 1 9 | . . 5
. . . | . 8 . | . 7 9
"""


def grid(s: str) -> np.ndarray:
    return S.from_line(s)


def ok(entries) -> list[Puzzle]:
    assert all(isinstance(e, Puzzle) for e in entries), entries
    return entries


def test_box_shapes_and_vocab():
    shapes = {n: S.box_shape(n) for n in (4, 6, 8, 9, 12, 16)}
    assert shapes == {4: (2, 2), 6: (2, 3), 8: (2, 4), 9: (3, 3), 12: (3, 4), 16: (4, 4)}
    assert S.vocab_size((9, 9)) == 11


def test_tokens_and_line_round_trip():
    g = grid(PUZZLE)
    assert g.dtype == np.uint8 and g.shape == (9, 9)
    assert g[0, 0] == 6 and g[0, 2] == S.BLANK  # digit 5 -> token 6
    assert S.to_line(g) == PUZZLE
    assert S.to_line(grid(PUZZLE.replace(".", "0"))) == PUZZLE
    big = S.random_solution(np.random.default_rng(0), 16)
    assert set(S.to_line(big)) == set("123456789ABCDEFG")
    assert (S.from_line(S.to_line(big)) == big).all()
    with pytest.raises(InputError, match="expected 81 cells, got 80"):
        S.from_line(PUZZLE[:80], 9)
    with pytest.raises(InputError, match="bad character 'x' at cell 3"):
        S.from_line("53x" + PUZZLE[3:])


def test_one_per_line_with_comments_crlf_and_trailing_text():
    text = (
        f"# header comment\r\n\r\n{PUZZLE}  # rating 3\r\n"
        f"{SOLUTION}\t17\r\n   \r\n{PUZZLE.replace('.', '0')},extra\n"
    )
    entries = ok(S.parse(text, "f.txt"))
    assert [e.source for e in entries] == ["f.txt:3", "f.txt:4", "f.txt:6"]
    assert (entries[0].grid == grid(PUZZLE)).all()
    assert (entries[1].grid == grid(SOLUTION)).all()
    assert (entries[2].grid == grid(PUZZLE)).all()


def test_one_per_line_small_and_large_sizes():
    x4, _ = S.generate(np.random.default_rng(1), 3, 4, blanks=8)
    x16 = S.random_solution(np.random.default_rng(2), 16)
    text = "\n".join(S.to_line(g) for g in x4) + "\n"
    assert all((e.grid == g).all() for e, g in zip(ok(S.parse(text, "f")), x4, strict=True))
    entries = ok(S.parse(S.to_line(x16) + "\n", "f"))
    assert (entries[0].grid == x16).all()


def test_multi_line_grids():
    text = "# two grids\n" + GRID_TEXT + "\n  \n" + GRID_TEXT.replace(".", "0").replace(" ", "")
    entries = ok(S.parse(text, "g.txt"))
    assert [e.source for e in entries] == ["g.txt:2", "g.txt:15"]
    for e in entries:
        assert (e.grid == grid(PUZZLE)).all()


@pytest.mark.parametrize("n", [4, 6, 8, 9, 12, 16])
def test_format_grid_round_trip(n):
    x, _ = S.generate(np.random.default_rng(n), 1, n, blanks=n * n // 3)
    text = S.format_grid(x[0])
    if n == 9:
        assert text.splitlines()[3] == "------+-------+------"
    assert (ok(S.parse(text, "t"))[0].grid == x[0]).all()


def test_csv_with_answers():
    text = (
        "source,question,answer,rating\r\n"
        f"x,{PUZZLE},{SOLUTION},0\r\n"
        f"y,{PUZZLE},{SOLUTION[:-1]}8,0\r\n"
        f"z,{PUZZLE[:-1]},{SOLUTION},0\r\n"
    )
    pairs = S.parse_with_answers(text, "e.csv")
    (first, answer), (second, none2), (third, none3) = pairs
    assert first.source == "e.csv:2" and (first.grid == grid(PUZZLE)).all()
    assert (answer == grid(SOLUTION)).all()
    assert isinstance(second, PuzzleError) and second.message.startswith("answer:")
    assert isinstance(third, PuzzleError) and third.message == "expected 81 cells, got 80"
    assert none2 is None and none3 is None
    relabelled = SOLUTION.translate(str.maketrans("12", "21"))
    more = f'"question","answer"\n{PUZZLE},{relabelled}\n{PUZZLE},.{SOLUTION[1:]}\n'
    messages = [e.message for e, _ in S.parse_with_answers(more, "f")]
    assert messages == ["answer: changes a given of the question", "answer: has blank cells"]
    no_answers = "question,rating\n" + PUZZLE + ",1\n"
    assert S.parse_with_answers(no_answers, "q.csv")[0][1] is None
    assert isinstance(S.parse(text, "e.csv")[0], Puzzle)
    assert S.parse_with_answers(PUZZLE, "p")[0][1] is None


def test_malformed_entries_are_reported_and_parsing_continues():
    row_repeat = "55" + PUZZLE[2:]
    col_repeat = PUZZLE[:18] + "4" + PUZZLE[19:]  # r3c1
    box_repeat = PUZZLE[:10] + "8" + PUZZLE[11:]  # r2c2
    lines = [
        PUZZLE[:79],
        PUZZLE[:11] + "x" + PUZZLE[12:],
        row_repeat,
        col_repeat,
        box_repeat,
        PUZZLE,
    ]
    entries = S.parse("\n".join(lines), "m")
    messages = [e.message for e in entries[:-1]]
    assert messages == [
        "expected 81 cells, got 79",
        "bad character 'x' at cell 12",
        "digit 5 appears twice in row 1",
        "digit 4 appears twice in column 1",
        "digit 8 appears twice in box 1",
    ]
    assert [e.source for e in entries] == [f"m:{i}" for i in range(1, 7)]
    assert isinstance(entries[-1], Puzzle)
    bad4 = S.parse("1234.............\n5...............\n", "s")
    assert bad4[0].message == "expected 16 cells, got 17"
    assert bad4[1].message == "digit 5 out of range for 4x4 at cell 1"


def test_malformed_grid_blocks():
    short = GRID_TEXT.replace("7 . . | . 2 . | . . 6", "7 . . | . 2 . | . .")
    wrong = GRID_TEXT.replace("4 . . | 8", "4 . . | z")
    entries = S.parse(short + "\n" + wrong + "\n" + GRID_TEXT, "b")
    assert entries[0].message == "row 6 has 8 cells, expected 9"
    assert entries[1].message == "bad character 'z' at r5c4"
    assert entries[1].source == "b:13"
    assert isinstance(entries[2], Puzzle)


@pytest.mark.parametrize("text", ["", "# only a comment\n\n", "hello world\nthis is not sudoku\n"])
def test_unrecognised_text_raises(text):
    with pytest.raises(InputError):
        S.parse(text, "x")


def test_validate():
    assert S.validate(grid(PUZZLE)) is None
    assert S.validate(grid("55" + PUZZLE[2:])) == "digit 5 appears twice in row 1"
    assert "out of range" in S.validate(np.zeros((9, 9), np.uint8))


def test_check_and_conflicts():
    p, sol = grid(PUZZLE), grid(SOLUTION)
    assert S.check(p, sol) == [] and S.is_solution(p, sol)
    assert not S.conflicts(p, sol).any()

    changed = sol.copy()
    changed[0, 0] = sol[0, 2]  # a given 5 -> 4: row 1 and box 1 repeat 4
    problems = S.check(p, changed)
    assert "cell r1c1 changes a given" in problems
    assert "row 1 repeats 4" in problems and "box 1 repeats 4" in problems
    assert S.conflicts(p, changed)[0, 0]

    blank = sol.copy()
    blank[0, 2] = S.BLANK
    assert S.check(p, blank) == ["cell r1c3 is blank"]

    swapped = sol.copy()  # swap two non-given cells of row 1 inside box 3: columns repeat
    swapped[0, 6], swapped[0, 7] = sol[0, 7], sol[0, 6]
    problems = S.check(p, swapped)
    assert problems == ["column 7 repeats 1", "column 8 repeats 9"]
    marked = S.conflicts(p, swapped)
    assert marked[0, 6] and marked[0, 7] and marked.sum() == 4

    assert S.check(p, sol[:4, :4]) != []
    bad_token = sol.copy()
    bad_token[8, 8] = 0
    assert "cell r9c9 has invalid token 0" in S.check(p, bad_token)


def test_solver_known_puzzle():
    p = grid(PUZZLE)
    assert (S.solve(p) == grid(SOLUTION)).all()
    assert S.count_solutions(p) == 1
    assert S.rating(p) == 0  # solvable by singles
    seeded = S.solve(p, rng_seed=3)
    assert (seeded == grid(SOLUTION)).all()


def shared_puzzles(name: str, count: int) -> list[np.ndarray]:
    path = SHARED / "sudoku" / name if (SHARED / "sudoku").is_dir() else SHARED / name
    if not path.exists():
        pytest.skip(f"{name}: the shared collections are not in {SHARED} (set EQR_DATA_DIR)")
    entries = S.parse(read_text(path), name)
    return [e.grid for e in entries[: 10 * count : 10]]  # test split: number divisible by 10


@pytest.mark.parametrize(
    "name",
    [
        "puzzles5_forum_hardest_1905_11+.txt",
        "puzzles2_17_clue.txt",
        "puzzles6_forum_hardest_1106.txt",
    ],
)
def test_solver_on_shared_collections(name):
    puzzles = shared_puzzles(name, 20)
    solutions, ok_ = S.solve_many(np.stack(puzzles))
    assert ok_.all()
    for p, s in zip(puzzles, solutions, strict=True):
        assert S.check(p, s) == []
        assert S.count_solutions(p) == 1
    ratings = S.rate_many(np.stack(puzzles))
    assert list(ratings) == [S.rating(p) for p in puzzles]
    assert ratings.min() >= 0
    if "hardest" in name:
        assert ratings.min() > 0  # none of these falls to singles alone


def test_count_solutions_two():
    sol = S.random_solution(np.random.default_rng(5), 9)
    # a "deadly rectangle": a b / b a on two rows of a band and two columns of two stacks
    rectangles = [
        (r1, r2, c1, c2)
        for r1 in range(9)
        for r2 in range(r1 + 1, (r1 // 3 + 1) * 3)
        for c1 in range(9)
        for c2 in range((c1 // 3 + 1) * 3, 9)
        if sol[r1, c1] == sol[r2, c2] and sol[r1, c2] == sol[r2, c1]
    ]
    assert rectangles, "no deadly rectangle in this grid"
    r1, r2, c1, c2 = rectangles[0]
    p = sol.copy()
    p[[r1, r1, r2, r2], [c1, c2, c1, c2]] = S.BLANK
    assert S.count_solutions(p) == 2
    assert S.count_solutions(p, limit=1) == 1
    assert S.count_solutions(p, limit=5) == 2


def test_unsolvable():
    p = S.from_line("123....4........")  # r1c4 must be 4, but column 4 has a 4
    assert S.validate(p) is None
    assert S.solve(p) is None and S.count_solutions(p) == 0 and S.rating(p) == -1
    batch = np.stack([p, S.generate(np.random.default_rng(0), 1, 4)[0][0]])
    solutions, ok_ = S.solve_many(batch)
    assert list(ok_) == [False, True]
    assert (solutions[0] == 0).all() and S.check(batch[1], solutions[1]) == []


@pytest.mark.parametrize("n", [4, 6, 8, 9, 12, 16])
def test_random_solution_is_valid(n):
    sol = S.random_solution(np.random.default_rng(n), n)
    assert S.check(np.full((n, n), S.BLANK, np.uint8), sol) == []


@pytest.mark.parametrize("n, blanks", [(4, 10), (6, 20), (9, 50)])
def test_generate_exact_blanks_unique(n, blanks):
    x, y = S.generate(np.random.default_rng(7), 20, n, blanks=blanks)
    assert x.shape == y.shape == (20, n, n) and x.dtype == np.uint8
    assert ((x == S.BLANK).sum(axis=(1, 2)) == blanks).all()
    for p, s in zip(x, y, strict=True):
        assert S.check(p, s) == []
        assert S.count_solutions(p) == 1
    assert len({S.to_line(p) for p in x}) == 20


@pytest.mark.parametrize("n", [4, 6, 9])
def test_generate_minimal(n):
    x, y = S.generate(np.random.default_rng(8), 5, n, minimal=True)
    for p, s in zip(x, y, strict=True):
        assert S.check(p, s) == [] and S.count_solutions(p) == 1
        for r, c in np.argwhere(p > S.BLANK):
            fewer = p.copy()
            fewer[r, c] = S.BLANK
            assert S.count_solutions(fewer) == 2


def test_generate_errors_and_rated():
    with pytest.raises(ValueError, match="fewer blanks"):
        S.generate(np.random.default_rng(0), 1, 4, blanks=15)
    with pytest.raises(ValueError):
        S.generate(np.random.default_rng(0), 1, 4, blanks=5, minimal=True)
    x, _ = S.generate_rated(np.random.default_rng(0), 4, 9, min_rating=1, max_rating=5)
    assert len(x) == 4 and all(1 <= S.rating(p) <= 5 for p in x)


@pytest.mark.parametrize("n", [4, 6, 9])
def test_augment_keeps_pairs_valid(n):
    x, y = S.generate(np.random.default_rng(9), 30, n, blanks=n * n // 2)
    ax, ay = S.augment(np.random.default_rng(10), x, y)
    assert ax.shape == x.shape and ax.dtype == x.dtype
    assert not (ax == x).all(axis=(1, 2)).any()  # every row was transformed
    for p, s in zip(ax, ay, strict=True):
        assert S.check(p, s) == []
        assert S.count_solutions(p) == 1
    assert ((ax == S.BLANK).sum(axis=(1, 2)) == n * n // 2).all()
    # each row gets its own transform
    same = S.augment(np.random.default_rng(0), x[:1].repeat(8, 0), y[:1].repeat(8, 0))[0]
    assert len({S.to_line(p) for p in same}) == 8


def test_a_maze_file_says_so():
    with pytest.raises(InputError, match="a maze\\? solve it with eqr-solve maze"):
        S.parse("#####\n#S G#\n#####\n", "m.txt")


@pytest.mark.parametrize("n", [4, 6, 9])
def test_canonical_keys_are_the_same_for_every_augmented_copy(n):
    """The split guard's key: every copy augment makes (relabelled, permuted, transposed
    where boxes are square) has the key of the original, and different puzzles differ."""
    from eqr_solve import data

    rng = np.random.default_rng(n)
    ds = data.generate("sudoku", 60, seed=n, n=n, blanks=n * n // 2)
    keys = S.canonical_keys(ds.inputs)
    assert keys == [S.canonical_key(g) for g in ds.inputs]
    if n == 9:  # (small boards hold few essentially different puzzles: copies happen)
        assert len(set(keys)) == len(keys)
    for _ in range(3):
        copies, _ = S.augment(rng, ds.inputs, ds.labels)
        assert S.canonical_keys(copies) == keys
    # one clue moved to another blank cell is another puzzle
    g = ds.inputs[0].copy()
    clue, blank = np.argwhere(g > S.BLANK)[0], np.argwhere(g == S.BLANK)[0]
    g[tuple(blank)], g[tuple(clue)] = g[tuple(clue)], S.BLANK
    assert S.canonical_key(g) != keys[0]
