"""The package builds as a wheel (`maturin build`) that installs and imports in a plain virtualenv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_wheel_installs_and_works_in_a_fresh_virtualenv(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [str(Path(sys.executable).parent / "maturin"), "build", "--release", "--locked", "-q",
         "-m", str(ROOT / "crates" / "python" / "Cargo.toml"), "-o", str(wheels)],
        check=True, cwd=ROOT, capture_output=True,
    )
    (wheel,) = wheels.glob("cellshift-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True)
    script = (
        "import cellshift; "
        "a = cellshift.simulate('linear', seed=1, genes=5, cells=20, progress=False); "
        "print(cellshift.__file__, a.shape)"
    )
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(python), "-c", script], capture_output=True, text=True, cwd=tmp_path,
                          env=environment)
    assert done.returncode == 0, done.stderr
    location, shape = done.stdout.split(" ", 1)
    assert str(venv) in location, "imported another copy of cellshift"
    assert shape.strip() == "(120, 5)"
