#!/usr/bin/env bash
# Installs what cellshift needs on a fresh Debian/Ubuntu machine, builds it, and runs the main job.
#
#   bash scripts/setup.sh            # install + build + `cellshift demo`
#   bash scripts/setup.sh --no-demo  # install + build only (used by CI)
#
# What it installs, and where:
#   * system packages: libhdf5-dev, pkg-config, unzip, fontconfig/freetype and a font for plots
#     (apt-get; sudo is used when not root);
#   * libtorch 2.11.0 (the version `tch` 0.24 expects), taken from the PyPI `torch` wheel without its
#     multi-GB CUDA dependencies, plus the two small CUDA runtime wheels libtorch_cpu.so links against,
#     unpacked into `.deps/libtorch` inside this checkout (ignored by git). `.cargo/config.toml` points
#     `LIBTORCH` there and the binaries find it through their rpath, so no environment variable is needed;
#   * the Python package `cellshift` (crates/python, built with maturin from the same release build) into
#     the virtualenv `.deps/py`, with numpy, scipy, pandas, anndata, tqdm and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN_DEMO=1
[ "${1:-}" = "--no-demo" ] && RUN_DEMO=0

TORCH_VERSION=2.11.0
CUDART_VERSION=13.0.96
CUPTI_VERSION=13.0.85
LIBTORCH_DIR="$ROOT/.deps/libtorch"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
dpkg -s libhdf5-dev >/dev/null 2>&1 || missing+=(libhdf5-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v unzip >/dev/null 2>&1 || missing+=(unzip)
dpkg -s libfontconfig1-dev >/dev/null 2>&1 || missing+=(libfontconfig1-dev)
dpkg -s libfreetype-dev >/dev/null 2>&1 || missing+=(libfreetype-dev)
dpkg -s fonts-dejavu-core >/dev/null 2>&1 || missing+=(fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing system packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -f "$LIBTORCH_DIR/torch/lib/libtorch_cpu.so" ] || [ "$(cat "$LIBTORCH_DIR/VERSION" 2>/dev/null)" != "$TORCH_VERSION" ]; then
  echo "[setup] fetching libtorch $TORCH_VERSION from the PyPI torch wheel (CPU libraries only)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_25_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$tmp" \
    "torch==$TORCH_VERSION" "nvidia-cuda-runtime==$CUDART_VERSION" "nvidia-cuda-cupti==$CUPTI_VERSION"
  rm -rf "$LIBTORCH_DIR.partial"
  mkdir -p "$LIBTORCH_DIR.partial"
  (cd "$LIBTORCH_DIR.partial" &&
    unzip -q "$tmp"/torch-*.whl 'torch/lib/*' 'torch/include/*' 'torch/share/*' 'torch/version.py' &&
    for w in "$tmp"/nvidia_cuda_runtime-*.whl "$tmp"/nvidia_cuda_cupti-*.whl; do unzip -q -o "$w" 'nvidia/*'; done)
  echo "$TORCH_VERSION" > "$LIBTORCH_DIR.partial/VERSION"
  rm -rf "$LIBTORCH_DIR"
  mv "$LIBTORCH_DIR.partial" "$LIBTORCH_DIR"
fi

# The virtualenv of the Python package, made first: the build below compiles for its interpreter.
PY_VENV="$ROOT/.deps/py"
PY="$PY_VENV/bin/python"
[ -x "$PY" ] || python3 -m venv "$PY_VENV"
if ! "$PY" -c "import maturin, numpy, scipy, pandas, anndata, tqdm, pytest" 2>/dev/null; then
  echo "[setup] installing the Python package's dependencies into .deps/py"
  "$PY" -m pip install -q "maturin>=1.7,<2" numpy scipy pandas anndata tqdm pytest
fi

# One build of the command line and the Python extension module: their shared dependencies are compiled
# once, with one set of features (crates/python/Cargo.toml aligns them), and the PyO3 variables are the
# ones maturin sets, so `maturin develop` below compiles only the extension module itself.
export VIRTUAL_ENV="$PY_VENV" PYO3_PYTHON="$PY" PYTHON_SYS_EXECUTABLE="$PY"
PYO3_ENVIRONMENT_SIGNATURE=$("$PY" -c 'import platform, sys; print(f"{platform.python_implementation().lower()}-{sys.version_info[0]}.{sys.version_info[1]}-64bit")')
export PYO3_ENVIRONMENT_SIGNATURE
echo "[setup] building cellshift and its Python extension module (release)"
PATH="$PY_VENV/bin:$PATH" cargo build --release --locked -p cellshift -p cellshift-python
echo "[setup] installing the Python package cellshift into .deps/py"
PATH="$PY_VENV/bin:$PATH" "$PY_VENV/bin/maturin" develop --release --locked -m crates/python/Cargo.toml -q
if [ "$RUN_DEMO" = 1 ]; then
  echo "[setup] running the main job: cellshift demo"
  "$ROOT/target/release/cellshift" demo
fi
