#!/usr/bin/env python3
"""How much per-gene Pearson a context-transfer method can gain over the perturbation mean.

Reads a log-normalised multi-context `.h5ad` (obs columns `perturbation`, `context`; control label
`control`), forms pseudo-bulk deltas per (knock-out, context) and, leaving one context out, scores
per-gene Pearson across the held-out context's knock-outs (mean over genes with variance) for:

- the perturbation mean (the baseline C3TL must beat);
- reweighting the other contexts per gene by how close their control level of that gene is;
- reweighting per gene by the other contexts' error on the adaptation knock-outs;
- global context weights fitted by non-negative least squares on the adaptation knock-outs;
- oracles that see the test knock-outs: global least-squares weights, and the best context per gene;
- the noise ceiling: two random halves of the held-out context's cells against each other.

Usage: python c3tl_per_gene_headroom.py mcn.h5ad [--splits 5] [--adaptation 4]
Needs anndata, numpy, scipy. Analysis for BENCHMARKS.md (issue 16); not part of the test suite.
"""
import argparse

import anndata
import numpy as np
from scipy.optimize import nnls


def per_gene_pearson(pred, true):
    pc, tc = pred - pred.mean(0), true - true.mean(0)
    ok = (pc.std(0) > 1e-12) & (tc.std(0) > 1e-12)
    r = (pc * tc).sum(0) / np.sqrt((pc**2).sum(0) * (tc**2).sum(0) + 1e-30)
    return r[ok].mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("h5ad")
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--adaptation", type=int, default=4)
    args = ap.parse_args()
    np.seterr(divide="ignore", invalid="ignore")  # constant genes: NaN correlations, dropped
    a = anndata.read_h5ad(args.h5ad)
    x = a.X.toarray() if hasattr(a.X, "toarray") else np.asarray(a.X)
    contexts = sorted(a.obs["context"].unique())
    perts = sorted(p for p in a.obs["perturbation"].unique() if p != "control")
    n_c, n_p, n_g = len(contexts), len(perts), x.shape[1]
    rng = np.random.default_rng(0)
    ctrl = np.zeros((n_c, n_g))
    delta = np.zeros((n_p, n_c, n_g))
    halves = np.zeros((2, n_p, n_c, n_g))
    for j, c in enumerate(contexts):
        in_c = (a.obs["context"] == c).values
        ctrl[j] = x[in_c & (a.obs["perturbation"] == "control").values].mean(0)
        for i, p in enumerate(perts):
            cells = x[in_c & (a.obs["perturbation"] == p).values]
            delta[i, j] = cells.mean(0) - ctrl[j]
            order = rng.permutation(len(cells))
            for h in range(2):
                halves[h, i, j] = cells[order[h::2]].mean(0) - ctrl[j]
    scores = {}

    def add(name, value):
        scores.setdefault(name, []).append(value)

    for split in range(args.splits):
        rng = np.random.default_rng(split)
        for t in range(n_c):
            order = rng.permutation(n_p)
            adapt, test = order[: args.adaptation], order[args.adaptation + 1 :]
            others = [c for c in range(n_c) if c != t]
            true, other = delta[test, t], delta[:, others]
            add("perturbation mean", per_gene_pearson(other[test].mean(1), true))
            w = np.exp(-np.abs(ctrl[others] - ctrl[t]) / 0.5)
            add("control-level weights per gene (tau 0.5)",
                per_gene_pearson((other[test] * (w / w.sum(0))[None]).sum(1), true))
            err = ((other[adapt] - delta[adapt, t][:, None]) ** 2).mean(0)
            w = np.exp(-err / (err.mean(0, keepdims=True) + 1e-12) / 3.0)
            add("adaptation-error weights per gene",
                per_gene_pearson((other[test] * (w / w.sum(0))[None]).sum(1), true))
            fit = lambda rows: nnls(other[rows].transpose(0, 2, 1).reshape(-1, n_c - 1),
                                    delta[rows, t].reshape(-1))[0]
            add("global NNLS weights (adaptation)", per_gene_pearson(np.einsum("tcg,c->tg", other[test], fit(adapt)), true))
            add("oracle: global NNLS weights (test)", per_gene_pearson(np.einsum("tcg,c->tg", other[test], fit(test)), true))
            best = [max(range(n_c - 1), key=lambda k: np.nan_to_num(
                np.corrcoef(other[test, k, g], true[:, g])[0, 1], nan=-2.0)) for g in range(n_g)]
            add("oracle: best context per gene",
                per_gene_pearson(np.stack([other[test, best[g], g] for g in range(n_g)], 1), true))
            add("noise ceiling (half vs half)", per_gene_pearson(halves[0, test, t], halves[1, test, t]))
    print(f"{n_c} contexts, {n_p} knock-outs, {n_g} genes; {args.adaptation} adaptation knock-outs, "
          f"{args.splits} seeded splits per held-out context")
    print("| method | per-gene Pearson (mean ± sd over folds) |\n|---|---|")
    for name, v in scores.items():
        print(f"| {name} | {np.mean(v):.3f} ± {np.std(v):.3f} |")


if __name__ == "__main__":
    main()
