"""Long fuzz run of the puzzle readers (not part of the test run: pytest collects test_*.py).

    python tests/fuzz_parsers.py [INPUTS_PER_PARSER] [SEED]      # default 10000, 0

Each parser gets INPUTS_PER_PARSER texts: random grid-like text, random words, mutated and
spliced example files, and arbitrary bytes (read as a file). The only allowed outcomes are
puzzles, per-puzzle PuzzleError records, or the tool's own InputError; anything else is
printed with the input that caused it and the run exits 1. tests/test_parsers.py runs the
same check with hypothesis on a few hundred inputs.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eqr_solve.tasks import (  # noqa: E402
    InputError,
    Puzzle,
    PuzzleError,
    maze,
    read_puzzles,
    sudoku,
)

EXAMPLES = [p.read_text() for p in sorted((Path(__file__).resolve().parent.parent
                                           / "examples").glob("*"))]
ALPHABET = list("123456789ABCDEFG.0#SGo -|+,'\"\n\r\t;xq") + ["\n\n", "question", "answer"]
WORDS = ["question", "answer", ",", '"', "'", "\n", "\n\n", "\r\n", "1" * 16, "." * 81,
         "." * 625, "#####", "#S G#", "  ", "   \n", "# comment", "\t", "\x00", "é", "\ufeff"]


def text_input(rng: random.Random) -> str:
    mode = rng.randrange(5)
    if mode == 0:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(800)))
    if mode == 1:
        return "".join(rng.choice(WORDS) for _ in range(rng.randrange(60)))
    if mode == 2:
        return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(300)))
    text = rng.choice(EXAMPLES)
    lines = text.splitlines(keepends=True)
    for _ in range(rng.randrange(1, 8)):  # mutate lines of a real file
        if not lines:
            break
        i = rng.randrange(len(lines))
        op = rng.randrange(5)
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif op == 2:
            s = lines[i]
            k = rng.randrange(len(s) + 1)
            lines[i] = s[:k] + rng.choice(ALPHABET) + s[k + 1:]
        elif op == 3:
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
        else:
            lines.insert(i, rng.choice(WORDS))
    out = "".join(lines)
    if mode == 4:  # splice two files
        other = rng.choice(EXAMPLES)
        out = out[: rng.randrange(len(out) + 1)] + other[rng.randrange(len(other) + 1):]
    return out


def outcome(items) -> str:
    kinds = set()
    for item in items:
        entry = item[0] if isinstance(item, tuple) else item
        if not isinstance(entry, (Puzzle, PuzzleError)):
            raise TypeError(f"unexpected item {entry!r}")
        if isinstance(entry, PuzzleError) and (not entry.message or "\n" in entry.message):
            raise ValueError(f"bad message {entry.message!r}")
        kinds.add("puzzle" if isinstance(entry, Puzzle) else "puzzle-error")
    return "+".join(sorted(kinds)) or "empty"


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    rng = random.Random(seed)
    folder = Path(tempfile.mkdtemp(prefix="eqr-fuzz-"))
    path = folder / "f.txt"

    def from_file(kind):
        def parse(data: bytes, _origin: str):
            path.write_bytes(data)
            return read_puzzles(kind, [path])
        return parse

    targets = {
        "sudoku.parse": (sudoku.parse, text_input),
        "sudoku.parse_with_answers": (sudoku.parse_with_answers, text_input),
        "maze.parse": (maze.parse, text_input),
        "read_puzzles(sudoku, bytes)": (from_file("sudoku"), lambda r: r.randbytes(
            r.randrange(600)) if r.random() < 0.5 else text_input(r).encode("utf-8", "replace")),
        "read_puzzles(maze, bytes)": (from_file("maze"), lambda r: r.randbytes(
            r.randrange(600)) if r.random() < 0.5 else text_input(r).encode("utf-8", "replace")),
    }
    failures = 0
    for name, (parse, make) in targets.items():
        counts: Counter = Counter()
        t0 = time.perf_counter()
        for _ in range(n):
            data = make(rng)
            try:
                counts[outcome(parse(data, "fuzz"))] += 1
            except InputError:
                counts["InputError"] += 1
            except Exception as e:  # noqa: BLE001  (what the fuzzer looks for)
                failures += 1
                counts[f"FAIL {type(e).__name__}"] += 1
                if failures <= 5:
                    print(f"{name}: {type(e).__name__}: {e}\n  input: {data[:300]!r}")
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        print(f"{name}: {n} inputs in {time.perf_counter() - t0:.1f}s: {summary}")
    print("no failures" if not failures else f"{failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
