#!/usr/bin/env bash
# What a user waits per puzzle with the paper's Sudoku model (converted from the official
# format; random weights of the released layout, so every trajectory runs its whole depth:
# --halt none) at D16 B1 and D64 B8, in fp32 and bf16. Run on a quiet machine from the repo
# root; the official code's own segment time is benchmarks/official_side_by_side.py.
set -euo pipefail
T=$(mktemp -d)
.venv/bin/python - "$T/paper.pth" <<'PY'
import sys
from tests.test_official import ARCH, write_official
arch = dict(ARCH, hidden_size=512, num_heads=8, L_layers=2, H_cycles=3, L_cycles=6, mlp_t=True,
            board_height=9, board_width=9)
write_official(sys.argv[1], arch, 81, 11, "sudoku-extreme-1k-aug-1000")
PY
.venv/bin/eqr-solve weights convert "$T/paper.pth" "$T/eqr-paper.safetensors"
head -3 examples/sudoku-line.txt | grep -v '^#' | head -1 > "$T/one.txt"
for dt in fp32 bf16; do
  for db in "16 1" "64 8"; do
    set -- $db
    # exit code 1 is expected: random weights give no valid answer
    s=$( { /usr/bin/time -f %e .venv/bin/eqr-solve sudoku "$T/one.txt" --weights "$T/eqr-paper.safetensors" \
           --depth "$1" --breadth "$2" --halt none --retries 0 --dtype $dt --json > "$T/out.json" || true; } 2>&1 | tail -1)
    echo "paper model, $dt, D$1 B$2: ${s} s wall for one puzzle (solver: $(.venv/bin/python -c "import json;print(json.load(open('$T/out.json'))['seconds'])") s)"
  done
done
rm -rf "$T"
