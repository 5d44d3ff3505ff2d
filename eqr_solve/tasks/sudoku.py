"""Sudoku: text formats, checks, an exact numba solver, a generator and augmentation.

Tokens: 0 = padding (never in a puzzle), 1 = blank, digit d -> d + 1. An n x n grid is split
into boxes of ``box_shape(n)``; every routine is written for a general n <= 16, so 4x4 up to
16x16 share one code path and no size is special-cased.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable
from functools import cache

import numpy as np
from numba import njit

from eqr_solve.tasks import InputError, Puzzle, PuzzleError

NAME = "sudoku"
SIZES = (4, 6, 8, 9, 12, 16)  # sizes the text formats accept
BLANK = 1
MAX_N = 16  # candidate sets are int32 bitmasks; text digits stop at G = 16

_CHARS = ".123456789ABCDEFG"  # _CHARS[d] is the text for digit d (0 = blank)
_LINE_SIZES = {n * n: n for n in SIZES}
_RUN = re.compile(r"[1-9A-G.0]*")  # the leading grid characters of a one-line puzzle
_SEPARATORS = str.maketrans("", "", " \t|+-")
_DIGIT_OF = np.full(256, 255, np.uint8)  # byte -> digit (0 = blank), 255 = not a grid character
for _d, _ch in enumerate(_CHARS):
    _DIGIT_OF[ord(_ch)] = _d
_DIGIT_OF[ord("0")] = 0

Entry = tuple[Puzzle | PuzzleError, np.ndarray | None]


def vocab_size(shape: tuple[int, int]) -> int:
    """Tokens used by an n x n Sudoku: padding, blank and the n digits."""
    return shape[0] + 2


def box_shape(n: int) -> tuple[int, int]:
    """(rows, cols) of a box: the most square split of n with rows <= cols (6 -> 2x3)."""
    br = max(d for d in range(1, n + 1) if n % d == 0 and d * d <= n)
    return br, n // br


@cache
def _tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Units (rows, columns, boxes; [3n, n]) and peers ([n*n, p]) as flat cell indices."""
    if not 2 <= n <= MAX_N:
        raise ValueError(f"Sudoku size must be between 2 and {MAX_N}, got {n}")
    cells = np.arange(n * n).reshape(n, n)
    units = np.concatenate([cells, cells.T, _boxes(cells)]).astype(np.int32)
    peers = []
    for c in range(n * n):
        mine = units[(units == c).any(axis=1)]
        peers.append(np.setdiff1d(mine, [c]))
    return units, np.array(peers, np.int32)


