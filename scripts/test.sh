#!/usr/bin/env bash
# Runs cellshift's test suite (release profile, so it reuses the build made by scripts/setup.sh): the
# Rust tests, then the Python package's tests (pytest in .deps/py, made by scripts/setup.sh).
# Tests that need ../shared (golden files, the Papalexi data) or Python anndata skip with a message
# when those are absent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f .deps/libtorch/torch/lib/libtorch_cpu.so ]; then
  echo "libtorch is not installed in .deps/libtorch; run 'bash scripts/setup.sh' first" >&2
  exit 2
fi
if [ ! -x .deps/py/bin/python ]; then
  echo "the Python virtualenv .deps/py is missing; run 'bash scripts/setup.sh' first" >&2
  exit 2
fi
# The h5ad round-trip tests use the virtualenv's anndata unless another Python is named.
export CELLSHIFT_PYTHON="${CELLSHIFT_PYTHON:-$PWD/.deps/py/bin/python}"
# The extension module (crates/python) links against the interpreter: it is tested by pytest below.
cargo test --release --locked --workspace --exclude cellshift-python "$@"
echo "[test] the Python package (pytest)"
.deps/py/bin/python -m pytest -q crates/python/tests
