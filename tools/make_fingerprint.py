"""Regenerate the packaged fingerprint of the shared collections' test split.

    .venv/bin/python tools/make_fingerprint.py [DATA_DIR]

DATA_DIR holds the shared Sudoku collections (``sudoku/FILE`` or ``FILE``); default
``$EQR_DATA_DIR``, else ``../shared/data``. Writes ``eqr_solve/resources/
test_split_fingerprint.npz``: the 8-byte digests of the canonical key of every test puzzle
(``eqr_solve.data.make_fingerprint``), which the split guard checks training data against when
the collections are not there. Run it only when the collections or the split rule change.
"""

import sys

import numpy as np

from eqr_solve import data


def main() -> None:
    out = data.make_fingerprint(shared_dir=sys.argv[1] if len(sys.argv) > 1 else None)
    with np.load(out) as f:
        counts = dict(zip(f["files"].tolist(), f["test_puzzles"].tolist()))
        print(f"{out}: {len(f['digests'])} distinct test keys, {out.stat().st_size:,} bytes; "
              f"test puzzles per file: {counts}")


if __name__ == "__main__":
    main()
