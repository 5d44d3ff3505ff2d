"""Mazes: text form, shortest-path labels and checks, a numba generator and augmentation.

Tokens: ``#`` wall = 1, open (space or ``.``) = 2, ``S`` = 3, ``G`` = 4, ``o`` path = 5. A
label is the input with the cells strictly between S and G on a shortest path set to ``o``;
a maze whose G cannot be reached from S is a real puzzle too, and its label is the input
itself (no ``o``: "no path"). Moves are 4-connected; everything but walls (and padding,
token 0) can be walked on.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from eqr_solve.tasks import InputError, Puzzle, PuzzleError

NAME = "maze"
VOCAB_SIZE = 6
WALL, OPEN, START, GOAL, PATH = 1, 2, 3, 4, 5

_CHAR = {WALL: "#", OPEN: " ", START: "S", GOAL: "G", PATH: "o"}
_TOKEN = {"#": WALL, " ": OPEN, ".": OPEN, "S": START, "G": GOAL, "o": PATH}
_DR = np.array([1, -1, 0, 0])  # neighbour order (+1,0), (-1,0), (0,+1), (0,-1)
_DC = np.array([0, 0, 1, -1])
_MAX_GRIDS = 50  # fresh grids tried per maze before the generator gives up
_MAX_STARTS = 200  # start cells tried per grid


# ----------------------------------------------------------------------------- text


def vocab_size(shape: tuple[int, int] | None = None) -> int:
    """Tokens of a maze of any size: padding, wall, open, start, goal, path."""
    return VOCAB_SIZE


def looks_like(text: str) -> bool:
    """Whether ``text`` reads as a maze drawing: rows made only of maze characters, one
    holding S and one G (a Sudoku file's "# Sudoku, Generated" comment is not one)."""
    rows = [r.rstrip() for r in text.splitlines() if r.strip() and set(r.rstrip()) <= set(_TOKEN)]
    return any("S" in r for r in rows) and any("G" in r for r in rows)


def to_rows(grid) -> list[str]:
    return ["".join(_CHAR.get(t, "?") for t in row) for row in np.asarray(grid).tolist()]


def format_grid(grid) -> str:
    """The text form: one line per row, ``#``, space, ``S``, ``G``, ``o``."""
    return "\n".join(to_rows(grid))


def format_file(grids) -> str:
    """Many mazes as one file (an empty line between two), as ``parse`` reads it."""
    return "\n\n".join(format_grid(g) for g in grids) + "\n"


def from_rows(rows: list[str]) -> np.ndarray:
    """Token grid of text rows, short rows padded with open cells; ``o`` stays a path token
    (so answers can be read). Raises InputError on a bad character."""
    grid = _tokens(rows)
    if isinstance(grid, str):
        raise InputError(grid)
    return grid


def _tokens(rows: list[str]) -> np.ndarray | str:
    # spaces past the widest drawn row are trailing white space, not open cells
    width = max((len(r.rstrip(" ")) for r in rows), default=0)
    grid = np.full((len(rows), width), OPEN, np.uint8)
    for r, row in enumerate(rows):
        for c, ch in enumerate(row[:width]):
            if ch not in _TOKEN:
                return f"bad character {ch!r} at row {r + 1}, column {c + 1}"
            grid[r, c] = _TOKEN[ch]
    return grid


def parse(text: str, origin: str) -> list[Puzzle | PuzzleError]:
    """Mazes separated by empty lines. A line of spaces is a row of open cells, not a
    separator (a blank line holding other white space, such as a tab, still separates). ``o``
    cells are read as open so solved mazes can be fed back. Each bad maze becomes a
    PuzzleError; text with no maze at all raises."""
    blocks: list[tuple[int, list[str]]] = []
    rows: list[str] = []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip() or (line and not line.strip(" ")):
            if not rows:
                first = i
            rows.append(line)
        elif rows:
            blocks.append((first, rows))
            rows = []
    if rows:
        blocks.append((first, rows))
    if not any(set("#SG") & set("".join(b)) for _, b in blocks):
        raise InputError("not a maze file: expected rows of '#' walls, ' ' or '.' open cells, S, G")
    out: list[Puzzle | PuzzleError] = []
    for first, rows in blocks:
        source = f"{origin}:{first}"
        grid = _tokens(rows)
        problem = grid if isinstance(grid, str) else _problem(grid)
        if problem:
            out.append(PuzzleError(source, problem))
        else:
            grid[grid == PATH] = OPEN
            out.append(Puzzle(grid, source))
    return out


def _problem(grid: np.ndarray) -> str | None:
    h, w = grid.shape
    if h < 2 or w < 2:
        return f"maze is {h}x{w}, need at least 2x2"
    for token, name in ((START, "start 'S'"), (GOAL, "goal 'G'")):
        count = int((grid == token).sum())
        if count != 1:
            return f"no {name}" if count == 0 else f"{count} cells are {name}, expected one"
    return None


# ----------------------------------------------------------------------------- shortest paths


@njit(cache=True)
def _bfs(grid, sr, sc, dist, queue):
    """Edge distances from (sr, sc) over non-wall cells (-1 = unreachable).

    Returns how many cells were reached; ``queue`` holds them as flat indices in BFS order.
    """
    h, w = grid.shape
    dist[:] = -1
    dist[sr, sc] = 0
    queue[0] = sr * w + sc
    head, tail = 0, 1
    while head < tail:
        r, c = divmod(queue[head], w)
        head += 1
        for k in range(4):
            rr, cc = r + _DR[k], c + _DC[k]
            if 0 <= rr < h and 0 <= cc < w and dist[rr, cc] < 0 and grid[rr, cc] >= OPEN:
                dist[rr, cc] = dist[r, c] + 1
                queue[tail] = rr * w + cc
                tail += 1
    return tail


@njit(cache=True)
def _path_counts(grid, dist, queue, reached, cap, counts):
    """Number of shortest paths from the BFS source to every cell, capped at ``cap``."""
    h, w = grid.shape
    counts[:] = 0
    counts[queue[0] // w, queue[0] % w] = 1
    for i in range(1, reached):
        r, c = divmod(queue[i], w)
        total = 0
        for k in range(4):
            rr, cc = r + _DR[k], c + _DC[k]
            if 0 <= rr < h and 0 <= cc < w and dist[rr, cc] == dist[r, c] - 1:
                total += counts[rr, cc]
        counts[r, c] = min(total, cap)


@njit(cache=True)
def _trace(goal_dist, sr, sc, label):
    """Mark one shortest path S -> G in ``label``: from S, always step to the first neighbour
    (in the fixed order) that is one step closer to G, which makes the choice deterministic."""
    h, w = goal_dist.shape
    r, c = sr, sc
    for d in range(goal_dist[sr, sc] - 1, 0, -1):
        for k in range(4):
            rr, cc = r + _DR[k], c + _DC[k]
            if 0 <= rr < h and 0 <= cc < w and goal_dist[rr, cc] == d:
                r, c = rr, cc
                break
        label[r, c] = PATH


def _find(grid: np.ndarray, token: int, name: str) -> tuple[int, int]:
    cells = np.argwhere(grid == token)
    if len(cells) != 1:
        raise ValueError(f"maze must have exactly one {name}, found {len(cells)}")
    return int(cells[0, 0]), int(cells[0, 1])


def _distances(grid: np.ndarray, cell: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int]:
    g = np.ascontiguousarray(grid, dtype=np.uint8)
    dist = np.empty(g.shape, np.int64)
    queue = np.empty(g.size, np.int64)
    reached = _bfs(g, cell[0], cell[1], dist, queue)
    return dist, queue, reached


def path_length(grid) -> int:
    """Edges on a shortest S -> G path, -1 if G cannot be reached."""
    g = np.asarray(grid)
    dist, _, _ = _distances(g, _find(g, START, "S"))
    return int(dist[_find(g, GOAL, "G")])


def count_shortest_paths(grid, cap: int = 2) -> int:
    """Number of distinct shortest S -> G paths, counting stops at ``cap``."""
    g = np.ascontiguousarray(grid, dtype=np.uint8)
    dist, queue, reached = _distances(g, _find(g, START, "S"))
    counts = np.zeros(g.shape, np.int64)
    _path_counts(g, dist, queue, reached, cap, counts)
    return int(counts[_find(g, GOAL, "G")])


def solve(grid) -> np.ndarray:
    """The label: ``grid`` with one shortest path (chosen deterministically) marked ``o``;
    ``grid`` unchanged (no ``o``) when G cannot be reached from S."""
    label = np.array(grid, dtype=np.uint8)
    label[label == PATH] = OPEN
    start = _find(label, START, "S")
    dist, _, _ = _distances(label, _find(label, GOAL, "G"))
    if dist[start] < 0:
        return label
    _trace(dist, start[0], start[1], label)
    return label


# ----------------------------------------------------------------------------- checking


def check(puzzle, answer) -> list[str]:
    """Problems with ``answer``; empty if its ``o`` cells are exactly one shortest S -> G path
    (any of them), or none at all when G cannot be reached, and every other cell equals the
    puzzle."""
    p, a = np.asarray(puzzle), np.asarray(answer)
    if p.shape != a.shape:
        return [f"answer has shape {a.shape} but the maze has shape {p.shape}"]
    problems = []
    for r, c in np.argwhere((a != p) & ~((a == PATH) & (p == OPEN))):
        was, now = _CHAR.get(p[r, c], "?"), _CHAR.get(a[r, c], "?")
        problems.append(f"cell r{r + 1}c{c + 1} changed from {was!r} to {now!r}")
    start, goal = _find(p, START, "S"), _find(p, GOAL, "G")
    shortest = path_length(p)
    on = a == PATH
    if shortest < 0:
        marked = int(on.sum())
        if marked:
            problems.append(f"the maze has no path from S to G, but {marked} cell"
                            f"{'s are' if marked > 1 else ' is'} marked 'o'")
        return problems
    on[goal] = True
    # Walk from S along path cells; a simple path has exactly one way forward at each step.
    prev, cur, steps, seen = None, start, 0, {start}
    while cur != goal:
        r, c = cur
        ahead = [
            (r + dr, c + dc)
            for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1))
            if 0 <= r + dr < p.shape[0] and 0 <= c + dc < p.shape[1] and on[r + dr, c + dc]
        ]
        ahead = [x for x in ahead if x != prev]
        where = f"r{r + 1}c{c + 1}"
        if not ahead:
            return problems + [f"the path stops at {where} before reaching G"]
        if len(ahead) > 1 or ahead[0] in seen:
            return problems + [f"the path branches or loops at {where}"]
        prev, cur = cur, ahead[0]
        seen.add(cur)
        steps += 1
    stray = int(on.sum()) - (len(seen) - 1)  # path cells + G, minus what the walk covered
    if stray:
        problems.append(f"{stray} stray 'o' cell{'s' if stray > 1 else ''} off the S-G path")
    if steps != shortest:
        problems.append(f"the path has length {steps}, the shortest is {shortest}")
    return problems


