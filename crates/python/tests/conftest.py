"""Shared fixtures: small screens made by the package itself, and the command line to compare with."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import cellshift

ROOT = Path(__file__).resolve().parents[3]
CLI = ROOT / "target" / "release" / "cellshift"


@pytest.fixture(scope="session")
def cli():
    """Runs the `cellshift` binary built by scripts/setup.sh; returns its stdout, fails on an error."""
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing; build it with `bash scripts/setup.sh` first")

    def run(*args: str) -> str:
        done = subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True)
        assert done.returncode == 0, f"cellshift {' '.join(map(str, args))} failed: {done.stderr}"
        return done.stdout

    return run


@pytest.fixture(scope="session")
def raw_screen():
    """A small raw-count SERGIO screen: 20 genes, every gene knocked out, 60 cells per condition."""
    return cellshift.simulate("sergio", seed=3, genes=20, cells=60, progress=False)


@pytest.fixture(scope="session")
def log_screen():
    """A log-normalised 50-gene SERGIO screen (the bundled model's width), 40 cells per condition."""
    return cellshift.simulate("sergio", seed=5, cells=40, log_normalize=True, progress=False)


@pytest.fixture(scope="session")
def prediction(raw_screen):
    """(pred, real): real = the log-normalised screen, pred = real plus seeded noise on perturbed cells."""
    real = cellshift.preprocess(raw_screen, progress=False)
    pred = real.copy()
    pred.obs_names = [f"p{i}" for i in range(pred.n_obs)]
    rng = np.random.default_rng(0)
    perturbed = (pred.obs["perturbation"] != "control").to_numpy()
    noise = rng.normal(0.0, 0.3, size=(int(perturbed.sum()), pred.n_vars)).astype(np.float32)
    pred.X[perturbed] = np.maximum(pred.X[perturbed] + noise, 0.0)
    return pred, real


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def same_number(a, b, tol: float = 1e-9) -> bool:
    """Equal to `tol`, with None/NaN equal to None/NaN."""
    a = float("nan") if a is None else a
    b = float("nan") if b is None else b
    if isinstance(a, list) or isinstance(b, list):
        return a == b
    if np.isnan(a) and np.isnan(b):
        return True
    return abs(a - b) <= tol


def require_shared() -> bool:
    return os.environ.get("CELLSHIFT_REQUIRE_SHARED") == "1"
