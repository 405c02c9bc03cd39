"""Times `cellshift.evaluate` (in memory) against `cellshift evaluate` (two .h5ad files) on the same data.

    .deps/py/bin/python crates/python/benchmarks/evaluate_time.py [--repeats 5] [--cells 200] [--genes 50]

The data: a SERGIO screen from `cellshift.simulate` (log-normalised), predicted by the context-mean
baseline; `real` = the screen, `pred` = control cells + the predicted cells of every perturbation. The
command line is timed as a user runs it (process start, reading both files, metrics, writing the JSON);
Python from the AnnData objects to the `Evaluation`. Prints the medians and checks the numbers agree.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import anndata

import cellshift

ROOT = Path(__file__).resolve().parents[3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cells", type=int, default=200, help="cells per condition")
    parser.add_argument("--genes", type=int, default=50)
    parser.add_argument("--metrics", default="mappfn,celleval")
    args = parser.parse_args()

    real = cellshift.simulate("sergio", seed=11, genes=args.genes, cells=args.cells, log_normalize=True,
                              progress=False)
    labels = [p for p in real.obs["perturbation"].cat.categories if p != "control"]
    predicted = cellshift.predict(real, queries=labels, method="context_mean", k=8, cells=args.cells,
                                  progress=False)
    control = real[real.obs["perturbation"] == "control"]
    pred = anndata.concat([control, predicted])
    pred.obs_names_make_unique()
    cli = ROOT / "target" / "release" / "cellshift"
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        real.write_h5ad(folder / "real.h5ad")
        pred.write_h5ad(folder / "pred.h5ad")
        cli_times, py_times = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            subprocess.run([str(cli), "evaluate", "--pred", str(folder / "pred.h5ad"), "--real",
                            str(folder / "real.h5ad"), "--metrics", args.metrics, "--json",
                            str(folder / "cli.json")], check=True, capture_output=True)
            cli_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            scores = cellshift.evaluate(pred, real, metrics=args.metrics, progress=False)
            py_times.append(time.perf_counter() - started)
        expected = json.loads((folder / "cli.json").read_text())
    worst = max(
        abs((scores.summary[k] if scores.summary[k] == scores.summary[k] else 0.0) - (v if v is not None else 0.0))
        for k, v in {**expected["mean"], **expected["global"]}.items()
        if not isinstance(v, list)
    )
    cli_median, py_median = statistics.median(cli_times), statistics.median(py_times)
    print(f"data: {real.n_obs} real cells, {pred.n_obs} predicted cells × {real.n_vars} genes, "
          f"{len(labels)} perturbations; metrics {args.metrics}; {args.repeats} repeats")
    print(f"CLI    `cellshift evaluate` (files): median {cli_median:.3f} s  (runs: "
          + ", ".join(f"{t:.3f}" for t in cli_times) + ")")
    print(f"Python cellshift.evaluate (memory):  median {py_median:.3f} s  (runs: "
          + ", ".join(f"{t:.3f}" for t in py_times) + ")")
    print(f"Python / CLI = {py_median / cli_median:.3f}; largest difference of a summary value: {worst:.1e}")


if __name__ == "__main__":
    main()
