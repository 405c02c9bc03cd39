#!/usr/bin/env bash
# In-prior validation of the SERGIO-prior checkpoint (BENCHMARKS.md, issue 6): new regulatory networks drawn
# from seeds outside the training seed space, simulated with cellshift's SERGIO, scored with the hold-out
# protocol (half of each network's 50 knock-outs are context experiments, the other 25 are queried), K = 8,
# mean ± std over resampling seeds, next to the baselines.
#
#   bash scripts/bench_sergio_prior.sh            # uses the shipped checkpoint
#   MODEL=runs/my-run bash scripts/bench_sergio_prior.sh
set -euo pipefail
cd "$(dirname "$0")/.."
B=${CELLSHIFT:-target/release/cellshift}
MODEL=${MODEL:-checkpoints/mappfn-sergio-small}
OUT=${OUT:-bench-out/sergio-prior}
CONTEXTS=${CONTEXTS:-3}
CELLS=${CELLS:-100}
SEEDS=${SEEDS:-3}
SOLVER=${SOLVER:-"--solver dopri5 --rtol 1e-3 --atol 1e-3"}
THREADS=${THREADS:-2}
mkdir -p "$OUT"
# Twice the cells of a set per condition, so the oracle's independent resample is possible.
# Each network is normalised on its own (median total + log1p), as the prior normalises each training network.
"$B" simulate --prior sergio --contexts "$CONTEXTS" --seed 1000 --cells $((2 * CELLS)) --log-normalize \
  --out "$OUT/heldout_grns.h5ad"
COMMON=(--data "$OUT/heldout_grns.h5ad" --split holdout --cells "$CELLS" --metrics mappfn --seeds "$SEEDS" --k 8)
for baseline in control context_mean linear oracle; do
  "$B" bench --baseline "$baseline" "${COMMON[@]}" --json "$OUT/$baseline.json"
done
# shellcheck disable=SC2086
time "$B" bench --model "$MODEL" "${COMMON[@]}" $SOLVER --threads "$THREADS" --json "$OUT/mappfn.json"
