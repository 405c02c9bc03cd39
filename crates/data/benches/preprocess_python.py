"""scanpy timings of the steps in benches/preprocess.rs on the Papalexi THP-1 subset (median of N runs after
one warm-up). Run from the repository root: python3 crates/data/benches/preprocess_python.py
"""

import sys
import time
import warnings
from pathlib import Path

warnings.simplefilter("ignore")

import anndata as ad  # noqa: E402
import numpy as np  # noqa: E402
import scanpy as sc  # noqa: E402

PATH = Path(__file__).resolve().parents[3].parent / "shared/data/papalexi2021/thp1_subset.h5ad"


def median_seconds(runs, f):
    f()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return sorted(times)[runs // 2]


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    adata = ad.read_h5ad(PATH)
    print(f"data: {adata.n_obs} cells × {adata.n_vars} genes (CSR); runs: {runs} (median)")

    def norm_log():
        a = adata.copy()
        sc.pp.normalize_total(a)
        sc.pp.log1p(a)

    print(f"normalize_total + log1p:            {1e3 * median_seconds(runs, norm_log):8.1f} ms")

    def hvg():
        sc.pp.highly_variable_genes(adata, flavor="seurat_v3", n_top_genes=50, inplace=False)

    print(f"seurat_v3 HVG (top 50):             {1e3 * median_seconds(runs, hvg):8.1f} ms")

    a = adata.copy()
    sc.pp.normalize_total(a)
    sc.pp.log1p(a)
    keep = a.obs["perturbation"].astype(str).to_numpy()

    def ttest():
        b = a.copy()
        b.obs["t"] = keep
        b.obs["t"] = b.obs["t"].astype("category")
        sc.tl.rank_genes_groups(b, groupby="t", reference="non-targeting", method="t-test",
                                n_genes=b.n_vars, rankby_abs=True)
        df = sc.get.rank_genes_groups_df(b, group=None)
        df.groupby("names")["scores"].max().nlargest(59)

    print(f"t-test + gene scores (all groups):  {1e3 * median_seconds(runs, ttest):8.1f} ms")

    dense = a.X.toarray()

    def pb():
        for t in np.unique(keep):
            dense[keep == t].mean(axis=0)

    print(f"pseudo-bulk means (all conditions): {1e3 * median_seconds(runs, pb):8.1f} ms")


if __name__ == "__main__":
    main()
