"""Independent numpy computation of the linear baseline's expected outputs for the Rust test
`linear::tests::matches_the_numpy_reference` (run: python3 linear_reference.py).

Formulation (Ahlmann-Eltze et al. 2025, `run_linear_pretrained_model.R`; peers.md §5), fitted per context:
  X      genes × conditions pseudo-bulk of the context's control + training conditions
  G      PCA scores of the genes (prcomp semantics: each condition's column centred over genes), top k
  Y      change vs control mean for control (zero column) + single KOs of measured genes
  P      rows of G for the KO genes, zero row for control
  b      row means of Y;  W = (GᵀG+λI)⁻¹ Gᵀ (Y−b) P (PᵀP+λI)⁻¹
  change(q) = G W G[q]ᵀ + b
Data: the same closed-form cell values as the Rust test (`linear::tests::value`).
"""
import numpy as np

GENES = [f"G{i}" for i in range(6)]
# condition index -> label; 0 = control, 7 = the held-out query G5.
CONDS = ["control", "G0", "G1", "G2", "G3", "G4", "X9", "G5"]


def value(context, cond, cell, gene):
    return ((7 * cond + 3 * cell + 5 * gene + cond * gene + 4 * context) % 13) * 0.25 + 0.5 * context


def cells(context, cond):
    return np.array([[value(context, cond, r, g) for g in range(6)] for r in range(3)], dtype=np.float32).astype(np.float64)


def predict_change(context, k, lam, query_gene):
    means = {c: cells(context, i).mean(axis=0) for i, c in enumerate(CONDS)}
    ctrl = means["control"]
    train = [c for c in CONDS if c not in ("control", "G5")]
    X = np.column_stack([ctrl] + [means[c] for c in train])
    Xc = X - X.mean(axis=0, keepdims=True)
    U, S, Vt = np.linalg.svd(Xc, full_matrices=False)
    k = min(k, *X.shape)
    G = U[:, :k] * S[:k]
    kos = [c for c in train if c in GENES]
    Y = np.column_stack([np.zeros(6)] + [means[c] - ctrl for c in kos])
    P = np.vstack([np.zeros(k)] + [G[GENES.index(c)] for c in kos])
    b = Y.mean(axis=1)
    M = np.linalg.solve(G.T @ G + lam * np.eye(k), G.T @ (Y - b[:, None]) @ P)
    W = M @ np.linalg.inv(P.T @ P + lam * np.eye(k))
    return G @ W @ G[GENES.index(query_gene)] + b, ctrl


for k, lam in [(3, 0.1), (10, 0.1), (2, 1.0)]:
    change, ctrl = predict_change(0, k, lam, "G5")
    print(f"k={k} lambda={lam}: change {np.array2string(change, precision=10, separator=', ')}")
    print(f"   predicted mean = control mean + change {np.array2string(ctrl + change, precision=10, separator=', ')}")
