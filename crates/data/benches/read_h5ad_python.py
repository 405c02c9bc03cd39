"""Python reference timing for benches/read_h5ad.rs: `anndata.read_h5ad` on the Papalexi THP-1 subset,
median of N runs after one warm-up read; also read + densify X (what `read_perturbation_data` returns).

Run: python3 crates/data/benches/read_h5ad_python.py [runs]   (default 9)
"""

import importlib.metadata as md
import statistics
import sys
import time
from pathlib import Path

import anndata as ad
import h5py

PATH = Path(__file__).resolve().parents[4] / "shared/data/papalexi2021/thp1_subset.h5ad"


def median_ms(runs, f):
    f()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3, [round(x * 1e3, 1) for x in times]


def main():
    runs = max(5, int(sys.argv[1]) if len(sys.argv) > 1 else 9)
    print(f"file: {PATH}")
    print(f"anndata {md.version('anndata')}, h5py {h5py.__version__} (HDF5 {h5py.version.hdf5_version}), "
          f"python {sys.version.split()[0]}; runs: {runs} (median reported)")
    m, all_ = median_ms(runs, lambda: ad.read_h5ad(PATH))
    print(f"anndata.read_h5ad (sparse X):          median {m:.1f} ms  (runs: {all_} ms)")

    def dense():
        a = ad.read_h5ad(PATH)
        x = a.X.toarray()
        labels = a.obs["perturbation"].astype(str).to_numpy()
        return x, labels

    m, all_ = median_ms(runs, dense)
    print(f"anndata.read_h5ad + X.toarray():       median {m:.1f} ms  (runs: {all_} ms)")


if __name__ == "__main__":
    main()
