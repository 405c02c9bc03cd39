"""Long calls release the GIL, report progress and stop on Ctrl-C; libtorch coexists with `torch`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import textwrap
import threading
import time
from pathlib import Path

import pytest

import cellshift


@pytest.fixture(scope="module")
def contexts_screen():
    return cellshift.preprocess(cellshift.simulate(suite="multi-context", seed=0, progress=False), progress=False)


def _worker_threads() -> int:
    """Worker threads of long calls still running in this process."""
    return cellshift._core.running_workers()


def test_long_calls_release_the_gil_and_report_progress(contexts_screen):
    reports = []
    fit = threading.Thread(
        target=lambda: reports.append(
            cellshift.fit("c3tl", contexts_screen, steps=150, progress=lambda d, t, s: reports.append(d))
        )
    )
    ticks = 0
    fit.start()
    while fit.is_alive():
        ticks += 1
        time.sleep(0.002)
    assert isinstance(reports[-1], cellshift.Model), "the fit did not finish"
    steps = [r for r in reports if isinstance(r, int)]
    assert steps and steps == sorted(steps) and steps[-1] >= 1
    assert ticks > 20, f"the main thread ran only {ticks} times during the fit: the GIL was held"


def test_ctrl_c_interrupts_a_long_fit_cleanly(contexts_screen):
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        # No early stop: the fit must still be running when the interrupt comes.
        cellshift.fit(
            "c3tl",
            contexts_screen,
            steps=10_000_000,
            model_options=["patience=10000000"],
            progress=False,
        )
    assert time.monotonic() - started < 10
    deadline = time.monotonic() + 10
    while _worker_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _worker_threads() == 0, "the interrupted worker kept running"
    model = cellshift.fit("context_mean", contexts_screen, progress=False)
    assert model.method == "context_mean"


def test_a_different_torch_version_is_refused(tmp_path):
    fake = tmp_path / "torch-1.0.0.dist-info"
    fake.mkdir()
    (fake / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 1.0.0\n")
    done = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import cellshift"],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "ImportError" in done.stderr
    assert "torch 1.0.0" in done.stderr and "libtorch 2.11.0" in done.stderr


def _torch_python() -> str | None:
    """A Python with torch 2.11.0: $CELLSHIFT_TORCH_PYTHON, or this one when it has torch."""
    given = os.environ.get("CELLSHIFT_TORCH_PYTHON")
    if given:
        return given
    if cellshift._libtorch.installed_torch_version() is not None:
        return sys.executable
    return None


SCRIPT = """
import sys
sys.path += {paths!r}
{first}
{second}
screen = cellshift.simulate("sergio", seed=5, cells=20, log_normalize=True, progress=False)
pred = cellshift.predict(screen, queries=["GENE0003"], k=4, cells=10, progress=False)
total = float(torch.ones(3).sum())
maps = {{line.split()[-1] for line in open("/proc/self/maps") if line.rstrip().endswith("libtorch_cpu.so")}}
print(pred.shape, total, len(maps), torch.__version__, cellshift.LIBTORCH_SOURCE)
"""


@pytest.mark.parametrize("order", ["torch first", "cellshift first"])
def test_coexists_with_torch_in_both_import_orders(order):
    python = _torch_python()
    if python is None:
        pytest.skip("torch is not installed here (set CELLSHIFT_TORCH_PYTHON to a Python with torch 2.11.0)")
    package_parent = str(Path(cellshift.__file__).resolve().parents[1])
    paths = [package_parent, sysconfig.get_paths()["purelib"]]
    lines = ["import torch", "import cellshift"]
    if order == "cellshift first":
        lines.reverse()
    script = SCRIPT.format(paths=paths, first=lines[0], second=lines[1])
    done = subprocess.run([python, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()
    assert words[:2] == ["(10,", "50)"], done.stdout  # predicted cells × genes
    assert words[2] == "3.0", done.stdout  # torch computes
    assert words[3] == "1", done.stdout  # one libtorch_cpu.so mapped in the process
