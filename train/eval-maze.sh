#!/usr/bin/env bash
# The evaluations behind the maze model card (docs/models.md); part of
# train/eval-bundled.sh. Run on a quiet machine from the repository root. Perfect mazes have
# a unique path between any two cells, so every set has a unique shortest path. The blocks
# with an explicit --tol 0.3 are the card of stage 5, the bundle until 2026-12-04
# (MAZE_WEIGHTS=train/runs/maze-cpu-deep13/model.safetensors, boards up to 13x13); the last
# block is the card of the current bundle (train/maze-cpu-deep15-slow.toml, tol 0.7 in its
# weights file). 30x30 (Maze-Unique style, path 100-140) was never seen in training.
set -euo pipefail
E=".venv/bin/eqr-solve"
M="${MAZE_WEIGHTS:-maze}"      # e.g. MAZE_WEIGHTS=train/runs/maze-cpu-deep13/model.safetensors

# the 9x9 training mazes of train/maze-cpu.toml (same generator spec and seed), so that the 9x9
# eval set can leave out every maze training saw (up to rotation/reflection)
$E data maze --size 9 --count 20000 --path-length 3-24 --seed 3 --out data/maze9-train
$E data maze --size 9 --count 200 --path-length 3-24 --seed 2008 --exclude data/maze9-train \
   --out data/maze9
# likewise the 11x11 training mazes of train/maze-cpu-deep11.toml (its own 11x11 board)
$E data maze --size 11 --count 20000 --path-length 5-40 --seed 4 --out data/maze11-train
$E data maze --size 11 --count 200 --path-length 5-40 --seed 2009 --exclude data/maze11-train \
   --out data/maze11
$E data maze --size 15 --count 200 --path-length 5-88 --seed 2006 --text --out data/maze15
$E data maze --size 30 --count 100 --path-length 100-140 --seed 2007 --out data/maze30
# a second 30x30 set for checking settings chosen on data/maze30 (the residual tolerance),
# and the bigger boards of the maze card
$E data maze --size 30 --count 100 --path-length 100-140 --seed 2013 --exclude data/maze30.npz \
   --text --out data/maze30-b
$E data maze --size 45 --count 100 --path-length 150-210 --seed 2011 --text --out data/maze45
$E data maze --size 60 --count 100 --path-length 200-280 --seed 2012 --text --out data/maze60

# depth scaling in one pass (every segment), then the defaults with learned halting
for n in 9 11 15; do
  $E eval maze -w "$M" --data data/maze$n.npz --limit 100 --depth 1,4,16,64 --breadth 1 \
     --halt none --out docs/eval/maze-${n}x${n}-depth
  $E eval maze -w "$M" --data data/maze$n.npz --limit 100 --depth 16,64 --breadth 1 --halt act \
     --out docs/eval/maze-${n}x${n}-act
done
$E eval maze -w "$M" --data data/maze30.npz --limit 32 --depth 16,64,256 --breadth 1 \
   --halt none --out docs/eval/maze-30x30-depth
# breadth: 8 random restarts per 30x30 maze (residual / vote / any-correct)
$E eval maze -w "$M" --data data/maze30.npz --limit 16 --depth 64 --breadth 1,8 --halt none \
   --out docs/eval/maze-30x30-breadth
# and the large budget on 15x15: 8 restarts per maze at the default depth
$E eval maze -w "$M" --data data/maze15.npz --limit 100 --depth 64 --breadth 1,8 --halt none \
   --out docs/eval/maze-15x15-breadth

# the CLI defaults (--depth 64 --halt residual --tol 0.3 --breadth 8 --race): one pass of 8
# restarts per maze with residual halting; its "race" column is the defaults, the "retry"
# column replays the earlier defaults (--breadth 1 --retries 7) on the same restarts
for n in 9 11 15; do
  $E eval maze -w "$M" --data data/maze$n.npz --limit 100 --depth 16,64 --breadth 1,8 \
     --halt residual --tol 0.3 --out docs/eval/maze-${n}x${n}-defaults
done
$E eval maze -w "$M" --data data/maze30.npz --limit 64 --depth 16,32,64 --breadth 1,2,4,8 \
   --halt residual --tol 0.3 --out docs/eval/maze-30x30-defaults
$E eval maze -w "$M" --data data/maze30.npz --limit 100 --depth 64 --breadth 1,8 \
   --halt residual --tol 0.3 --out docs/eval/maze-30x30-n100-defaults
# the large budget, --depth 256 --breadth 64 (with the default residual halting)
$E eval maze -w "$M" --data data/maze15.npz --limit 50 --depth 64,256 --breadth 1,8,64 \
   --halt residual --tol 0.3 --out docs/eval/maze-15x15-D256B64
$E eval maze -w "$M" --data data/maze30.npz --limit 6 --depth 64,256 --breadth 1,8,64 \
   --halt residual --tol 0.3 --out docs/eval/maze-30x30-D256B64
