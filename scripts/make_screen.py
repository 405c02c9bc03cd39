#!/usr/bin/env python3
"""Writes a synthetic CRISPR screen shaped like a real one, for scale benchmarks.

    python scripts/make_screen.py --cells 200000 --genes 2000 --perturbations 300 --out screen.h5ad
    python scripts/make_screen.py --cells 50000 --genes 500 --perturbations 300 --log1p --dense \
        --pair pred.h5ad real.h5ad          # a prediction/truth pair for `cellshift evaluate`

The counts: each gene has a share of the cell's counts (log-normal), each cell a total (log-normal around
0.055 counts per gene), each of the `--cell-types` cell types
(`obs['cell_type']`, 4 by default) its own rate profile, and each perturbation (`obs['perturbation']`, named after a
measured gene, plus `non-targeting` controls, 10 % of the cells) knocks its gene down to 5 % and moves 20
other genes by up to ±50 %. Counts are Poisson, about 5 % non-zero at the defaults, stored as CSR
(`--dense` stores a dense matrix, `--log1p` log-normalises to median total + natural log1p). With `--pair`
two files are written: the truth, and a "prediction" drawn from the same model with another seed and
perturbation effects shrunk by half. Seeded (`--seed`); needs numpy, scipy and anndata.
"""

import argparse

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp


def screen(cells, genes, perturbations, seed, effect_scale=1.0, layout_seed=None, types=4,
           counts_per_cell=None):
    """An AnnData of Poisson counts; `layout_seed` fixes genes, cell types and effects, `seed` the cells."""
    # About 5 % of the entries non-zero: a mean of 0.055 counts per gene and cell.
    counts_per_cell = 0.055 * genes if counts_per_cell is None else counts_per_cell
    layout = np.random.default_rng(seed if layout_seed is None else layout_seed)
    rng = np.random.default_rng(seed)
    gene_names = [f"G{g:05d}" for g in range(genes)]
    base = layout.lognormal(mean=0.0, sigma=1.2, size=genes)
    base /= base.sum()
    type_profile = layout.lognormal(mean=0.0, sigma=0.4, size=(types, genes))
    targets = layout.choice(genes, size=perturbations, replace=False)
    labels = np.array(["non-targeting"] + [gene_names[t] for t in targets])
    effects = np.ones((perturbations + 1, genes))
    for p, t in enumerate(targets, start=1):
        effects[p, t] = 0.05
        moved = layout.choice(genes, size=20, replace=False)
        effects[p, moved] *= 1.0 + effect_scale * layout.uniform(-0.5, 0.5, size=20)
    is_control = rng.random(cells) < 0.10
    pert = np.where(is_control, 0, rng.integers(1, perturbations + 1, size=cells))
    cell_type = rng.integers(0, types, size=cells)
    size = rng.lognormal(mean=np.log(counts_per_cell), sigma=0.3, size=cells)
    rows, cols, vals = [], [], []
    chunk = 20000
    for start in range(0, cells, chunk):
        stop = min(cells, start + chunk)
        rate = (size[start:stop, None] * base[None, :] * type_profile[cell_type[start:stop]]
                * effects[pert[start:stop]])
        counts = rng.poisson(rate).astype(np.float32)
        block = sp.csr_matrix(counts)
        coo = block.tocoo()
        rows.append(coo.row + start)
        cols.append(coo.col)
        vals.append(coo.data)
    x = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(cells, genes),
        dtype=np.float32,
    )
    obs = pd.DataFrame(
        {
            "perturbation": pd.Categorical(labels[pert]),
            "cell_type": pd.Categorical([f"type{t}" for t in cell_type]),
        },
        index=[f"cell{i}" for i in range(cells)],
    )
    return anndata.AnnData(X=x, obs=obs, var=pd.DataFrame(index=gene_names))


def log_normalise(adata):
    """Median-total normalisation then natural log1p, in place (CSR kept)."""
    totals = np.asarray(adata.X.sum(axis=1)).ravel()
    target = np.median(totals[totals > 0])
    scale = np.where(totals > 0, target / np.maximum(totals, 1e-12), 0.0)
    adata.X = sp.diags(scale.astype(np.float32)) @ adata.X
    adata.X.data = np.log1p(adata.X.data)


def finish(adata, args):
    if args.log1p:
        log_normalise(adata)
    if args.dense:
        adata.X = np.asarray(adata.X.todense(), dtype=np.float32)
    return adata


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=200000)
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--perturbations", type=int, default=300)
    parser.add_argument("--cell-types", type=int, default=4)
    parser.add_argument("--counts-per-cell", type=float, default=None,
                        help="mean total counts per cell (default 0.055 per gene: about 5 %% non-zero)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log1p", action="store_true")
    parser.add_argument("--dense", action="store_true")
    parser.add_argument("--out")
    parser.add_argument("--pair", nargs=2, metavar=("PRED", "REAL"))
    args = parser.parse_args()
    if (args.out is None) == (args.pair is None):
        parser.error("give --out FILE or --pair PRED REAL")
    if args.out:
        finish(screen(args.cells, args.genes, args.perturbations, args.seed, types=args.cell_types,
                      counts_per_cell=args.counts_per_cell), args).write_h5ad(
            args.out
        )
        return
    pred_path, real_path = args.pair
    real = screen(args.cells, args.genes, args.perturbations, args.seed, types=args.cell_types,
                  counts_per_cell=args.counts_per_cell)
    pred = screen(args.cells, args.genes, args.perturbations, args.seed + 1, effect_scale=0.5,
                  layout_seed=args.seed, types=args.cell_types, counts_per_cell=args.counts_per_cell)
    finish(real, args).write_h5ad(real_path)
    finish(pred, args).write_h5ad(pred_path)


if __name__ == "__main__":
    main()
