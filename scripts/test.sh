#!/usr/bin/env bash
# Runs cellshift's test suite (release profile, so it reuses the build made by scripts/setup.sh).
# Tests that need ../shared (golden files, the Papalexi data) or Python anndata skip with a message
# when those are absent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f .deps/libtorch/torch/lib/libtorch_cpu.so ]; then
  echo "libtorch is not installed in .deps/libtorch; run 'bash scripts/setup.sh' first" >&2
  exit 2
fi
cargo test --release --locked --workspace "$@"
