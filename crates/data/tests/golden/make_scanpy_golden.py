"""Reference values for cellshift-data's preprocessing, panel, split and LOESS tests.

Run from the repository root with the oracle venv:

    python3 crates/data/tests/golden/make_scanpy_golden.py

Reads ../shared/data/papalexi2021/thp1_subset.h5ad (never copied into the repository) and writes the small
JSON file crates/data/tests/golden/scanpy_papalexi.json next to this script. Library versions are recorded in
the JSON. Everything here restates the published algorithms through the libraries' public APIs:

* scanpy 1.11 `normalize_total` (median of per-cell totals) and `log1p` (natural and base 2);
* scanpy `highly_variable_genes(flavor="seurat_v3")` on raw counts, and the skmisc LOESS fit it uses;
* the MapPFN real-data recipe (spec mappfn.md §7): treatments with >= 200 cells, normalize_total + log1p,
  condition-level split (§1.3, sklearn `train_test_split`, seed 42), scanpy `rank_genes_groups(method="t-test",
  reference=control, rankby_abs=True)` on train+control cells, gene score = max over groups of the (float32)
  t-statistic, panel = sorted measured targets then the highest-scoring other genes up to 50;
* pseudo-bulk means per condition;
* sklearn `train_test_split` splits of synthetic condition tables (plain and stratified) and numpy
  `RandomState` permutations, so that the Rust emulation can be checked exactly;
* a synthetic LOESS problem (inputs stored in the JSON, they are made up here).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

warnings.simplefilter("ignore")

import anndata as ad  # noqa: E402
import scanpy as sc  # noqa: E402
from skmisc.loess import loess  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[3]
DATA = REPO.parent / "shared" / "data" / "papalexi2021" / "thp1_subset.h5ad"
OUT = HERE / "scanpy_papalexi.json"

CONTROL = "non-targeting"
SEED = 42


def f(x) -> float:
    """A JSON-safe float (repr round-trips f64 exactly)."""
    return float(x)


def assign_split(conds: list[tuple[str, str]], contexts_ntreat: dict[str, int], seed: int,
                 val_share: float = 0.1, test_share: float = 0.5) -> dict[tuple[str, str], str]:
    """MapPFN §1.3 condition split over non-control conditions given in first-appearance order.

    `contexts_ntreat` = number of distinct treatment values per context (control included, as pandas
    `nunique` counts it). Returns role per condition: test / test_other / train / val.
    """
    ctxs = sorted(contexts_ntreat)
    best = max(contexts_ntreat[c] for c in ctxs)
    holdout = next(c for c in ctxs if contexts_ntreat[c] == best)
    holdout_cond = [c for c in conds if c[0] == holdout]
    other_cond = [c for c in conds if c[0] != holdout]
    roles: dict[tuple[str, str], str] = {}
    h = pd.Series(holdout_cond, dtype=object)
    rest, test = train_test_split(h, test_size=test_share, random_state=seed)
    for c in test:
        roles[c] = "test"
    if other_cond:
        u = pd.Series(other_cond, dtype=object)
        strat = u.apply(lambda x: x[0])
        tr, va = train_test_split(u, test_size=val_share, random_state=seed, stratify=strat)
        for c in tr:
            roles[c] = "train"
        for c in va:
            roles[c] = "val"
        for c in rest:
            roles[c] = "test_other"
    else:
        tr, va = train_test_split(rest, test_size=val_share, random_state=seed)
        for c in tr:
            roles[c] = "train"
        for c in va:
            roles[c] = "val"
    return {"holdout": holdout, "roles": roles}


def normalization_section(adata: ad.AnnData) -> dict:
    x = adata.X.copy()
    totals = np.asarray(x.sum(axis=1)).ravel()
    norm = sc.pp.normalize_total(adata, inplace=False)["X"]
    logn = norm.copy()
    logn.data = np.log1p(logn.data)
    ad_log = ad.AnnData(logn.copy())
    sc.pp.log1p(ad_log)  # double check: scanpy log1p on normalized data equals np.log1p
    ad_norm = ad.AnnData(norm.copy())
    sc.pp.log1p(ad_norm)
    assert np.array_equal(ad_norm.X.data, logn.data)
    ad_log2 = ad.AnnData(norm.copy())
    sc.pp.log1p(ad_log2, base=2)
    norm_1e4 = sc.pp.normalize_total(adata, target_sum=1e4, inplace=False)["X"]
    dense_log = ad_norm.X.toarray()
    dense_log2 = ad_log2.X.toarray()
    dense_1e4 = norm_1e4.toarray()
    # a few fixed entries, spread over the matrix, zeros included
    rng = np.random.RandomState(7)
    cells = rng.randint(0, adata.n_obs, size=12)
    genes = rng.randint(0, adata.n_vars, size=12)
    nz = np.argwhere(dense_log > 0)
    pick = nz[rng.randint(0, len(nz), size=12)]
    entries = [(int(c), int(g)) for c, g in zip(cells, genes)] + [(int(c), int(g)) for c, g in pick]
    d64 = dense_log.astype(np.float64)
    return {
        "n_cells": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "median_total": f(np.median(totals)),
        "totals_first10": [f(t) for t in totals[:10]],
        "log1p_sum": f(d64.sum()),
        "log1p_sum_sq": f((d64 * d64).sum()),
        "log1p_row_sums_first5": [f(s) for s in d64[:5].sum(axis=1)],
        "entries": [
            {"cell": c, "gene": g, "log1p": f(dense_log[c, g]), "log2": f(dense_log2[c, g]),
             "norm_1e4": f(dense_1e4[c, g])}
            for c, g in entries
        ],
    }


def hvg_section(adata: ad.AnnData) -> dict:
    out = {}
    for n_top in (50, 100):
        df = sc.pp.highly_variable_genes(adata, flavor="seurat_v3", n_top_genes=n_top, inplace=False)
        ranked = df[df["highly_variable"]].sort_values("highly_variable_rank")
        out[f"top{n_top}"] = ranked.index.tolist()
        if n_top == 50:
            out["variances_norm"] = [f(v) for v in df["variances_norm"].to_numpy()]
            out["means_first20"] = [f(v) for v in df["means"].to_numpy()[:20]]
            out["variances_first20"] = [f(v) for v in df["variances"].to_numpy()[:20]]
            means = df["means"].to_numpy()
            variances = df["variances"].to_numpy()
    # The LOESS fit seurat_v3 uses (same call as scanpy: span 0.3, degree 2, skmisc defaults).
    not_const = variances > 0
    x = np.log10(means[not_const])
    y = np.log10(variances[not_const])
    model = loess(x, y, span=0.3, degree=2)
    model.fit()
    fitted = np.full(len(means), np.nan)
    fitted[not_const] = model.outputs.fitted_values
    out["loess_fitted"] = [None if np.isnan(v) else f(v) for v in fitted]
    return out


def mappfn_section(adata: ad.AnnData) -> dict:
    a = adata.copy()
    a.obs["context"] = a.obs["cell_line"].astype(str)
    a.obs["treatment"] = a.obs["perturbation"].astype(str)
    treatments_all = sorted(set(a.obs["treatment"]) - {CONTROL})
    required = sorted(t for t in treatments_all if t in a.var_names)
    counts = a.obs["treatment"].value_counts()
    keep = counts[counts >= 200].index
    a = a[a.obs["treatment"].isin(keep)].copy()
    sc.pp.normalize_total(a)
    sc.pp.log1p(a)
    # conditions in first-appearance order (pandas drop_duplicates on the cell table)
    cond = list(zip(a.obs["context"], a.obs["treatment"]))
    seen, order = set(), []
    for c in cond:
        if c[1] != CONTROL and c not in seen:
            seen.add(c)
            order.append(c)
    ntreat = a.obs.groupby("context", observed=True)["treatment"].nunique().to_dict()
    split = assign_split(order, ntreat, SEED)
    roles = split["roles"]
    role_of_cell = np.array([
        "control" if c[1] == CONTROL else roles[c] for c in cond
    ])
    train = a[np.isin(role_of_cell, ["train", "control"])].copy()
    train.obs["treatment"] = train.obs["treatment"].astype("category")
    sc.tl.rank_genes_groups(train, groupby="treatment", reference=CONTROL, method="t-test",
                            n_genes=train.n_vars, rankby_abs=True)
    df = sc.get.rank_genes_groups_df(train, group=None)
    scores = df.groupby("names")["scores"].max()
    n_top = 50
    selected = list(required)
    top = scores.nlargest(n_top + len(selected)).index
    selected += [g for g in top if g not in set(required)][: n_top - len(selected)]
    # t statistics of a few (group, gene) pairs
    pairs = []
    for grp in ("STAT1", "JAK2", "IFNGR1", "CD86"):
        sub = df[df["group"] == grp].set_index("names")
        if len(sub) == 0:
            continue
        for gene in ("STAT1", "JAK2", "PSMB9", "FN1", a.var_names[0]):
            pairs.append({"group": grp, "gene": gene, "t": f(sub.loc[gene, "scores"])})
    # pseudo-bulk means of the normalised log data
    dense = a.X.toarray().astype(np.float64)
    pb = []
    for t in (CONTROL, "STAT1", "JAK2", "IFNGR2", "CUL3"):
        m = (a.obs["treatment"] == t).to_numpy()
        genes = ["STAT1", "JAK2", "PSMB9", a.var_names[5]]
        gi = [a.var_names.get_loc(g) for g in genes]
        pb.append({"context": "THP-1", "treatment": t, "n_cells": int(m.sum()),
                   "genes": genes, "means": [f(v) for v in dense[m][:, gi].mean(axis=0)]})
    panel_ref = ad.read_h5ad(DATA.parent / "thp1_panel50.h5ad", backed="r")
    ref_genes = panel_ref.var_names.tolist()
    return {
        "min_cells": 200,
        "n_cells_kept": int(a.n_obs),
        "kept_treatments": sorted(set(a.obs["treatment"]) - {CONTROL}),
        "required_genes": required,
        "median_total_kept": f(np.median(np.asarray(adata[adata.obs["perturbation"].isin(keep)].X.sum(1)))),
        "holdout": split["holdout"],
        "condition_order": [c[1] for c in order],
        "roles": {c[1]: r for c, r in roles.items()},
        "train_treatments": sorted(c[1] for c, r in roles.items() if r == "train"),
        "gene_scores": {g: f(v) for g, v in scores.items()},
        "panel50": selected,
        "t_pairs": pairs,
        "pseudobulk": pb,
        "thp1_panel50_var": ref_genes,
        "thp1_panel50_overlap": len(set(ref_genes) & set(selected)),
    }


def synthetic_splits() -> list[dict]:
    """Condition tables made up here; the Rust test rebuilds them from the JSON."""
    cases = []
    rs = np.random.RandomState(3)
    specs = [
        # (contexts -> number of treatments, seed)
        ({"ctxA": 14, "ctxB": 20, "ctxC": 20, "ctxD": 9}, 42),
        ({"g0": 50, "g1": 50, "g2": 50, "g3": 50, "g4": 50, "g5": 50}, 42),
        ({"k1": 7, "k2": 11, "k3": 6}, 7),
        ({"only": 23}, 42),
        ({"only": 31}, 1234),
    ]
    for sizes, seed in specs:
        conds = [(c, f"T{c}_{j}") for c, n in sizes.items() for j in range(n)]
        perm = rs.permutation(len(conds))
        order = [conds[i] for i in perm]
        ntreat = {c: n + 1 for c, n in sizes.items()}  # + control
        split = assign_split(order, ntreat, seed)
        cases.append({
            "seed": seed,
            "conditions": [[c, t] for c, t in order],
            "holdout": split["holdout"],
            "roles": [split["roles"][c] for c in order],
        })
    return cases


def numpy_permutations() -> list[dict]:
    out = []
    for seed, n in ((42, 10), (0, 1), (5, 2), (123456789, 33), (42, 300), (4294967295, 17)):
        out.append({"seed": seed, "n": n, "perm": np.random.RandomState(seed).permutation(n).tolist()})
    return out


def synthetic_loess() -> list[dict]:
    rs = np.random.RandomState(11)
    cases = []
    for n, span, degree in ((150, 0.3, 2), (60, 0.3, 2), (80, 0.5, 1), (250, 0.3, 2)):
        x = np.round(rs.uniform(-2.5, 2.0, size=n), 2)  # rounding creates ties
        if n == 250:
            x[:40] = 0.5  # a heavy tie
        y = np.round(1.1 * x + 0.4 * np.sin(2 * x) + rs.normal(0, 0.15, size=n), 4)
        m = loess(x, y, span=span, degree=degree)
        m.fit()
        cases.append({"span": span, "degree": degree, "x": [f(v) for v in x], "y": [f(v) for v in y],
                      "fitted": [f(v) for v in m.outputs.fitted_values]})
    return cases


def main() -> None:
    if not DATA.exists():
        raise SystemExit(f"{DATA} not found")
    adata = ad.read_h5ad(DATA)
    golden = {
        "source": "../shared/data/papalexi2021/thp1_subset.h5ad",
        "versions": {p: version(p) for p in ("scanpy", "anndata", "numpy", "scikit-learn", "scikit-misc")},
        "normalize": normalization_section(adata),
        "hvg_seurat_v3": hvg_section(adata),
        "mappfn_panel": mappfn_section(adata),
        "split_cases": synthetic_splits(),
        "numpy_permutations": numpy_permutations(),
        "loess_cases": synthetic_loess(),
    }
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(golden, indent=None, separators=(",", ":")) + "\n")
    os.replace(tmp, OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
