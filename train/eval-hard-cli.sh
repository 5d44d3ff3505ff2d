#!/usr/bin/env bash
# The hard Sudoku sets through the command line, as a user runs them (README "Solving",
# docs/models.md `sudoku-9x9` card, 2026-12-06): the defaults and --depth 64 --breadth 64 on the
# first 188 puzzles of the test-only files, the first 188 of the test splits and the card's 200
# generated minimal puzzles. Run on a quiet machine from the repository root; about 2 hours
# on 2 cores (bf16) for all three parts. Time per puzzle = wall time of the file / puzzles.
#   bash train/eval-hard-cli.sh [defaults] [D64B64] [budget]   (no argument: all three)
#   O=DIR SETS="minimal200 17clue-test188" bash train/eval-hard-cli.sh ...  (output, sets)
#   W=FILE ... bash train/eval-hard-cli.sh ...  (another model than the bundled sudoku-9x9; any
#   further solve options, e.g. --q-accept 2, in OPTS="...")
# SETS applies to every part given (D64B64 on a forum set takes about an hour).
# The defaults since 2026-12-06 (late: q_accept 2 in the bundle, --min-steps 4 for Sudoku) are
# measured in docs/eval/hard-sets-2026-12-06-late; the earlier ones (q_accept 0, --min-steps 2)
# in docs/eval/hard-sets-2026-12-06; q_accept 2 with --min-steps 2, on three sets only, in
# docs/eval/hard-sets-2026-12-06-q2-minsteps2. By difficulty band: docs/eval/hard_sets_bands.py.
set -euo pipefail
E=".venv/bin/eqr-solve"
O=${O:-docs/eval/hard-sets-2026-12-06-late}
PARTS=${*:-defaults D64B64 budget}
for p in $PARTS; do
  case $p in defaults|D64B64|budget) ;; *) echo "error: unknown part '$p' (defaults, D64B64, budget)" >&2; exit 2 ;; esac
done
part() { [[ " $PARTS " == *" $1 "* ]]; }
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
  # shellcheck disable=SC2086  # OPTS: words on purpose
  $E sudoku "data/hard/$set.txt" --json ${W:+--weights "$W"} ${OPTS:-} "$@" > "$O/$set-$tag.jsonl" || [ $? -eq 1 ]  # 1: some unsolved
  echo "$set-$tag $(echo "$(date +%s.%N) - $t0" | bc) ${W:+--weights $W} ${OPTS:-} $*" >> "$O/times.txt"
}
if part defaults; then
  for set in ${SETS:-minimal200 17clue-test188 top1465-first188 forum1106-first188 forum1905-test188}; do
    run "$set" defaults
  done
fi
if part D64B64; then
  for set in ${SETS:-minimal200 17clue-test188 top1465-first188}; do
    run "$set" D64B64 --depth 64 --breadth 64
  done
fi
if part budget; then  # a bigger escalation budget on the first 50 forum-hardest (about 26 minutes)
  head -50 data/hard/forum1106-first188.txt > data/hard/forum1106-first50.txt
  run forum1106-first50 budget8192 --budget 8192
fi
