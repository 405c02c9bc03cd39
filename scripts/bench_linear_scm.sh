#!/usr/bin/env bash
# Reproduces the linear-SCM benchmark of BENCHMARKS.md (the MapPFN paper's Table 2 at CPU scale) and the
# context-size curve: held-out SCMs that no training task used, scored with the hold-out protocol (half of
# each SCM's 20 interventions are context experiments, the other 10 are queried), mean ± std over seeds.
#
#   bash scripts/bench_linear_scm.sh            # uses the shipped checkpoint
#   MODEL=runs/my-run bash scripts/bench_linear_scm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
B=${CELLSHIFT:-target/release/cellshift}
MODEL=${MODEL:-checkpoints/mappfn-linear-small}
OUT=${OUT:-bench-out/linear-scm}
CONTEXTS=${CONTEXTS:-5}
CELLS=${CELLS:-100}
SEEDS=${SEEDS:-3}
SOLVER=${SOLVER:-"--solver dopri5 --rtol 1e-3 --atol 1e-3"}
THREADS=${THREADS:-2}
mkdir -p "$OUT"
# Seeds 1000.. are outside the training seed space (training SCMs use 63-bit hashed seeds).
"$B" simulate --prior linear --contexts "$CONTEXTS" --seed 1000 --out "$OUT/heldout_scms.h5ad"
COMMON=(--data "$OUT/heldout_scms.h5ad" --split holdout --cells "$CELLS" --metrics mappfn)
for baseline in control oracle perturbation_mean context_mean; do
  "$B" bench --baseline "$baseline" "${COMMON[@]}" --seeds "$SEEDS" --k 8 --json "$OUT/$baseline.json"
done
# shellcheck disable=SC2086
time "$B" bench --model "$MODEL" "${COMMON[@]}" --seeds "$SEEDS" --k 8 $SOLVER --threads "$THREADS" \
  --json "$OUT/mappfn.json"
# shellcheck disable=SC2086
time "$B" bench --model "$MODEL" "${COMMON[@]}" --seeds 1 --k-curve 0,1,2,4,8 $SOLVER --threads "$THREADS" \
  --json "$OUT/kcurve.json" --plot "$OUT/kcurve.png"
