#!/usr/bin/env bash
# The evaluations behind the hard-Sudoku model card (docs/models.md, `sudoku-hard`): the
# test-only hard collections and the test splits, at the CLI defaults (one ACT pass of 8
# restarts: its "retry" column is --retries 7) and at --depth 64 --breadth 64 (ACT, q
# selection), each split by difficulty band with accuracy_vs_nfe_by_band.png. Run on a quiet
# machine from the repository root (no training beside it). The model: $HARD_WEIGHTS, default
# the run's current EMA weights.
set -euo pipefail
E=".venv/bin/eqr-solve"
W="${HARD_WEIGHTS:-train/runs/sudoku-hard-cpu/model.safetensors}"
O="${HARD_OUT:-docs/eval/sudoku-hard}"
N="${HARD_LIMIT:-200}"
$E data sudoku --count 200 --minimal --seed 2003 --out data/sudoku9-minimal
for set in puzzles3_magictour_top1465.txt puzzles6_forum_hardest_1106.txt \
           puzzles5_forum_hardest_1905_11+.txt:test puzzles2_17_clue.txt:test data/sudoku9-minimal.npz; do
  name=$(basename "${set%%[.:]*}")
  spec="shared:$set"; [[ $set == data/* ]] && spec=$set
  $E eval sudoku -w "$W" --data "$spec" --limit "$N" --depth 16 --breadth 1,8 --halt act \
     --out "$O/$name-defaults"
  $E eval sudoku -w "$W" --data "$spec" --limit "$N" --depth 16,64 --breadth 1,8,64 --halt act \
     --out "$O/$name-D64B64"
done
