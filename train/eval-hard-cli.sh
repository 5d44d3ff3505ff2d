#!/usr/bin/env bash
# The hard Sudoku sets through the command line, as a user runs them (README "Solving",
# docs/models.md `sudoku-9x9` card, 2026-12-06): the defaults and --depth 64 --breadth 64 on the
# first 188 puzzles of the test-only files, the first 188 of the test splits and the card's 200
# generated minimal puzzles. Run on a quiet machine from the repository root; about 2 hours
# on 2 cores (bf16). Time per puzzle = wall time of the file / puzzles.
set -euo pipefail
E=".venv/bin/eqr-solve"
O=docs/eval/hard-sets-2026-12-06
mkdir -p data/hard "$O"
$E data sudoku --count 200 --minimal --seed 2003 --text --out data/hard/minimal200
# the first 188 of each collection's test split (the whole of a test-only file is its test split)
for c in top1465-first188:puzzles3_magictour_top1465.txt forum1106-first188:puzzles6_forum_hardest_1106.txt \
         17clue-test188:puzzles2_17_clue.txt "forum1905-test188:puzzles5_forum_hardest_1905_11+.txt"; do
  $E data sudoku --collection "${c#*:}" --text --out "data/hard/all-${c%%:*}"
  head -188 "data/hard/all-${c%%:*}.txt" > "data/hard/${c%%:*}.txt"
done
run() {  # SET TAG [OPTIONS]: JSON records, and the wall time in times.txt
  local set=$1 tag=$2; shift 2
  local t0; t0=$(date +%s.%N)
  $E sudoku "data/hard/$set.txt" --json "$@" > "$O/$set-$tag.jsonl" || true  # exit 1: some unsolved
  echo "$set-$tag $(echo "$(date +%s.%N) - $t0" | bc) $*" >> "$O/times.txt"
}
for set in forum1106-first188 top1465-first188 17clue-test188 minimal200 forum1905-test188; do
  run "$set" defaults
done
for set in 17clue-test188 minimal200 top1465-first188; do
  run "$set" D64B64 --depth 64 --breadth 64
done
# a bigger escalation budget on the first 50 forum-hardest puzzles (about 26 minutes)
head -50 data/hard/forum1106-first188.txt > data/hard/forum1106-first50.txt
run forum1106-first50 budget8192 --budget 8192
