#!/usr/bin/env bash
# How sure the halting head must be before a Sudoku answer is accepted (the bundled model's
# q_accept; docs/models.md, sudoku-9x9 card, "Choosing the defaults"). A tuning set of 600
# generated minimal puzzles (seed 3001: no evaluation set and no training set uses it), solved
# at the defaults with three seeds per setting; the bundle's own q_accept is overridden on the
# command line. Run on a quiet machine from the repository root; about 25 minutes (bf16).
#   bash train/tune-sudoku-q-accept.sh [OUT_DIR]
#   W=FILE SETTINGS="--q-accept 2 --min-steps 4|--q-accept 3 --min-steps 4" bash ... OUT_DIR
#   (another model than the bundled sudoku-9x9, and other settings, separated by |)
set -euo pipefail
E=".venv/bin/eqr-solve"
O=${1:-docs/eval/sudoku-9x9-q-accept-tune}
# records: 0.4 MB per file, not committed (the summary is); one folder per model
R=data/tune/records${W:+-$(echo "$W" | tr "/." "__")}
mkdir -p "$R" "$O"
SETTINGS=${SETTINGS:-"--q-accept 0 --min-steps 2|--q-accept 1 --min-steps 2|--q-accept 2 --min-steps 2|--q-accept 3 --min-steps 2|--q-accept 0 --min-steps 4|--q-accept 2 --min-steps 4"}
IFS='|' read -r -a OPTS_LIST <<< "$SETTINGS"
$E data sudoku --count 600 --minimal --seed 3001 --text --out data/tune/minimal600-3001
for seed in 0 1 2; do
  for opts in "${OPTS_LIST[@]}"; do
    tag=$(echo "$opts" | tr -d ' -')
    # shellcheck disable=SC2086  # opts: words on purpose
    $E sudoku data/tune/minimal600-3001.txt --json --seed "$seed" ${W:+--weights "$W"} $opts \
      > "$R/seed$seed-$tag.jsonl" || [ $? -eq 1 ]  # exit 1: some unsolved
  done
done
.venv/bin/python - "$R" "$O" <<'EOF'
"""One row per setting: exact over the three seeds, mean NFE, the wrong answers' stages."""
import json
import sys
from collections import defaultdict
from pathlib import Path

records, out = Path(sys.argv[1]), Path(sys.argv[2])
rows = defaultdict(list)
for f in sorted(records.glob("seed*-*.jsonl")):
    seed, tag = f.stem.split("-", 1)
    rows[tag].append([json.loads(line) for line in f.open()])
lines = ["| setting | exact per seed | exact, all | mean NFE | wrong answers: stage 1 / 2 / 3 |",
         "|---|---|---:|---:|---|"]
for tag, runs in rows.items():
    recs = [r for run in runs for r in run]
    wrong = [r for r in recs if not r["valid"]]
    per_stage = [sum(r["stages"] == k for r in wrong) for k in (1, 2, 3)]
    lines.append(f"| {tag} | {' / '.join(str(sum(r['valid'] for r in run)) for run in runs)} "
                 f"of {len(runs[0])} | {100 * (len(recs) - len(wrong)) / len(recs):.2f}% | "
                 f"{sum(r['nfe'] for r in recs) / len(recs):.1f} | "
                 f"{' / '.join(map(str, per_stage))} |")
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