# and mazes 7-10 of the same set (run later, to grow the sample)
.venv/bin/python -c "from eqr_solve.data import Dataset; import numpy as np; \
Dataset.load('data/maze30.npz').subset(np.arange(6, 10)).save('data/maze30-7to10')"
$E eval maze -w "$M" --data data/maze30-7to10.npz --depth 64,256 --breadth 1,8,64 \
   --halt residual --tol 0.3 --out docs/eval/maze-30x30-D256B64-7to10

# the current bundle (maze-cpu-deep15-slow, its own tol 0.7): one pass of 16 restarts to D256,
# replayed at D64 and 1 / 8 restarts (the defaults are the D64 B8 "race" column)
$E eval maze -w "$M" --data data/maze15.npz --limit 200 --depth 64,256 --breadth 1,8,16 \
   --halt residual --out docs/eval/maze-card-2026-12-04/maze-15x15
$E eval maze -w "$M" --data data/maze30-b.npz --limit 100 --depth 64,256 --breadth 1,8,16 \
   --halt residual --out docs/eval/maze-card-2026-12-04/maze-30x30-b
$E eval maze -w "$M" --data data/maze45.npz --limit 50 --depth 64 --breadth 1,8 \
   --halt residual --out docs/eval/maze-card-2026-12-04/maze-45x45

# 2026-12-05: selection by the halting head (--select q, the "race q" column), chosen on
# data/maze30.npz; then the card through the command line (--text writes the sets as puzzle
# files): a third 30x30 set, mazes without a path (half of each set), and the time per maze
$E eval maze -w "$M" --data data/maze30.npz --limit 100 --depth 32,64,128 --breadth 1,4,8,16 \
   --halt residual --out docs/eval/maze-card-2026-12-05/maze-30x30-select
$E data maze --size 30 --count 100 --path-length 100-140 --seed 2014 --exclude data/maze30.npz \
   --exclude data/maze30-b.npz --text --out data/maze30-c
$E data maze --size 15 --count 200 --path-length 5-88 --seed 2010 --no-path 0.5 --text \
   --out data/maze15-nopath
$E data maze --size 30 --count 100 --path-length 100-140 --seed 2015 --no-path 0.5 \
   --exclude data/maze30.npz --exclude data/maze30-b.npz --exclude data/maze30-c.npz --text \
   --out data/maze30-nopath
O=docs/eval/maze-card-2026-12-05/cli
mkdir -p "$O"
cli() {  # NAME FILE [OPTIONS]: JSON records and the wall time of the whole file
  local name=$1; shift
  local t0; t0=$(date +%s.%N)
  $E maze "$@" -w "$M" --json > "$O/$name.jsonl" || true  # exit 1: some maze not solved
  echo "$name $(echo "$(date +%s.%N) - $t0" | bc) $*" >> "$O/times.txt"
}
cli bundle-15 data/maze15.txt
cli bundle-30b data/maze30-b.txt
cli bundle-30c data/maze30-c.txt
cli bundle-30b-D256B16 data/maze30-b.txt --depth 256 --breadth 16
cli bundle-15-D256B16 data/maze15.txt --depth 256 --breadth 16
cli bundle-45 data/maze45.txt
cli bundle-45-D128 data/maze45.txt --depth 128
cli bundle-15nopath-rejected data/maze15-nopath.txt
cli bundle-30nopath-rejected data/maze30-nopath.txt
.venv/bin/python docs/experiments/maze/cli_summary.py "$O" | tee "$O/summary.txt"

# 2026-12-05, later: the acceptance threshold q_accept, measured per maze size on tuning sets
# (half of each without a path; the test sets above stay out of the choice), replayed from one
# D64 B8 pass per set; bundled as 9:2,15:3,30:4 (docs/models.md, maze card)
$E data maze --size 9 --count 200 --path-length 3-24 --seed 2018 --no-path 0.5 \
   --out data/maze9-nopath-tune
$E data maze --size 15 --count 200 --path-length 5-88 --seed 2019 --no-path 0.5 \
   --exclude data/maze15.npz --exclude data/maze15-nopath.npz --out data/maze15-nopath-tune
$E data maze --size 30 --count 100 --path-length 100-140 --seed 2017 --no-path 0.5 \
   --exclude data/maze30.npz --exclude data/maze30-b.npz --exclude data/maze30-c.npz \
   --exclude data/maze30-nopath.npz --out data/maze30-nopath-tune
$E data maze --size 45 --count 50 --path-length 150-210 --seed 2016 --exclude data/maze45.npz \
   --out data/maze45-tune
.venv/bin/python docs/experiments/maze/q_accept.py --weights "$M" --depths 64 --breadth 8 \
   --out docs/eval/maze-q-accept data/maze9-nopath-tune.npz data/maze15-nopath-tune.npz \
   data/maze30-nopath-tune.npz data/maze30.npz data/maze45-tune.npz \
   | tee docs/eval/maze-q-accept/tables.md
