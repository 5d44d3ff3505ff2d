#!/usr/bin/env bash
# The evaluations behind the accuracy tables of docs/models.md. Run on a quiet
# machine (no training), from the repository root. Eval sets are rebuilt from their seeds.
set -euo pipefail
E=".venv/bin/eqr-solve"
W="${WEIGHTS_FROM:-}"          # set to e.g. train/runs to evaluate run dirs before bundling
w() { if [ -n "$W" ]; then echo "$W/$1-cpu/model.safetensors"; else echo "$1"; fi; }

$E data sudoku --count 200 --blanks 40 --seed 2001 --out data/sudoku9-40
$E data sudoku --count 200 --blanks 50 --seed 2002 --out data/sudoku9-50
$E data sudoku --count 200 --minimal --seed 2003 --out data/sudoku9-minimal
$E data sudoku --size 4 --count 200 --minimal --seed 2004 --out data/sudoku4-minimal
$E data sudoku --size 6 --count 200 --minimal --seed 2005 --out data/sudoku6-minimal

for n in 4 6; do
  $E eval sudoku -w "$(w sudoku-${n}x${n})" --data data/sudoku${n}-minimal.npz \
     --depth 1,2,4,16 --breadth 1,8 --out docs/eval/sudoku-${n}x${n}
  $E eval sudoku -w "$(w sudoku-${n}x${n})" --data data/sudoku${n}-minimal.npz \
     --depth 256 --breadth 64 --halt act --out docs/eval/sudoku-${n}x${n}-D256B64
done

S="$(w sudoku-9x9)"
# defaults (D16, B1) per set, every segment and with learned halting
$E eval sudoku -w "$S" --data data/sudoku9-40.npz --data data/sudoku9-50.npz \
   --data data/sudoku9-minimal.npz --limit 100 --depth 16 --breadth 1 --out docs/eval/sudoku-9x9-gen
$E eval sudoku -w "$S" --data shared:puzzles7_serg_benchmark.txt \
   --data shared:puzzles2_17_clue.txt --limit 100 --depth 16 --breadth 1 \
   --out docs/eval/sudoku-9x9-shared
# depth scaling (one pass) and breadth with residual / vote / any-correct
$E eval sudoku -w "$S" --data data/sudoku9-50.npz --limit 50 --depth 1,4,16,64,256 \
   --breadth 1 --halt none --out docs/eval/sudoku-9x9-depth
$E eval sudoku -w "$S" --data data/sudoku9-minimal.npz --limit 50 --depth 1,4,16,64 \
   --breadth 1 --halt none --out docs/eval/sudoku-9x9-depth-minimal
$E eval sudoku -w "$S" --data data/sudoku9-50.npz --limit 40 --depth 16,64 \
   --breadth 1,8 --halt act --out docs/eval/sudoku-9x9-breadth
# the large test-time budget, with learned halting
$E eval sudoku -w "$S" --data data/sudoku9-40.npz --data data/sudoku9-50.npz --limit 10 \
   --depth 256 --breadth 64 --halt act --out docs/eval/sudoku-9x9-D256B64
$E eval sudoku -w "$S" --data shared:puzzles7_serg_benchmark.txt --limit 10 \
   --depth 256 --breadth 64 --halt act --out docs/eval/sudoku-9x9-D256B64-serg
$E eval sudoku -w "$S" --data data/sudoku9-minimal.npz --limit 10 \
   --depth 256 --breadth 64 --halt act --out docs/eval/sudoku-9x9-D256B64-minimal
$E eval sudoku -w "$S" --data shared:puzzles2_17_clue.txt --limit 10 --depth 16,64,256 \
   --breadth 1,8,64 --halt act --out docs/eval/sudoku-9x9-D256B64-17clue
# the CLI defaults (--depth 16 --halt act --select q --retries 7): one ACT pass of 8 restarts,
# whose "retry" column replays --breadth 1 --retries 7 (q selection under ACT)
$E eval sudoku -w "$S" --data data/sudoku9-40.npz --data data/sudoku9-50.npz \
   --data data/sudoku9-minimal.npz --limit 100 --depth 16 --breadth 1,8 --halt act \
   --out docs/eval/sudoku-9x9-defaults-gen
$E eval sudoku -w "$S" --data shared:puzzles7_serg_benchmark.txt \
   --data shared:puzzles2_17_clue.txt --limit 100 --depth 16 --breadth 1,8 --halt act \
   --out docs/eval/sudoku-9x9-defaults-shared

# mazes
bash train/eval-maze.sh

# the escalation budget of the Sudoku defaults (docs/models.md, "Choosing the defaults"): the
# first 99 puzzles of a test-only hard file, solved at --budget 0 and 2000 (count `valid`,
# `nfe`, `seconds` in the records)
grep -v '^#' "${EQR_DATA_DIR:-../shared/data}/sudoku/puzzles3_magictour_top1465.txt" | head -99 \
  > data/top1465-first99.txt
for b in 0 2000; do
  $E sudoku data/top1465-first99.txt --budget $b --json > docs/eval/top1465-first99-budget$b.jsonl || true
done
