"""Datasets: the shared real collections (with their fixed train/test split), generated
puzzles, saved datasets (numpy arrays + a JSON manifest), and the endless augmented stream
the trainer draws from.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eqr_solve.tasks import InputError, get_task, read_text

# Where the shared collections live: ``EQR_DATA_DIR`` (``EQR_SHARED_DATA`` is the older name),
# else the development layout, ``../shared/data`` beside the repository. A ``data_dir``/
# ``shared_dir`` argument overrides both. The directory holds ``sudoku/FILE`` (or FILE itself).
DATA_DIR_VARS = ("EQR_DATA_DIR", "EQR_SHARED_DATA")
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
COLLECTIONS = ("puzzles2_17_clue.txt", "puzzles3_magictour_top1465.txt",
               "puzzles5_forum_hardest_1905_11+.txt", "puzzles6_forum_hardest_1106.txt",
               "puzzles7_serg_benchmark.txt")
TEST_ONLY_FILES = ("puzzles3_magictour_top1465.txt", "puzzles6_forum_hardest_1106.txt")
PUBLISHED = ("the public Sudoku benchmark collections behind Sudoku-Extreme (17-clue list, "
             "magictour top1465, forum hardest lists, serg benchmark), published together in "
             "tdoku's data.zip: https://github.com/t-dillon/tdoku")
# The test split of the shared collections, carried by the package so that the split guard
# works without them: 8-byte digests of the canonical key of every test puzzle
# (`make_fingerprint`; regenerate with `python tools/make_fingerprint.py`).
FINGERPRINT = Path(__file__).resolve().parent / "resources" / "test_split_fingerprint.npz"


@dataclass
class Dataset:
    """Puzzles of one kind and shape: ``inputs``/``labels`` token grids ``[N, H, W]``.

    ``difficulty`` is the Sudoku rating (guesses of the exact solver) or the maze path length;
    ``source`` names where each puzzle came from (e.g. ``puzzles7_serg_benchmark.txt:120``).
    """

    kind: str
    inputs: np.ndarray
    labels: np.ndarray
    difficulty: np.ndarray
    source: list[str]
    manifest: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.inputs.shape[1:])

    def subset(self, idx) -> Dataset:
        idx = np.asarray(idx)
        return Dataset(self.kind, self.inputs[idx], self.labels[idx], self.difficulty[idx],
                       [self.source[i] for i in idx], dict(self.manifest, count=len(idx)))

    def save(self, path: Path | str) -> None:
        """``NAME.npz`` (arrays) + ``NAME.json`` (manifest), written atomically."""
        path = Path(path).with_suffix("")
        path.parent.mkdir(parents=True, exist_ok=True)
        manifest = dict(self.manifest, kind=self.kind, count=len(self),
                        shape=list(self.shape))
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, inputs=self.inputs, labels=self.labels,
                            difficulty=self.difficulty, source=np.array(self.source))
        os.replace(tmp, path.with_suffix(".npz"))
        path.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path | str) -> Dataset:
        path = Path(path).with_suffix("")
        try:
            manifest = json.loads(path.with_suffix(".json").read_text())
            arrays = np.load(path.with_suffix(".npz"))
            return cls(manifest["kind"], arrays["inputs"], arrays["labels"],
                       arrays["difficulty"], [str(s) for s in arrays["source"]], manifest)
        except (OSError, KeyError, ValueError) as e:
            raise InputError(f"{path}: not a dataset built by `eqr-solve data` ({e})") from e


# -- the shared collections and their split -----------------------------------------------------
def collection_lines(path: Path) -> list[tuple[int, str]]:
    """(puzzle number, line) for each puzzle line; comments and blank lines are not numbered."""
    out = []
    for line in read_text(path).splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            out.append((len(out), stripped))
    return out


def split_of(file_name: str, number: int) -> str:
    """The fixed split of ../shared/data/README.md: test-only files, else every 10th is test."""
    if file_name in TEST_ONLY_FILES or number % 10 == 0:
        return "test"
    return "train"


def load_collection(name: str, split: str, limit: int | None = None,
                    shared_dir: Path | str | None = None, holdout: int = 0) -> Dataset:
    """One shared Sudoku collection's split, labelled by the exact solver and rated.

    ``holdout`` sets aside the last that many puzzles of the train split: ``split="train"``
    leaves them out and ``split="holdout"`` is exactly them (a run's held-out set, drawn from
    its own training material and never trained on)."""
    sudoku = get_task("sudoku")
    path = collection_path(name, shared_dir)
    if split not in ("train", "test", "holdout"):
        raise InputError(f"{name}: split must be 'train', 'test' or 'holdout', not {split!r}")
    lines = [(n, s) for n, s in collection_lines(path)
             if split_of(path.name, n) == ("test" if split == "test" else "train")]
    if split == "holdout" and not 0 < holdout < len(lines):
        raise InputError(f"{name}: a holdout split needs 0 < holdout < {len(lines)} (the train "
                         f"split's size), not {holdout}")
    if split != "test" and holdout:
        lines = lines[len(lines) - holdout:] if split == "holdout" else lines[:-holdout]
    grids = np.stack([sudoku.from_line(s[:81]) for _, s in lines])
    dropped = 0
    if split != "test":  # a puzzle that is also a test puzzle elsewhere is a test puzzle
        keep = np.flatnonzero(~split_guard(shared_dir).holds(grids))
        dropped = len(lines) - len(keep)
        lines, grids = [lines[i] for i in keep], grids[keep]
    if limit is not None:
        lines, grids = lines[:limit], grids[:limit]
    labels, ok = sudoku.solve_many(grids)
    if not ok.all():
        raise InputError(f"{path}: {int((~ok).sum())} puzzles have no solution")
    ambiguous = 0
    if split != "test":  # a label is only meaningful when the solution is unique
        unique = np.array([sudoku.count_solutions(g, 2) == 1 for g in grids])
        ambiguous = int((~unique).sum())
        lines, grids, labels = [x for x, u in zip(lines, unique) if u], grids[unique], \
            labels[unique]
    return Dataset(
        "sudoku", grids, labels, sudoku.rate_many(grids).astype(np.int32),
        [f"{name}:{n}" for n, _ in lines],
        {"source": f"shared/data/sudoku/{name}", "split": split,
         "dropped_as_test_duplicates": dropped, "dropped_as_not_unique": ambiguous},
    )


def drop_seen(dataset: Dataset, others: list[Dataset]) -> tuple[Dataset, int]:
    """``dataset`` without the puzzles that occur in ``others`` up to the symmetries the task
    considers the same puzzle (``canonical_key``): a generated eval set of small mazes can
    repeat training mazes, since small boards hold few distinct mazes."""
    keys = get_task(dataset.kind).canonical_keys
    seen = {k for o in others if o.kind == dataset.kind for k in keys(o.inputs)}
    keep = [i for i, k in enumerate(keys(dataset.inputs)) if k not in seen]
    dropped = len(dataset) - len(keep)
    manifest = dict(dataset.manifest, dropped_as_seen=dropped)
    return Dataset(dataset.kind, dataset.inputs[keep], dataset.labels[keep],
                   dataset.difficulty[keep], [dataset.source[i] for i in keep],
                   manifest), dropped


def assert_no_test_puzzles(dataset: Dataset, shared_dir: Path | str | None = None) -> None:
    """Refuse a training set that holds a test puzzle of a shared collection (or an augmented
    copy of one). Only 9x9 Sudoku can collide with the shared collections.

    Checked against the collections found in the data directory and against the packaged
    fingerprint of their test split, so it never passes for want of the collections; with
    neither, it refuses (`split_guard`)."""
    if dataset.kind != "sudoku" or dataset.shape != (9, 9):
        return
    held = split_guard(shared_dir).holds(dataset.inputs)
    if held.any():
        bad = [s for s, h in zip(dataset.source, held) if h]
        raise ValueError(f"training data holds {len(bad)} test puzzles, e.g. {bad[0]}")


def data_dir(override: Path | str | None = None) -> Path:
    """The directory of the shared collections: ``override``, else ``$EQR_DATA_DIR`` (or
    ``$EQR_SHARED_DATA``), else the development layout ``../shared/data``."""
    if override:
        return Path(override)
    for var in DATA_DIR_VARS:
        if os.environ.get(var):
            return Path(os.environ[var])
    return DEFAULT_DATA_DIR


def _sudoku_dir(directory: Path) -> Path:
    return directory / "sudoku" if (directory / "sudoku").is_dir() else directory


def _collection_files(directory: Path) -> list[Path]:
    """Every collection file of a data directory: all ``sudoku/*.txt``, or, for a directory
    that holds the files themselves, those of ``COLLECTIONS`` found there."""
    if (directory / "sudoku").is_dir():
        return sorted((directory / "sudoku").glob("*.txt"))
    return [directory / n for n in COLLECTIONS if (directory / n).is_file()]


def collection_path(name: str, shared_dir: Path | str | None = None) -> Path:
    """The file of one shared collection, or one line saying which file is missing, where it
    was looked for and where the collections are published."""
    directory = data_dir(shared_dir)
    path = _sudoku_dir(directory) / name
    if not path.is_file():
        raise InputError(f"shared collection {name} not found in {directory} (or its sudoku/; "
                         f"set EQR_DATA_DIR or pass a data directory): it is one of {PUBLISHED}")
    return path


def digests(keys) -> np.ndarray:
    """8-byte digests (blake2b) of canonical keys, as uint64: what the fingerprint holds."""
    return np.array([int.from_bytes(hashlib.blake2b(k, digest_size=8).digest(), "little")
                     for k in keys], dtype=np.uint64)


@dataclass
class SplitGuard:
    """What the split guard checks against: the canonical keys of the test puzzles in the
    collections found, and the packaged fingerprint's digests (either may be empty)."""

    keys: set[bytes]
    fingerprint: np.ndarray

    def holds(self, grids) -> np.ndarray:
        """Per 9x9 grid: is it a test puzzle, or an augmented copy of one?"""
        ks = get_task("sudoku").canonical_keys(grids)
        held = np.array([k in self.keys for k in ks], dtype=bool)
        if len(self.fingerprint) and len(ks):
            held |= np.isin(digests(ks), self.fingerprint)
        return held


_TEST_KEYS: dict[Path, set[bytes]] = {}
_FINGERPRINTS: dict[Path, np.ndarray] = {}


def test_keys(shared_dir: Path | str | None = None) -> set[bytes]:
    """Canonical keys of the test puzzles of every collection file in the data directory
    (empty when there is none)."""
    directory = data_dir(shared_dir)
    if directory not in _TEST_KEYS:
        sudoku = get_task("sudoku")
        keys: set[bytes] = set()
        for path in _collection_files(directory):
            lines = [s for n, s in collection_lines(path) if split_of(path.name, n) == "test"]
            keys |= set(sudoku.canonical_keys([sudoku.from_line(s[:81]) for s in lines]))
        _TEST_KEYS[directory] = keys
    return _TEST_KEYS[directory]


def load_fingerprint(path: Path | None = None) -> np.ndarray | None:
    """The packaged fingerprint's sorted digests, or None when the file is missing."""
    path = Path(path or FINGERPRINT)
    if path not in _FINGERPRINTS:
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as f:
            _FINGERPRINTS[path] = np.sort(f["digests"].astype(np.uint64))
    return _FINGERPRINTS[path]


def split_guard(shared_dir: Path | str | None = None,
               fingerprint: Path | None = None) -> SplitGuard:
    """The test split to guard: the collections present plus the packaged fingerprint. Without
    the fingerprint every shared collection must be present, else one line refuses."""
    digest = load_fingerprint(fingerprint)
    directory = data_dir(shared_dir)
    if digest is None:
        missing = [n for n in COLLECTIONS if not (_sudoku_dir(directory) / n).is_file()]
        if missing:
            raise InputError(
                f"cannot check training data against the test split: no fingerprint at "
                f"{fingerprint or FINGERPRINT} and {missing[0]} not found in {directory} "
                f"(set EQR_DATA_DIR): it is one of {PUBLISHED}")
        digest = np.zeros(0, np.uint64)
    return SplitGuard(test_keys(directory), digest)


def make_fingerprint(out: Path | None = None, shared_dir: Path | str | None = None) -> Path:
    """Write the fingerprint of the test split of every shared collection (all of
    ``COLLECTIONS`` must be present): sorted uint64 digests of their canonical keys."""
    sudoku, files, counts, keys = get_task("sudoku"), [], [], set()
    for name in COLLECTIONS:
        lines = [s for n, s in collection_lines(collection_path(name, shared_dir))
                 if split_of(name, n) == "test"]
        files.append(name)
        counts.append(len(lines))
        keys |= set(sudoku.canonical_keys([sudoku.from_line(s[:81]) for s in lines]))
    d = np.unique(digests(sorted(keys)))
    if len(d) != len(keys):
        raise ValueError("two test keys share a digest: use longer digests")
    out = Path(out or FINGERPRINT)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, digests=d, files=np.array(files), test_puzzles=np.array(counts),
                        hash=np.array("blake2b-8 of tasks.sudoku.canonical_keys (structure "
                                      "hash, 2026-12-07), little-endian"))
    _FINGERPRINTS.pop(out.resolve(), None)
    _FINGERPRINTS.pop(out, None)
    return out


# -- generated data -----------------------------------------------------------------------------
def generate(kind: str, count: int, seed: int, **params) -> Dataset:
    """Generated puzzles: Sudoku (``n``, ``blanks`` or ``minimal``) or mazes (size, path)."""
    task = get_task(kind)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    blanks = params.get("blanks")
    if isinstance(blanks, (list, tuple)):  # a range: equal shares of each blank count
        values = list(range(blanks[0], blanks[1] + 1))
        shares = np.diff(np.linspace(0, count, len(values) + 1).round().astype(int))
        parts = [task.generate(rng, int(k), **dict(params, blanks=b))
                 for b, k in zip(values, shares) if k]
        inputs = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
    else:
        inputs, labels = task.generate(rng, count, **params)
    if kind == "sudoku":
        difficulty = task.rate_many(inputs)
    else:
        difficulty = np.array([task.path_length(g) for g in inputs])
    manifest = {"generator": kind, "params": params, "seed": seed,
                "seconds": round(time.perf_counter() - t0, 2)}
    return Dataset(kind, inputs, labels, np.asarray(difficulty, np.int32),
                   [f"generated:{kind}:{seed}:{i}" for i in range(count)], manifest)


# -- the training stream ------------------------------------------------------------------------
class PuzzleStream:
    """An endless, resumable stream of augmented (input, label) pairs from weighted sources.

    Each shard of a training run owns one stream with its own seed, so a run draws the same
    puzzles whatever the number of processes it is spread over.
    """

    def __init__(self, sources: list[Dataset], weights: list[float], seed: int,
                 augment: bool = True, start_weights: list[float] | None = None):
        if not sources:
            raise ValueError("a stream needs at least one dataset")
        if len({s.shape for s in sources}) != 1:
            raise ValueError("all sources of one stream must have the same board shape")
        self.sources = sources
        self.weights = np.asarray(weights, dtype=np.float64)
        self.start_weights = np.asarray(start_weights if start_weights is not None else weights,
                                        dtype=np.float64)
        self.task = get_task(sources[0].kind)
        self.augment = augment
        self.rng = np.random.default_rng(seed)

    def mix(self, progress: float) -> np.ndarray:
        """Source probabilities: a curriculum from the start weights to the final ones."""
        w = self.start_weights + (self.weights - self.start_weights) * min(1.0, progress)
        return w / w.sum()

    def take(self, n: int, progress: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        which = self.rng.choice(len(self.sources), size=n, p=self.mix(progress))
        inputs = np.empty((n, *self.sources[0].shape), np.uint8)
        labels = np.empty_like(inputs)
        for s, src in enumerate(self.sources):
            rows = np.flatnonzero(which == s)
            if len(rows):
                idx = self.rng.integers(len(src), size=len(rows))
                inputs[rows], labels[rows] = src.inputs[idx], src.labels[idx]
        if self.augment:
            inputs, labels = self.task.augment(self.rng, inputs, labels)
        return inputs, labels

    def state_dict(self) -> dict:
        return {"rng": json.dumps(self.rng.bit_generator.state)}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = json.loads(state["rng"])


# -- evaluation inputs --------------------------------------------------------------------------
def from_puzzles(kind: str, puzzles: list, name: str) -> Dataset:
    """Parsed puzzles (one shape) labelled by the exact solver; unsolvable ones are refused."""
    task = get_task(kind)
    inputs = np.stack([p.grid for p in puzzles])
    labels, difficulty = [], []
    for p in puzzles:
        label = task.solve(p.grid)
        if label is None:
            raise InputError(f"{p.source}: the puzzle has no solution")
        labels.append(label)
        difficulty.append(task.rating(p.grid) if kind == "sudoku" else task.path_length(p.grid))
    return Dataset(kind, inputs, np.stack(labels), np.array(difficulty, np.int32),
                   [p.source for p in puzzles], {"source": name})


def concat(parts: list[Dataset]) -> Dataset:
    if len({p.shape for p in parts}) > 1:
        raise InputError("all evaluation data must have one board shape")
    return Dataset(parts[0].kind, np.concatenate([p.inputs for p in parts]),
                   np.concatenate([p.labels for p in parts]),
                   np.concatenate([p.difficulty for p in parts]),
                   [s for p in parts for s in p.source],
                   {"parts": [p.manifest for p in parts]})