O=docs/eval/maze-card-2026-12-05/cli-qaccept
mkdir -p "$O"
cli 15 data/maze15.txt
cli 15nopath data/maze15-nopath.txt
cli 30b data/maze30-b.txt
cli 30c data/maze30-c.txt
cli 30nopath data/maze30-nopath.txt
cli 45 data/maze45.txt
cli 30b-D256B16 data/maze30-b.txt --depth 256 --breadth 16
cli 15-D256B16 data/maze15.txt --depth 256 --breadth 16
cli 45-D256B16 data/maze45.txt --depth 256 --breadth 16
cli 60 data/maze60.txt
.venv/bin/python docs/experiments/maze/cli_summary.py "$O" | tee "$O/summary.txt"

# 2026-12-06: 45x45 takes its own q_accept, 5.0, the middle of the plateau (4.85-5.15: 56%
# against 42% at 30's 4.0) of a finer replay of the cached 45x45 tuning pass; re-bundled as
# 9:2,15:3,30:4,45:5, then the boards from 45x45 up through the command line again
.venv/bin/python docs/experiments/maze/q_accept.py --weights "$M" --depths 64 --breadth 8 \
   --out docs/eval/maze-q-accept data/maze45-tune.npz \
   --thresholds 4.0,4.5,4.6,4.7,4.75,4.8,4.85,4.9,4.95,5.0,5.05,5.1,5.15,5.2,5.25,5.5,6.0 \
   > docs/eval/maze-q-accept/tables-45.md
# the re-bundle, run once between the replay and the runs below (weights/maze.safetensors):
# .venv/bin/eqr-solve weights bundle train/runs/maze-cpu-deep15-slow/model.safetensors maze \
#    --tol 0.7 --q-accept 9:2,15:3,30:4,45:5 --eval docs/eval/maze-card-2026-12-04/maze-15x15/result.json \
#    --eval docs/eval/maze-card-2026-12-04/maze-30x30-b/result.json \
#    --eval docs/eval/maze-card-2026-12-05/maze-30x30-select/result.json
O=docs/eval/maze-card-2026-12-06/cli
mkdir -p "$O"
cli 45 data/maze45.txt
cli 45-D256B16 data/maze45.txt --depth 256 --breadth 16
cli 60 data/maze60.txt
.venv/bin/python docs/experiments/maze/cli_summary.py "$O" | tee "$O/summary.txt"

# 2026-12-06, later: escalation for boards from 45x45 on. A 45x45 maze none of whose 8 restarts
# settled (accepted) within D64 gets one more attempt of 16 restarts to D256 (stages(): 4x deeper,
# 2x broader; budget 64*8 + 256*16 = 4608 NFE), first with --budget given, then from the weights
# file after the re-bundle below, on a fresh 45x45 set
$E data maze --size 45 --count 100 --path-length 150-210 --seed 2021 --exclude data/maze45.npz \
   --exclude data/maze45-tune.npz --text --out data/maze45-b
O=docs/eval/maze-card-2026-12-06/cli-budget
mkdir -p "$O"
cli 45-budget4608 data/maze45.txt --budget 4608
# the re-bundle (weights/maze.safetensors; same tensors, budget added to the metadata):
# .venv/bin/eqr-solve weights bundle train/runs/maze-cpu-deep15-slow/model.safetensors maze \
#    --tol 0.7 --q-accept 9:2,15:3,30:4,45:5 --budget 30:0,45:4608 \
#    --eval docs/eval/maze-card-2026-12-04/maze-15x15/result.json \
#    --eval docs/eval/maze-card-2026-12-04/maze-30x30-b/result.json \
#    --eval docs/eval/maze-card-2026-12-05/maze-30x30-select/result.json
cli 45b data/maze45-b.txt
$E data maze --size 45 --count 20 --path-length 150-210 --seed 2022 --no-path 0.5 \
   --exclude data/maze45.npz --exclude data/maze45-tune.npz --exclude data/maze45-b.npz --text \
   --out data/maze45-nopath20
cli 45nopath20 data/maze45-nopath20.txt
.venv/bin/python docs/experiments/maze/cli_summary.py "$O" | tee "$O/summary.txt"
# 60x60 at the escalating defaults: the first 20 mazes of data/maze60 (a small sample; each maze
# takes about 46 s)
.venv/bin/python -c "
m = [x for x in open('data/maze60.txt').read().strip('\n').split('\n\n') if x.strip()]
open('data/maze60-first20.txt', 'w').write('\n\n'.join(m[:20]) + '\n')"
cli 60-first20 data/maze60-first20.txt
.venv/bin/python docs/experiments/maze/cli_summary.py "$O" | tee "$O/summary.txt"