def is_solution(puzzle, answer) -> bool:
    return not check(puzzle, answer)


def has_path(grid) -> bool:
    return path_length(grid) >= 0


def no_answer(puzzle) -> np.ndarray:
    """The answer "G cannot be reached from S": the maze itself, no cell marked. The solver
    gives it when the model's halting head rejects every path it drew (solver.solve)."""
    return np.array(puzzle, copy=True)


def marks_no_path(answer) -> bool:
    """An answer with no ``o`` cell: it says G cannot be reached from S."""
    return not (np.asarray(answer) == PATH).any()


def path_errors(answers: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """Exact share, and mean false-positive / false-negative path cells per maze, of answers
    ``[N, H, W]``: FP falling with depth is dead-end filling at work, FN growing with depth is
    a path being eroded (the two ways a maze model goes wrong)."""
    exact = float((answers == labels).all(axis=(1, 2)).mean())
    fp = float(((answers == PATH) & (labels != PATH)).sum((1, 2)).mean())
    fn = float(((answers != PATH) & (labels == PATH)).sum((1, 2)).mean())
    return exact, fp, fn


def conflicts(puzzle, answer) -> np.ndarray:
    """Best-effort wrong cells of ``answer``: changed cells (a path on a wall, S or G counts)
    and path cells that lie on no shortest S -> G path."""
    p, a = np.asarray(puzzle), np.asarray(answer)
    if p.shape != a.shape:
        return np.ones(a.shape, bool)
    bad = (a != p) & ~((a == PATH) & (p == OPEN))
    try:
        from_s, _, _ = _distances(p, _find(p, START, "S"))
        from_g, _, _ = _distances(p, _find(p, GOAL, "G"))
    except ValueError:
        return bad
    shortest = from_s[_find(p, GOAL, "G")]
    on_shortest = (from_s >= 0) & (from_g >= 0) & (from_s + from_g == shortest)
    return bad | ((a == PATH) & ~on_shortest)


# ----------------------------------------------------------------------------- generator


@njit(cache=True)
def _carve(grid):
    """A perfect maze: recursive-backtracker DFS over lattice cells (2r+1, 2c+1)."""
    h, w = grid.shape
    lh, lw = (h - 1) // 2, (w - 1) // 2
    grid[:] = WALL
    visited = np.zeros((lh, lw), np.bool_)
    stack = np.empty(lh * lw, np.int64)
    options = np.empty(4, np.int64)
    r, c = np.random.randint(lh), np.random.randint(lw)
    visited[r, c] = True
    grid[2 * r + 1, 2 * c + 1] = OPEN
    stack[0] = r * lw + c
    top = 1
    while top > 0:
        r, c = divmod(stack[top - 1], lw)
        k = 0
        for d in range(4):
            rr, cc = r + _DR[d], c + _DC[d]
            if 0 <= rr < lh and 0 <= cc < lw and not visited[rr, cc]:
                options[k] = d
                k += 1
        if k == 0:
            top -= 1
            continue
        d = options[np.random.randint(k)]
        rr, cc = r + _DR[d], c + _DC[d]
        visited[rr, cc] = True
        grid[r + rr + 1, c + cc + 1] = OPEN  # the wall between the two lattice cells
        grid[2 * rr + 1, 2 * cc + 1] = OPEN
        stack[top] = rr * lw + cc
        top += 1


@njit(cache=True)
def _scatter(grid, wall_prob):
    """Random walls inside a wall border."""
    h, w = grid.shape
    grid[:] = WALL
    for r in range(1, h - 1):
        for c in range(1, w - 1):
            if np.random.random() >= wall_prob:
                grid[r, c] = OPEN


@njit(cache=True)
def _place(grid, length, unique, dist, queue, counts, goals):
    """Put S on a random open cell and G on a random cell exactly ``length`` steps away (with
    a single shortest path if ``unique``); tries several starts. False if none worked."""
    h, w = grid.shape
    opens = np.flatnonzero(grid.ravel() == OPEN)
    if len(opens) < 2:
        return False
    for _ in range(_MAX_STARTS):
        sr, sc = divmod(opens[np.random.randint(len(opens))], w)
        reached = _bfs(grid, sr, sc, dist, queue)
        if unique:
            _path_counts(grid, dist, queue, reached, 2, counts)
        k = 0
        for i in range(reached):
            r, c = divmod(queue[i], w)
            if dist[r, c] == length and (not unique or counts[r, c] == 1):
                goals[k] = queue[i]
                k += 1
        if k:
            gr, gc = divmod(goals[np.random.randint(k)], w)
            grid[sr, sc] = START
            grid[gr, gc] = GOAL
            return True
    return False


@njit(cache=True)
def _generate_many(inputs, labels, min_path, max_path, perfect, wall_prob, unique, seed):
    """Fill ``inputs``/``labels`` [count, h, w]; returns how many mazes were made."""
    np.random.seed(seed)
    count, h, w = inputs.shape
    dist = np.empty((h, w), np.int64)
    counts = np.empty((h, w), np.int64)
    queue = np.empty(h * w, np.int64)
    goals = np.empty(h * w, np.int64)
    for i in range(count):
        grid = inputs[i]
        ok = False
        for _ in range(_MAX_GRIDS):
            if perfect:
                _carve(grid)
            else:
                _scatter(grid, wall_prob)
            length = np.random.randint(min_path, max_path + 1)
            # a perfect maze has one path between any two cells: no need to count
            if _place(grid, length, unique and not perfect, dist, queue, counts, goals):
                ok = True
                break
        if not ok:
            return i
        labels[i] = grid
        sr, sc = divmod(np.flatnonzero(grid.ravel() == START)[0], w)
        gr, gc = divmod(np.flatnonzero(grid.ravel() == GOAL)[0], w)
        _bfs(grid, gr, gc, dist, queue)
        _trace(dist, sr, sc, labels[i])
    return count


def generate(
    rng: np.random.Generator,
    count: int,
    height: int = 30,
    width: int = 30,
    min_path: int = 100,
    max_path: int = 140,
    mode: str = "perfect",
    wall_prob: float = 0.37,
    require_unique: bool = True,
    canvas: tuple[int, int] | list[int] | None = None,
    no_path: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Mazes and labels [count, height, width] with a shortest S -> G path of
    ``min_path..max_path`` edges (drawn uniformly per maze). With ``canvas``, each maze is
    walled in at a random place of a bigger board (so one batch can mix maze sizes).

    ``perfect``: DFS-carved maze in the largest odd top-left block (a unique path between any
    two cells). ``random``: each inner cell a wall with ``wall_prob``; with ``require_unique``
    only S/G pairs joined by exactly one shortest path are used. Inputs may repeat; see dedupe.

    ``no_path``: the share of mazes (drawn per maze) made unsolvable by walling one random cell
    of the S -> G path; their label is the input (no ``o``). In a perfect maze that cell was the
    only way through; a random maze where another way remains keeps its path.
    """
    if not 0.0 <= no_path <= 1.0:
        raise ValueError(f"no_path must be a share between 0 and 1, got {no_path}")
    if mode not in ("perfect", "random"):
        raise ValueError(f"mode must be 'perfect' or 'random', got {mode!r}")
    if height < 3 or width < 3:
        raise ValueError(f"maze must be at least 3x3, got {height}x{width}")
    if not 1 <= min_path <= max_path:
        raise ValueError(f"need 1 <= min_path <= max_path, got {min_path}, {max_path}")
    perfect = mode == "perfect"
    lattice = ((height - 1) // 2) * ((width - 1) // 2)
    cells = 2 * lattice - 1 if perfect else (height - 2) * (width - 2)
    if min_path >= cells:
        raise ValueError(
            f"a path of {min_path} steps cannot fit in a {height}x{width} {mode} maze "
            f"({cells} open cells at most)"
        )
    inputs = np.empty((count, height, width), np.uint8)
    labels = np.empty((count, height, width), np.uint8)
    seed = int(rng.integers(2**32))
    made = _generate_many(
        inputs, labels, min_path, max_path, perfect, wall_prob, require_unique, seed
    )
    if made < count:
        raise ValueError(
            f"could not place a path of {min_path}-{max_path} steps in {_MAX_GRIDS} "
            f"{height}x{width} {mode} mazes; use a shorter path or a bigger maze"
        )
    if no_path:
        cut_paths(rng, inputs, labels, rng.random(count) < no_path)
    if canvas is not None:
        return wall_in(rng, inputs, labels, *canvas)
    return inputs, labels


def cut_paths(rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray,
              which: np.ndarray) -> None:
    """In place: wall one random path cell of each chosen maze; if G is then unreachable, the
    label becomes the input (no path), else the cut is undone. Mazes whose S touches G have
    no cell to cut and keep their path."""
    for i in np.flatnonzero(which):
        cells = np.argwhere(labels[i] == PATH)
        if not len(cells):
            continue
        r, c = cells[rng.integers(len(cells))]
        inputs[i, r, c] = WALL
        if has_path(inputs[i]):
            inputs[i, r, c] = OPEN
        else:
            labels[i] = inputs[i]


def wall_in(rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray, height: int,
            width: int) -> tuple[np.ndarray, np.ndarray]:
    """Place each maze at a random offset of a ``height x width`` board of walls."""
    n, h, w = inputs.shape
    if h > height or w > width:
        raise ValueError(f"a {h}x{w} maze does not fit a {height}x{width} canvas")
    big_x = np.full((n, height, width), WALL, np.uint8)
    big_y = big_x.copy()
    rows = rng.integers(0, height - h + 1, n)
    cols = rng.integers(0, width - w + 1, n)
    for i, (r, c) in enumerate(zip(rows, cols)):
        big_x[i, r : r + h, c : c + w] = inputs[i]
        big_y[i, r : r + h, c : c + w] = labels[i]
    return big_x, big_y


def dedupe(inputs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first of each distinct input (generated mazes can repeat, mostly small ones)."""
    flat = np.ascontiguousarray(inputs).reshape(len(inputs), -1)
    _, first = np.unique(flat, axis=0, return_index=True)
    keep = np.sort(first)
    return inputs[keep], labels[keep]


# ----------------------------------------------------------------------------- augmentation


def canonical_key(grid: np.ndarray) -> bytes:
    """The same bytes for mazes that are rotations/reflections of each other (the symmetries
    ``augment`` applies): the smallest of the 8 (or, for rectangles, 4) images."""
    g = np.asarray(grid, np.uint8)
    turns = [np.rot90(g, k) for k in range(4)]
    images = turns + [t[:, ::-1] for t in turns]
    return min(bytes(i.shape) + np.ascontiguousarray(i).tobytes() for i in images
               if i.shape == g.shape)


def canonical_keys(grids) -> list[bytes]:
    """``canonical_key`` of each maze."""
    return [canonical_key(g) for g in grids]


def augment(
    rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A random symmetry of the square (or, for rectangles, of the rectangle) per maze,
    the same for input and label. Shortest paths map to shortest paths."""
    x, y = np.array(inputs), np.array(labels)
    square = x.shape[1] == x.shape[2]
    # k = quarter turns + 4 * (mirror left-right); rectangles keep only turns by 0 or 180
    choices = np.arange(8) if square else np.array([0, 2, 4, 6])
    ks = rng.choice(choices, size=len(x))
    for k in np.unique(ks):
        idx = np.flatnonzero(ks == k)
        for arr in (x, y):
            t = np.rot90(arr[idx], k % 4, axes=(1, 2))
            arr[idx] = t[:, :, ::-1] if k >= 4 else t
    return x, y