def _boxes(grid: np.ndarray) -> np.ndarray:
    """The boxes of an (n, n) grid as rows of an (n, n) array, boxes numbered row-major."""
    n = grid.shape[0]
    br, bc = box_shape(n)
    return grid.reshape(n // br, br, n // bc, bc).transpose(0, 2, 1, 3).reshape(n, n)


def _box_ids(n: int) -> np.ndarray:
    br, bc = box_shape(n)
    r, c = np.indices((n, n))
    return (r // br) * (n // bc) + c // bc


def _square(grid: np.ndarray) -> int:
    """n of a square token grid, or ValueError."""
    if grid.ndim != 2 or grid.shape[0] != grid.shape[1] or not 2 <= grid.shape[0] <= MAX_N:
        raise ValueError(f"expected a square grid of size 2..{MAX_N}, got shape {grid.shape}")
    return grid.shape[0]


def _flat(grid) -> tuple[np.ndarray, int]:
    """Contiguous uint8 copy of a token grid (flattened) and its size, checking the tokens."""
    g = np.asarray(grid)
    n = _square(g)
    if g.min() < 1 or g.max() > n + 1:
        raise ValueError(f"tokens of a {n}x{n} Sudoku must be in 1..{n + 1}")
    return np.ascontiguousarray(g, dtype=np.uint8).ravel(), n


def _batch(grids) -> tuple[np.ndarray, int]:
    g = np.asarray(grids)
    if g.ndim != 3:
        raise ValueError(f"expected a batch [N, n, n], got shape {g.shape}")
    n = _square(g[0]) if len(g) else _square(g.reshape(g.shape[1:]))
    if len(g) and (g.min() < 1 or g.max() > n + 1):
        raise ValueError(f"tokens of a {n}x{n} Sudoku must be in 1..{n + 1}")
    return np.ascontiguousarray(g, dtype=np.uint8).reshape(len(g), n * n), n


# ----------------------------------------------------------------------------- text


def to_line(grid) -> str:
    """The one-line form: n*n characters row by row, '.' for a blank."""
    g = np.asarray(grid)
    return "".join(_CHARS[t - 1] for t in g.ravel().tolist())


def format_file(grids) -> str:
    """Many puzzles as one file, one line each, as ``parse`` reads it."""
    return "".join(to_line(g) + "\n" for g in grids)


def from_line(s: str, n: int | None = None) -> np.ndarray:
    """Token grid of a one-line puzzle (the whole stripped string). Givens are not checked
    against each other here; use ``validate`` for that."""
    cells = s.strip()
    if n is None:
        if len(cells) not in _LINE_SIZES:
            sizes = ", ".join(str(k) for k in _LINE_SIZES)
            raise InputError(f"expected {sizes} cells, got {len(cells)}")
        n = _LINE_SIZES[len(cells)]
    elif len(cells) != n * n:
        raise InputError(f"expected {n * n} cells, got {len(cells)}")
    digits = _decode(cells, n, lambda i: f"cell {i + 1}")
    if isinstance(digits, str):
        raise InputError(digits)
    return (digits + 1).astype(np.uint8).reshape(n, n)


def format_grid(grid) -> str:
    """Multi-line text with box separators, e.g. ``5 3 . | . 7 . | . . .``; parse reads it back."""
    g = np.asarray(grid)
    n = g.shape[0]
    br, bc = box_shape(n)
    rule = "-+-".join("-" * (2 * bc - 1) for _ in range(n // bc))
    lines = []
    for r in range(n):
        if r and r % br == 0:
            lines.append(rule)
        cells = [_CHARS[t - 1] for t in g[r].tolist()]
        lines.append(" | ".join(" ".join(cells[s : s + bc]) for s in range(0, n, bc)))
    return "\n".join(lines)


def _decode(cells: str, n: int, where: Callable[[int], str]) -> np.ndarray | str:
    """Digits (0 = blank) of n*n cell characters, or a message naming the first bad cell."""
    digits = _DIGIT_OF[np.frombuffer(cells.encode("latin-1", "replace"), np.uint8)]
    bad = np.flatnonzero(digits > n)
    if len(bad) == 0:
        return digits
    i = int(bad[0])
    if digits[i] == 255:
        return f"bad character {cells[i]!r} at {where(i)}"
    return f"digit {cells[i]} out of range for {n}x{n} at {where(i)}"


def _repeat_message(n: int, unit: int, digit: int, count: int) -> str:
    kind = ("row", "column", "box")[unit // n]
    times = "twice" if count == 2 else f"{count} times"
    return f"digit {_CHARS[digit]} appears {times} in {kind} {unit % n + 1}"


def validate(grid) -> str | None:
    """None if the givens are consistent (tokens in range, no digit repeated in a unit)."""
    g = np.asarray(grid)
    try:
        n = _square(g)
    except ValueError as e:
        return str(e)
    bad = np.argwhere((g < 1) | (g > n + 1))
    if len(bad):
        r, c = bad[0]
        return f"token {g[r, c]} at r{r + 1}c{c + 1} is out of range 1..{n + 1}"
    units, _ = _tables(n)
    unit, digit, count = _first_repeats(np.ascontiguousarray(g, np.uint8).reshape(1, -1), units)[0]
    return None if unit < 0 else _repeat_message(n, unit, digit, count)


@njit(cache=True)
def _first_repeats(grids, units):
    """(unit, digit, count) of the first repeated digit of each flat grid; unit = -1 if none."""
    n_units, n = units.shape
    out = np.full((grids.shape[0], 3), -1, np.int32)
    seen = np.zeros(n + 2, np.int32)
    for k in range(grids.shape[0]):
        for u in range(n_units):
            seen[:] = 0
            for i in range(n):
                seen[grids[k, units[u, i]]] += 1
            for t in range(2, n + 2):
                if seen[t] > 1:
                    out[k, 0], out[k, 1], out[k, 2] = u, t - 1, seen[t]
                    break
            if out[k, 0] >= 0:
                break
    return out


def parse(text: str, origin: str) -> list[Puzzle | PuzzleError]:
    """Puzzles in any supported text form (see ``parse_with_answers``), without answers."""
    return [entry for entry, _ in parse_with_answers(text, origin)]


def parse_with_answers(text: str, origin: str) -> list[Entry]:
    """Puzzles with their answer grid when the text has one (CSV ``answer`` column), else None.

    The format is detected from the text: a CSV whose header has a ``question`` column; one
    puzzle per line (n*n characters, anything after the grid ignored, ``#`` comments); or
    multi-line grids separated by blank lines, with optional ``| - +`` separators. Bad entries
    become ``PuzzleError``; text that matches no format raises ``InputError``.
    """
    lines = text.splitlines()
    content = [(i, s.strip()) for i, s in enumerate(lines, 1) if s.strip()]
    content = [(i, s) for i, s in content if not s.startswith("#")]
    if not content:
        from eqr_solve.tasks import maze

        if maze.looks_like(text):  # maze rows start with a wall, "#", read as comments here
            raise InputError("no Sudoku found: every line starts with '#' "
                             "(a maze? solve it with eqr-solve maze)")
        raise InputError("no puzzles found: the text is empty or only comments")
    first = content[0][1]
    if "," in first and "question" in [f.strip(" \"'").lower() for f in first.split(",")]:
        return _parse_csv(lines, content[0][0], origin)
    runs = [_RUN.match(s).group() for _, s in content]
    # Rows of a multi-line grid hold at most 16 cells, so a longer run means one puzzle per
    # line. Exactly 16 is ambiguous (4x4 per line vs 16x16 rows): 4x4 lines only use 1-4.
    sixteen = [r for r in runs if len(r) == 16]
    if any(len(r) > 16 for r in runs) or (
        2 * len(sixteen) > len(runs) and not any(set(r) - set("1234.0") for r in sixteen)
    ):
        return _parse_lines(content, runs, origin)
    return _parse_grids(lines, origin)


def _parse_lines(content: list[tuple[int, str]], runs: list[str], origin: str) -> list[Entry]:
    sizes = Counter(len(r) for r in runs if len(r) in _LINE_SIZES)
    usual = sizes.most_common(1)[0][0] if sizes else None
    items: list[tuple[str, np.ndarray | str]] = []
    for (i, s), run in zip(content, runs, strict=True):
        src = f"{origin}:{i}"
        if len(run) in _LINE_SIZES:
            items.append((src, _decode(run, _LINE_SIZES[len(run)], lambda k: f"cell {k + 1}")))
            continue
        field = s.split(None, 1)[0]
        if len(field) in _LINE_SIZES:  # right length, so the run stopped at a bad character
            items.append((src, f"bad character {field[len(run)]!r} at cell {len(run) + 1}"))
            continue
        msg = _count_message(len(run), usual)
        if len(run) < len(s) and not s[len(run)].isspace():
            msg += f" (stopped at {s[len(run)]!r})"
        items.append((src, msg))
    return _finish(items)


def _parse_grids(lines: list[str], origin: str) -> list[Entry]:
    blocks: list[list[tuple[int, str]]] = []
    block: list[tuple[int, str]] = []
    for i, raw in enumerate(lines, 1):
        s = raw.strip()
        if not s:
            if block:
                blocks.append(block)
            block = []
        elif not s.startswith("#"):
            cells = s.translate(_SEPARATORS)
            if cells:  # lines of only separators (------+------) carry no cells
                block.append((i, cells))
    if block:
        blocks.append(block)
    if not any(len(b[0][1]) in SIZES for b in blocks):
        raise InputError(
            "not a Sudoku file: expected one puzzle per line (e.g. 81 characters), "
            "grids of rows separated by blank lines, or a CSV with a 'question' column"
        )
    items: list[tuple[str, np.ndarray | str]] = []
    for block in blocks:
        n = len(block[0][1])
        if n not in SIZES:
            sizes = ", ".join(map(str, SIZES))
            items.append((f"{origin}:{block[0][0]}", f"expected rows of {sizes} cells, got {n}"))
            continue
        if len(block) % n:  # several grids without blank lines between them are fine
            items.append((f"{origin}:{block[0][0]}", f"expected {n} rows, got {len(block)}"))
            continue
        for k in range(0, len(block), n):
            rows = block[k : k + n]
            src = f"{origin}:{rows[0][0]}"
            short = [(r, len(cells)) for r, (_, cells) in enumerate(rows) if len(cells) != n]
            if short:
                r, got = short[0]
                items.append((src, f"row {r + 1} has {got} cells, expected {n}"))
                continue
            cells = "".join(c for _, c in rows)
            items.append((src, _decode(cells, n, lambda j, n=n: f"r{j // n + 1}c{j % n + 1}")))
    return _finish(items)


def _parse_csv(lines: list[str], header_line: int, origin: str) -> list[Entry]:
    try:
        return _read_csv(lines, header_line, origin)
    except csv.Error as e:  # e.g. a field past the csv module's size limit
        raise InputError(f"not a readable CSV file ({e})") from None


def _read_csv(lines: list[str], header_line: int, origin: str) -> list[Entry]:
    reader = csv.reader(lines[header_line - 1 :])
    header = [h.strip().strip("\"'").strip().lower() for h in next(reader)]
    if "question" not in header:
        raise InputError("CSV header has no 'question' column")
    q = header.index("question")
    a = header.index("answer") if "answer" in header else None
    questions: list[tuple[str, np.ndarray | str]] = []
    answers: list[tuple[str, np.ndarray | str]] = []
    for row in reader:
        if not "".join(row).strip():
            continue
        src = f"{origin}:{header_line + reader.line_num - 1}"
        if len(row) <= max(q, a or 0):
            questions.append((src, f"expected {len(header)} columns, got {len(row)}"))
            answers.append((src, ""))
            continue
        questions.append((src, _decode_field(row[q])))
        answers.append((src, "" if a is None else _decode_field(row[a])))
    entries = _finish(questions)
    if a is None:
        return entries
    out: list[Entry] = []
    for (entry, _), (answer, _) in zip(entries, _finish(answers), strict=True):
        if isinstance(entry, PuzzleError):
            out.append((entry, None))
            continue
        problem = None
        if isinstance(answer, PuzzleError):
            problem = answer.message
        elif answer.grid.shape != entry.grid.shape:
            problem = f"{answer.grid.size} cells but the question has {entry.grid.size}"
        elif (answer.grid == BLANK).any():
            problem = "has blank cells"
        elif ((entry.grid > BLANK) & (answer.grid != entry.grid)).any():
            problem = "changes a given of the question"
        if problem:
            out.append((PuzzleError(entry.source, f"answer: {problem}"), None))
        else:
            out.append((entry, answer.grid))
    return out


def _count_message(got: int, usual: int | None = None) -> str:
    """Why ``got`` cells are not a puzzle: the file's usual size, else the nearest size, else
    (past the biggest size) every size there is."""
    if usual is None and got > max(_LINE_SIZES):
        sizes = ", ".join(str(k) for k in _LINE_SIZES)
        return f"got {got} cells; a puzzle has {sizes} cells (4x4 up to {MAX_N}x{MAX_N})"
    expected = usual or min(_LINE_SIZES, key=lambda k: (abs(k - got), -k))
    return f"expected {expected} cells, got {got}"


def _decode_field(field: str) -> np.ndarray | str:
    cells = field.strip()
    if len(cells) not in _LINE_SIZES:
        return _count_message(len(cells))
    return _decode(cells, _LINE_SIZES[len(cells)], lambda k: f"cell {k + 1}")


def _finish(items: list[tuple[str, np.ndarray | str]]) -> list[Entry]:
    """Turn (source, digits or message) into entries, checking givens per size in one batch."""
    entries: list[Entry] = []
    by_size: dict[int, list[int]] = {}
    for k, (src, x) in enumerate(items):
        if isinstance(x, str):
            entries.append((PuzzleError(src, x), None))
        else:
            n = int(round(len(x) ** 0.5))
            entries.append((Puzzle((x + 1).astype(np.uint8).reshape(n, n), src), None))
            by_size.setdefault(n, []).append(k)
    for n, ks in by_size.items():
        grids = np.stack([entries[k][0].grid.ravel() for k in ks])
        repeats = _first_repeats(grids, _tables(n)[0])
        for k, (unit, digit, count) in zip(ks, repeats, strict=True):
            if unit >= 0:
                message = _repeat_message(n, unit, digit, count)
                entries[k] = (PuzzleError(items[k][0], message), None)
    return entries


# ----------------------------------------------------------------------------- checking


def check(puzzle, answer) -> list[str]:
    """Problems with ``answer`` as a solution of ``puzzle``; empty if it is a valid solution."""
    p, a = np.asarray(puzzle), np.asarray(answer)
    if p.shape != a.shape:
        return [f"answer has shape {a.shape} but the puzzle has shape {p.shape}"]
    n = p.shape[0]
    changed = np.argwhere((p > 1) & (a != p))
    problems = [f"cell r{r + 1}c{c + 1} changes a given" for r, c in changed]
    problems += [f"cell r{r + 1}c{c + 1} is blank" for r, c in np.argwhere(a == BLANK)]
    problems += [
        f"cell r{r + 1}c{c + 1} has invalid token {a[r, c]}"
        for r, c in np.argwhere((a < 1) | (a > n + 1))
    ]
    for kind, units in (("row", a), ("column", a.T), ("box", _boxes(a))):
        for i, unit in enumerate(units):
            counts = np.bincount(unit[(unit > 1) & (unit <= n + 1)], minlength=n + 2)
            repeated = np.flatnonzero(counts > 1)
            problems += [f"{kind} {i + 1} repeats {_CHARS[t - 1]}" for t in repeated]
    return problems


def is_solution(puzzle, answer) -> bool:
    return not check(puzzle, answer)


def conflicts(puzzle, answer) -> np.ndarray:
    """Cells of ``answer`` that repeat a digit within a row, column or box, or change a given."""
    p, a = np.asarray(puzzle), np.asarray(answer).astype(np.int64)
    n = a.shape[0]
    digit = (a > 1) & (a <= n + 1)
    t = np.where(digit, a, 0)
    bad = (p > 1) & (a != p) if p.shape == a.shape else np.zeros(a.shape, bool)
    r, c = np.indices(a.shape)
    for ids in (r, c, _box_ids(n)):
        counts = np.zeros((n, n + 2), np.int64)
        np.add.at(counts, (ids, t), 1)
        bad |= digit & (counts[ids, t] > 1)
    return bad


# ----------------------------------------------------------------------------- solver


@njit(cache=True)
def _popcount(x):
    c = 0
    while x:
        x &= x - 1
        c += 1
    return c


@njit(cache=True)
def _bit_index(b):
    i = 0
    while b > 1:
        b >>= 1
        i += 1
    return i


@njit(cache=True)
def _propagate(cand, placed, queue, qlen, units, peers, full):
    """Naked and hidden singles until nothing changes; False on a contradiction.

    ``queue`` holds cells that became single but whose digit is not yet removed from peers.
    """
    n_units, n = units.shape
    head = 0
    while True:
        while head < qlen:
            c = queue[head]
            head += 1
            if placed[c]:
                continue
            placed[c] = True
            m = cand[c]
            for k in range(peers.shape[1]):
                p = peers[c, k]
                pm = cand[p]
                if pm & m:
                    pm &= ~m
                    if pm == 0:
                        return False
                    cand[p] = pm
                    if pm & (pm - 1) == 0:
                        queue[qlen] = p
                        qlen += 1
        found = False
        for u in range(n_units):
            once = 0
            twice = 0
            for i in range(n):
                m = cand[units[u, i]]
                twice |= once & m
                once |= m
            if once != full:  # some digit has no place left in this unit
                return False
            single = once & ~twice
            if single == 0:
                continue
            for i in range(n):
                c = units[u, i]
                m = cand[c]
                b = m & single
                if b and b != m:
                    if b & (b - 1):  # one cell is the only home of two digits
                        return False
                    cand[c] = b
                    queue[qlen] = c
                    qlen += 1
                    found = True
        if not found:
            return True


@njit(cache=True)
def _search(grid, units, peers, limit, randomize, max_guesses, skip_cell, skip_mask, out):
    """Depth-first search with singles propagation, branching on the fewest candidates.

    Returns (solutions found, at most ``limit``; guesses made). The first solution goes to
    ``out``. ``skip_cell``/``skip_mask`` forbid digits in one cell, so the generator can ask
    "is there a solution where this cell differs?" instead of counting to two. Solutions is -1
    when ``max_guesses`` (if >= 0) ran out.
    """
    n = units.shape[1]
    ncell = n * n
    full = (1 << n) - 1
    cand = np.empty((ncell + 1, ncell), np.int32)  # one state per depth
    placed = np.zeros((ncell + 1, ncell), np.bool_)
    tries = np.empty(ncell + 1, np.int32)
    branch = np.empty(ncell + 1, np.int32)
    queue = np.empty(2 * ncell + 2, np.int32)
    qlen = 0
    for c in range(ncell):
        t = grid[c]
        if t >= 2:
            cand[0, c] = 1 << (t - 2)
            queue[qlen] = c
            qlen += 1
        else:
            cand[0, c] = full
    if skip_cell >= 0:
        m = cand[0, skip_cell] & ~skip_mask
        if m == 0:
            return 0, 0
        cand[0, skip_cell] = m
        if m & (m - 1) == 0:
            queue[qlen] = skip_cell
            qlen += 1
    if not _propagate(cand[0], placed[0], queue, qlen, units, peers, full):
        return 0, 0
    found = 0
    guesses = 0
    d = 0
    while True:
        best = -1
        best_count = n + 1
        for c in range(ncell):
            if not placed[d, c]:
                k = _popcount(cand[d, c])
                if k < best_count:
                    best, best_count = c, k
                    if k == 2:
                        break
        if best < 0:  # every cell placed: a solution
            found += 1
            if found == 1:
                for c in range(ncell):
                    out[c] = _bit_index(cand[d, c]) + 2
            if found >= limit:
                return found, guesses
            d -= 1
        else:
            branch[d] = best
            tries[d] = cand[d, best]
        # next untried digit at the deepest open branch point, backtracking as needed
        while d >= 0:
            t = tries[d]
            if t == 0:
                d -= 1
                continue
            if randomize:
                for _ in range(np.random.randint(_popcount(t))):
                    t &= t - 1
            b = t & -t
            tries[d] &= ~b
            guesses += 1
            if 0 <= max_guesses < guesses:
                return -1, guesses
            cand[d + 1] = cand[d]
            placed[d + 1] = placed[d]
            cand[d + 1, branch[d]] = b
            queue[0] = branch[d]
            if _propagate(cand[d + 1], placed[d + 1], queue, 1, units, peers, full):
                d += 1
                break
        if d < 0:
            return found, guesses


@njit(cache=True)
def _seed(seed):
    np.random.seed(seed)


@njit(cache=True)
def _search_many(grids, units, peers, limit, out):
    """(solutions found, guesses) for each flat grid of a batch; solutions go to ``out``."""
    found = np.empty(grids.shape[0], np.int32)
    guesses = np.empty(grids.shape[0], np.int64)
    for k in range(grids.shape[0]):
        found[k], guesses[k] = _search(grids[k], units, peers, limit, False, -1, -1, 0, out[k])
    return found, guesses


def solve(grid, rng_seed: int | None = None) -> np.ndarray | None:
    """One solution (token grid), or None. A seed randomises the digit order of guesses."""
    flat, n = _flat(grid)
    units, peers = _tables(n)
    if rng_seed is not None:
        _seed(rng_seed % 2**32)
    out = np.empty(n * n, np.uint8)
    found, _ = _search(flat, units, peers, 1, rng_seed is not None, -1, -1, 0, out)
    return out.reshape(n, n) if found == 1 else None


def count_solutions(grid, limit: int = 2) -> int:
    """Number of solutions, counting stops at ``limit``."""
    flat, n = _flat(grid)
    units, peers = _tables(n)
    found, _ = _search(flat, units, peers, limit, False, -1, -1, 0, np.empty(n * n, np.uint8))
    return int(found)


def rating(grid) -> int:
    """Guesses the solver makes before its first solution, digits tried in increasing order
    (0 = solved by singles alone; -1 = no solution). A proxy for difficulty."""
    flat, n = _flat(grid)
    units, peers = _tables(n)
    found, guesses = _search(flat, units, peers, 1, False, -1, -1, 0, np.empty(n * n, np.uint8))
    return int(guesses) if found == 1 else -1


def solve_many(grids) -> tuple[np.ndarray, np.ndarray]:
    """Solutions [N, n, n] and ok [N] for a batch; rows without a solution are all zeros."""
    flat, n = _batch(grids)
    units, peers = _tables(n)
    out = np.zeros_like(flat)
    found, _ = _search_many(flat, units, peers, 1, out)
    ok = found == 1
    out[~ok] = 0
    return out.reshape(-1, n, n), ok


def rate_many(grids) -> np.ndarray:
    """``rating`` of each grid of a batch [N, n, n]."""
    flat, n = _batch(grids)
    units, peers = _tables(n)
    found, guesses = _search_many(flat, units, peers, 1, np.zeros_like(flat))
    return np.where(found == 1, guesses, -1)


# ----------------------------------------------------------------------------- generator


@njit(cache=True)
def _random_fill(units, peers, out):
    """A random complete grid: solve the empty grid guessing digits in random order.

    Restarts after a bounded number of guesses, as random search on big grids is heavy-tailed.
    """
    n = units.shape[1]
    empty = np.ones(n * n, np.uint8)
    while True:
        found, _ = _search(empty, units, peers, 1, True, 20 * n * n, -1, 0, out)
        if found == 1:
            return


@njit(cache=True)
def _dig(solution, puzzle, blanks, units, peers):
    """Blank cells of ``solution`` in random order while the solution stays unique.

    Stops after ``blanks`` blanks (-1: go through every cell, giving a minimal puzzle; one
    pass suffices because a cell that was needed stays needed when more cells are blank).
    Returns the number of blanks made.
    """
    ncell = solution.shape[0]
    scratch = np.empty(ncell, np.uint8)
    puzzle[:] = solution
    made = 0
    for c in np.random.permutation(ncell):
        if made == blanks:
            break
        v = puzzle[c]
        puzzle[c] = 1
        # unique iff no solution has another digit here (the known solution is the only one)
        found, _ = _search(puzzle, units, peers, 1, False, -1, c, 1 << (v - 2), scratch)
        if found == 0:
            made += 1
        else:
            puzzle[c] = v
    return made


@njit(cache=True)
def _generate_many(count, blanks, units, peers, seed, max_tries, inputs, labels):
    """Fill ``inputs``/``labels`` [count, n*n]; returns how many were made (< count on failure)."""
    np.random.seed(seed)
    for i in range(count):
        ok = False
        for _ in range(max_tries):
            _random_fill(units, peers, labels[i])
            made = _dig(labels[i], inputs[i], blanks, units, peers)
            ok = blanks < 0 or made == blanks
            if ok:
                break
        if not ok:
            return i
    return count


def _numba_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**32))


def random_solution(rng: np.random.Generator, n: int = 9) -> np.ndarray:
    """A random complete n x n grid (token grid)."""
    units, peers = _tables(n)
    _seed(_numba_seed(rng))
    out = np.empty(n * n, np.uint8)
    _random_fill(units, peers, out)
    return out.reshape(n, n)


def generate(
    rng: np.random.Generator,
    count: int,
    n: int = 9,
    blanks: int | None = None,
    minimal: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Puzzles with a unique solution and their solutions, token arrays [count, n, n].

    Either exactly ``blanks`` blanks, or (``minimal=True`` or ``blanks=None``) minimal puzzles
    from which no given can be removed without losing uniqueness.
    """
    if blanks is None:
        minimal = True
    elif minimal:
        raise ValueError("give either blanks or minimal=True, not both")
    elif not 0 <= blanks <= n * n:
        raise ValueError(f"blanks must be in 0..{n * n}, got {blanks}")
    units, peers = _tables(n)
    inputs = np.empty((count, n * n), np.uint8)
    labels = np.empty((count, n * n), np.uint8)
    max_tries = 200
    target = -1 if minimal else blanks
    made = _generate_many(count, target, units, peers, _numba_seed(rng), max_tries, inputs, labels)
    if made < count:
        raise ValueError(
            f"could not make a {n}x{n} puzzle with {blanks} blanks and a unique solution "
            f"in {max_tries} tries; ask for fewer blanks"
        )
    return inputs.reshape(count, n, n), labels.reshape(count, n, n)


def generate_rated(
    rng: np.random.Generator, count: int, n: int = 9, min_rating: int = 0, max_rating: int = 10**9
) -> tuple[np.ndarray, np.ndarray]:
    """Minimal puzzles whose ``rating`` is in [min_rating, max_rating], by rejection sampling.

    Random minimal puzzles are mostly easy (rating 0-3), so high minimums are slow or fail.
    """
    xs, ys, have = [], [], 0
    for _ in range(200):
        x, y = generate(rng, max(64, 2 * count), n)
        r = rate_many(x)
        keep = (r >= min_rating) & (r <= max_rating)
        xs.append(x[keep])
        ys.append(y[keep])
        have += int(keep.sum())
        if have >= count:
            return np.concatenate(xs)[:count], np.concatenate(ys)[:count]
    raise ValueError(f"found only {have} of {count} puzzles rated {min_rating}..{max_rating}")


# ----------------------------------------------------------------------------- augmentation


def _line_order(rng: np.random.Generator, count: int, groups: int, size: int) -> np.ndarray:
    """Per row of a batch, an order of groups*size lines that keeps each group together."""
    outer = np.argsort(rng.random((count, groups)), axis=1)
    inner = np.argsort(rng.random((count, groups, size)), axis=2)
    return (outer[:, :, None] * size + inner).reshape(count, groups * size)


def augment(
    rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Validity-preserving random symmetries, one per row, identical for inputs and labels.

    Relabel digits; transpose (only for square boxes, else boxes would change shape);
    shuffle bands and rows within bands; shuffle stacks and columns within stacks.
    """
    x, y = np.asarray(inputs), np.asarray(labels)
    count, n, _ = x.shape
    br, bc = box_shape(n)
    lut = np.zeros((count, n + 2), x.dtype)
    lut[:, 1] = BLANK
    lut[:, 2:] = np.argsort(rng.random((count, n)), axis=1) + 2
    rows = np.arange(count)[:, None]
    x = lut[rows, x.reshape(count, -1)].reshape(x.shape)
    y = lut[rows, y.reshape(count, -1)].reshape(y.shape)
    if br == bc:
        flip = (rng.random(count) < 0.5)[:, None, None]
        x = np.where(flip, x.transpose(0, 2, 1), x)
        y = np.where(flip, y.transpose(0, 2, 1), y)
    r = _line_order(rng, count, n // br, br)[:, :, None]
    c = _line_order(rng, count, n // bc, bc)[:, None, :]
    b = np.arange(count)[:, None, None]
    return x[b, r, c], y[b, r, c]


_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 of uint64s (wrapping arithmetic): a hash that spreads every input bit."""
    z = x + np.uint64((0x9E3779B97F4A7C15 * salt) % 2**64)
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _cell_groups(n: int) -> list[np.ndarray]:
    """For each cell (row-major), its row, column, box, band and stack."""
    br, bc = box_shape(n)
    r, c = np.divmod(np.arange(n * n), n)
    return [r, c, (r // br) * (n // bc) + c // bc, r // br, c // bc]


def _structure_hash(x: np.ndarray, rounds: int = 4) -> np.ndarray:
    """[N, 2] uint64 hash of each puzzle's structure: colour refinement (Weisfeiler-Lehman)
    of the cells under "same row / column / box / band / stack / digit", starting from clue
    vs blank. Digit values never enter, only which clues share one; lines are told apart only
    by what they hold. So relabelling digits, permuting bands, rows within a band, stacks and
    columns within a stack leave it unchanged."""
    N, n, _ = x.shape
    x = x.reshape(N, n * n)
    clue = x > BLANK
    groups = _cell_groups(n)
    members = [np.eye(g.max() + 1, dtype=np.uint64)[g] for g in groups]  # [cells, groups]
    with np.errstate(over="ignore"):
        c = _mix(clue.astype(np.uint64), 1)
        for _ in range(rounds):
            f = _mix(c, 2)
            new = c.copy()
            for salt, (g, m) in enumerate(zip(groups, members), 3):
                new += _mix((f @ m)[:, g], salt)  # each cell: the hash sum over its group
            digit = np.zeros_like(f)
            for d in range(BLANK + 1, n + 2):
                same = x == d
                digit += same * (f * same).sum(1, keepdims=True)
            c = _mix(new + _mix(digit, 8) * clue, 9)
        return np.stack([_mix(c, 10).sum(1), _mix(c, 11).sum(1)], axis=1)


def canonical_keys(grids) -> list[bytes]:
    """One key per puzzle, the same for every puzzle ``augment`` can make of it (digit
    relabelling, band / row / stack / column permutations, transposition): how test puzzles
    and their augmented copies are recognised in training data (shared/data/README.md:
    "augmented copies of a test puzzle are test puzzles too"). It is a 128-bit hash of the
    structure, not a canonical form: two different puzzles could share a key, which the guard
    would only over-refuse; none of the 49,158 17-clue puzzles (all essentially different)
    do."""
    x = np.asarray(grids)
    if not len(x):
        return []
    n = x.shape[1]
    h = _structure_hash(x)
    if box_shape(n)[0] == box_shape(n)[1]:  # a transposed copy is the same puzzle
        t = _structure_hash(x.transpose(0, 2, 1))
        swap = (t[:, 0] < h[:, 0]) | ((t[:, 0] == h[:, 0]) & (t[:, 1] < h[:, 1]))
        h = np.where(swap[:, None], t, h)
    return [bytes([n]) + k.tobytes() for k in h.astype("<u8")]


def canonical_key(grid: np.ndarray) -> bytes:
    """``canonical_keys`` of one puzzle."""
    return canonical_keys(np.asarray(grid)[None])[0]
