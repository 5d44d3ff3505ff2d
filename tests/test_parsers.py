"""The puzzle readers on bad input: specific cases, then property-based fuzzing (hypothesis).

Whatever the text, a parser returns puzzles and per-puzzle PuzzleError records or raises the
tool's own InputError; nothing else may come out (tests/fuzz_parsers.py runs the same check
on many more inputs, outside the default test run)."""

import os
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eqr_solve.tasks import InputError, Puzzle, PuzzleError, maze, read_puzzles, read_text, sudoku

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("header", ["'question',answer", '"question","answer"',
                                    '"question", "answer"', " Question ,ANSWER"])
def test_csv_header_with_quotes(header):
    (entry, answer), = sudoku.parse_with_answers(f"{header}\n1...........3..2,1243432121343412\n",
                                                 "x.csv")
    assert isinstance(entry, Puzzle) and answer is not None


def test_csv_error_is_input_error():
    with pytest.raises(InputError, match="CSV"):
        sudoku.parse('question,answer\n"' + "1" * 200_000 + '",x\n', "big.csv")


def test_a_25x25_line_names_the_sizes_there_are():
    (entry,) = sudoku.parse("." * 625 + "\n", "x")
    assert entry.message == ("got 625 cells; a puzzle has 16, 36, 64, 81, 144, 256 cells "
                             "(4x4 up to 16x16)")


def test_a_line_of_spaces_is_a_maze_row_not_a_separator():
    (m,) = maze.parse("SG\n  \n", "m")
    assert isinstance(m, Puzzle) and m.grid.shape == (2, 2)
    assert len(maze.parse("#S#\n# #\n#G#\n\n#S#\n#G#\n", "m")) == 2  # an empty line separates


def test_read_text_caps_what_it_reads(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("1" * 5000)
    assert read_text(path, limit=5000) == "1" * 5000
    with pytest.raises(InputError, match="bigger than"):
        read_text(path, limit=4999)
    with pytest.raises(InputError, match="not a text file"):
        read_text(Path("/dev/zero"))  # stops at the first chunk, never fills the memory


def test_read_text_of_an_endless_fifo_stops_at_the_cap(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed():
        try:
            with open(fifo, "w") as f:
                while True:
                    f.write("1" * 4096)
        except OSError:  # the reader gave up: the pipe is closed
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    with pytest.raises(InputError, match="bigger than"):
        read_text(fifo, limit=100_000)
    writer.join(timeout=10)


# -- fuzzing ------------------------------------------------------------------------------------
def warm_up() -> None:  # compile the numba kernels once, outside the timed examples
    sudoku.parse((EXAMPLES / "sudoku-4x4.txt").read_text(), "w")
    maze.parse((EXAMPLES / "maze-9x9.txt").read_text(), "w")


warm_up()
GRIDISH = st.text(alphabet=st.sampled_from(list("123456789ABCDEFG.0#SGo -|+,'\"\n\r\t;xq")),
                  max_size=600)
WORDS = st.lists(st.sampled_from(["question", "answer", "source", ",", '"', "'", "\n", "\n\n",
                                  "1" * 16, "." * 81, "#####", "#S G#", "  ", "# comment"]),
                 max_size=40).map("".join)
TEXT = st.one_of(GRIDISH, WORDS, st.text(max_size=300),
                 st.sampled_from(sorted(EXAMPLES.glob("*"))).map(lambda p: p.read_text()),
                 st.tuples(st.sampled_from(sorted(EXAMPLES.glob("*"))), st.integers(0, 4000),
                           GRIDISH).map(lambda t: t[0].read_text()[:t[1]] + t[2]))
FUZZ = settings(max_examples=200, deadline=2000,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def only_puzzles_or_input_error(parse, text: str) -> None:
    try:
        items = parse(text, "fuzz")
    except InputError:
        return
    for item in items:
        entry = item[0] if isinstance(item, tuple) else item
        assert isinstance(entry, (Puzzle, PuzzleError))
        if isinstance(entry, Puzzle):
            assert entry.grid.ndim == 2 and entry.grid.dtype == np.uint8 and entry.grid.min() > 0
        else:
            assert entry.message and "\n" not in entry.message


@FUZZ
@given(TEXT)
def test_fuzz_sudoku_parse(text):
    only_puzzles_or_input_error(sudoku.parse, text)


@FUZZ
@given(TEXT)
def test_fuzz_sudoku_parse_with_answers(text):
    only_puzzles_or_input_error(sudoku.parse_with_answers, text)


@FUZZ
@given(TEXT)
def test_fuzz_maze_parse(text):
    only_puzzles_or_input_error(maze.parse, text)


@settings(max_examples=100, deadline=2000)
@given(st.binary(max_size=400), st.sampled_from(["sudoku", "maze"]))
def test_fuzz_files_never_stop_a_batch(tmp_path_factory, data, kind):
    path = tmp_path_factory.mktemp("fuzz") / "f.txt"
    path.write_bytes(data)
    items = read_puzzles(kind, [path])
    assert items and all(isinstance(i, (Puzzle, PuzzleError)) for i in items)
