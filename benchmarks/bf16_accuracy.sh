#!/usr/bin/env bash
# bf16 vs fp32 accuracy of the bundled models (docs/performance.md, "bf16 accuracy"): the CLI
# defaults' eval (one ACT pass of 8 restarts, whose "retry" column is --retries 7) and long
# trajectories with residual halting (where the run stops), each in fp32, bf16, and bf16 with
# fp32 latents (DTYPES="fp32 bf16" leaves out the last).
# Usage: bash benchmarks/bf16_accuracy.sh [sudoku-9x9|maze|maze-card|small]
set -euo pipefail
E=".venv/bin/eqr-solve"
O=${O:-docs/eval/bf16}  # another folder: O=DIR bash ... (the bundled models are evaluated)
mkdir -p "$O"
run() {  # name, then eval arguments
  local name=$1; shift
  for dt in ${DTYPES:-fp32 bf16 bf16-fp32lat}; do
    extra=(--dtype "${dt%%-*}"); [ "$dt" = bf16-fp32lat ] && extra+=(--fp32-latents)
    $E eval "$@" "${extra[@]}" --out "$O/$name-$dt" > "$O/$name-$dt.txt"
  done
}
case "${1:-sudoku-9x9}" in
  sudoku-9x9)
    run 9x9-17clue-defaults sudoku -w sudoku-9x9 --data shared:puzzles2_17_clue.txt --limit 200 \
        --depth 16 --breadth 1,8 --halt act
    run 9x9-minimal-long sudoku -w sudoku-9x9 --data data/sudoku9-minimal.npz --limit 100 \
        --depth 16,64,256 --breadth 1 --halt residual --tol 0.05 ;;
  maze)  # its data: train/eval-maze.sh
    run maze15-defaults maze -w maze --data data/maze15.npz --limit 200 --depth 64 \
        --breadth 1,8 --halt residual --tol 0.3
    run maze30-long maze -w maze --data data/maze30.npz --limit 20 --depth 64,256 \
        --breadth 1 --halt residual --tol 0.3 ;;
  maze-card)  # the 2026-12-05 bundle at its own tol and q_accept: the defaults are the D64 B8
    # "race q" column (30x30 with a path; 15x15, half without one)
    run maze30b-card maze -w maze --data data/maze30-b.npz --limit 100 --depth 64 --breadth 8 \
        --halt residual
    run maze15nopath-card maze -w maze --data data/maze15-nopath.npz --limit 200 --depth 64 \
        --breadth 8 --halt residual ;;
  small)  # the 4x4 and 6x6 models, on the minimal puzzles of train/eval-bundled.sh
    for n in 4 6; do
      run ${n}x${n}-minimal-defaults sudoku -w sudoku-${n}x${n} --data data/sudoku${n}-minimal.npz \
          --limit 200 --depth 16 --breadth 1,8 --halt act
    done ;;
esac
