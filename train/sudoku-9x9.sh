#!/usr/bin/env bash
# The bundled sudoku-9x9 end to end (docs/models.md, `sudoku-9x9` card; 8.8 h of CPU on
# 2 cores): the recipe sudoku-9x9-cpu to step 14,112 (the bundle until 2026-12-07; trained
# in fp32 then), the same run resumed to step 30,000 (bf16 on a CPU with AMX), and the
# weights of the two steps mixed, 0.3·step 14,112 + 0.7·step 30,000 (alpha chosen on sets
# that are not test material: docs/eval/sudoku-9x9-mix/summary.md). Run it again after an
# interruption: each stage resumes where it stopped.
#   R=runs/sudoku-9x9 bash train/sudoku-9x9.sh
set -euo pipefail
E=".venv/bin/eqr-solve"
R=${R:-runs/sudoku-9x9}
step() { .venv/bin/python -c "import sys; from eqr_solve import weights
print(weights.read_info(weights.resolve(sys.argv[1])).meta.get('step', 0))" "$1"; }
if [ ! -f "$R/step14112.safetensors" ]; then
  if [ -f "$R/state.pt" ]; then $E train sudoku --out "$R" --resume
  else $E train sudoku --recipe sudoku-9x9-cpu --out "$R" --set train.max_steps=14112; fi
  [ "$(step "$R/model.safetensors")" = 14112 ] || { echo "stopped before step 14,112: run again" >&2; exit 1; }
  cp "$R/model.safetensors" "$R/step14112.safetensors"
fi
$E train sudoku --out "$R" --resume --set train.max_steps=30000
[ "$(step "$R/model.safetensors")" = 30000 ] || { echo "stopped before step 30,000: run again" >&2; exit 1; }
$E weights mix "$R/step14112.safetensors" "$R/model.safetensors" "$R/mix.safetensors" --alpha 0.7
echo "bundle with: $E weights bundle $R/mix.safetensors sudoku-9x9 --q-accept 2"
