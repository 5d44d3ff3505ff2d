"""Test puzzles that reappear, permuted or transposed, in the train splits of the shared
Sudoku collections, and what that did to the bundled `sudoku-9x9`'s hard-set records
(docs/training.md, "The split guard and augmented copies").

    .venv/bin/python docs/eval/split-guard/copies.py [RECORDS.jsonl ...]

For every train puzzle the relabel-only key of before 2026-12-07 let through, it asks whether
its structure key (`tasks.sudoku.canonical_keys`) is a test puzzle's, and confirms each such
match by brute force: some arrangement of rows (band order, row order in each band), columns
and transposition maps one puzzle's clues onto the other's under a bijection of digits. Then it
scores `eqr-solve sudoku --json` records with and without the puzzles that the bundled model's
training data (17-clue and forum-hardest-1905 train splits) held up to symmetry.
"""

import itertools
import json
import sys
from collections import Counter

import numpy as np

from eqr_solve import data as D
from eqr_solve.tasks import sudoku as S

ORDERS = np.array([[bands[i] * 3 + rows[i][j] for i in range(3) for j in range(3)]
                   for bands in itertools.permutations(range(3))
                   for rows in itertools.product(itertools.permutations(range(3)), repeat=3)])


def relabel_key(grid: np.ndarray) -> bytes:
    """The guard's key before 2026-12-07: digits renumbered by first appearance."""
    seen: dict[int, int] = {}
    return bytes(seen.setdefault(int(t), len(seen) + 2) if t > 1 else 1 for t in grid.ravel())


def same_puzzle(p: np.ndarray, q: np.ndarray) -> bool:
    """Brute force over all 2 x 1,296 x 1,296 arrangements (columns pruned by the clue
    pattern): is q a relabelled, permuted or transposed copy of p?"""
    clues = q > S.BLANK
    for t in (p, p.T):
        for rows in ORDERS:
            a = t[rows]
            fits = ((a[:, ORDERS] > S.BLANK).transpose(1, 0, 2) == clues).all(axis=(1, 2))
            for cols in ORDERS[fits]:
                pairs = set(zip(a[:, cols][clues].tolist(), q[clues].tolist()))
                if len({x for x, _ in pairs}) == len(pairs) == len({y for _, y in pairs}):
                    return True
    return False


def main(records: list[str]) -> None:
    files = {name: D.collection_lines(D.collection_path(name)) for name in D.COLLECTIONS}
    tests: dict[bytes, tuple[str, int, np.ndarray]] = {}
    old_test = set()
    for name, lines in files.items():
        test = [(n, S.from_line(s[:81])) for n, s in lines if D.split_of(name, n) == "test"]
        old_test |= {relabel_key(g) for _, g in test}
        for (n, g), k in zip(test, S.canonical_keys([g for _, g in test])):
            tests.setdefault(k, (name, n, g))
    print(f"distinct test keys: {len(tests):,}")
    grids_17 = np.stack([S.from_line(s[:81]) for _, s in files["puzzles2_17_clue.txt"]])
    print(f"puzzles2_17_clue.txt: {len(grids_17):,} puzzles, "
          f"{len(set(S.canonical_keys(grids_17))):,} distinct keys")
    trained: set[bytes] = set()  # the bundled sudoku-9x9's training collections
    for name, lines in files.items():
        train = [(n, S.from_line(s[:81])) for n, s in lines if D.split_of(name, n) == "train"]
        train = [(n, g) for n, g in train if relabel_key(g) not in old_test]
        if not train:
            continue
        keys = S.canonical_keys([g for _, g in train])
        if name in ("puzzles2_17_clue.txt", "puzzles5_forum_hardest_1905_11+.txt"):
            trained |= set(keys)
        hits = [(n, g, tests[k]) for (n, g), k in zip(train, keys) if k in tests]
        copies = Counter(t[0] for n, g, t in hits if same_puzzle(g, t[2]))
        false = [n for n, g, t in hits if not same_puzzle(g, t[2])]
        print(f"{name} train: {len(hits)} share a test key; copies of test puzzles of "
              f"{dict(copies)}; not copies: {false}")
    for path in records:
        recs = [json.loads(line) for line in open(path)]
        seen = np.array([k in trained for k in
                         S.canonical_keys([S.from_line(r["puzzle"][:81]) for r in recs])])
        ok = np.array([bool(r["valid"]) for r in recs])
        clean = f"{ok[~seen].mean():.1%}" if (~seen).any() else "-"
        print(f"{path}: n {len(recs)}, {int(seen.sum())} seen in training "
              f"({int(ok[seen].sum())} solved); exact {ok.mean():.1%}, without them {clean} "
              f"(n {int((~seen).sum())})")


if __name__ == "__main__":
    main(sys.argv[1:])
