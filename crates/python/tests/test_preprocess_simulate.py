"""`cellshift.preprocess` and `cellshift.simulate` equal the command line's outputs, in memory."""

from __future__ import annotations

import anndata
import numpy as np
import pandas as pd

import cellshift


def test_simulate_equals_cli_and_is_seeded(raw_screen, cli, tmp_path):
    cli("simulate", "--prior", "sergio", "--seed", "3", "--genes", "20", "--cells", "60",
        "--out", tmp_path / "s.h5ad")
    expected = anndata.read_h5ad(tmp_path / "s.h5ad")
    np.testing.assert_array_equal(raw_screen.X, expected.X)
    assert list(raw_screen.var_names) == list(expected.var_names)
    assert list(raw_screen.obs["perturbation"]) == list(expected.obs["perturbation"].astype(str))
    again = cellshift.simulate("sergio", seed=3, genes=20, cells=60, progress=False)
    np.testing.assert_array_equal(again.X, raw_screen.X)
    other = cellshift.simulate("sergio", seed=4, genes=20, cells=60, progress=False)
    assert not np.array_equal(other.X, raw_screen.X)


def test_linear_prior_and_suites():
    linear = cellshift.simulate("linear", seed=0, contexts=2, genes=6, cells=30, progress=False)
    assert linear.shape == (2 * 7 * 30, 6)
    assert set(linear.obs["context"]) == {"linear_0", "linear_1"}
    suite = cellshift.simulate(suite="multi-context", seed=0, progress=False)
    assert suite.obs["context"].nunique() >= 2
    assert suite.uns["cellshift"]["suite_stats"]["n_contexts"] == suite.obs["context"].nunique()
    doubles = cellshift.simulate(suite="combinatorial", seed=0, doubles=5, progress=False)
    assert doubles.obs["perturbation"].astype(str).str.contains("+", regex=False).any()


def test_preprocess_equals_cli(raw_screen, cli, tmp_path):
    raw_screen.write_h5ad(tmp_path / "raw.h5ad")
    cli("preprocess", tmp_path / "raw.h5ad", "--out", tmp_path / "p.h5ad", "--hvg", "12", "--hvg-drop-perturbed")
    expected = anndata.read_h5ad(tmp_path / "p.h5ad")
    before = raw_screen.X.copy()
    out = cellshift.preprocess(raw_screen, hvg=12, hvg_drop_perturbed=True, progress=False)
    np.testing.assert_array_equal(raw_screen.X, before)
    assert out.shape == expected.shape == (raw_screen.n_obs, 12)
    assert list(out.var_names) == list(expected.var_names)
    np.testing.assert_array_equal(out.X, expected.X)
    assert any("log1p" in step for step in out.uns["cellshift"]["preprocess"])


def test_preprocess_normalises_like_scanpy_definition(raw_screen):
    out = cellshift.preprocess(raw_screen, normalize=1e4, log1p=True, progress=False)
    totals = np.expm1(out.X.astype(np.float64)).sum(axis=1)
    np.testing.assert_allclose(totals[totals > 0], 1e4, rtol=1e-4)
    plain = cellshift.preprocess(raw_screen, normalize=None, log1p=False, progress=False)
    np.testing.assert_array_equal(plain.X, raw_screen.X)


def test_preprocess_keeps_other_annotations_and_pseudobulk(raw_screen):
    annotated = raw_screen.copy()
    annotated.obs["batch"] = pd.Categorical(np.arange(annotated.n_obs) % 2)
    out, bulk = cellshift.preprocess(annotated, pseudobulk=True, progress=False)
    assert "batch" in out.obs.columns
    np.testing.assert_array_equal(out.obs["batch"].to_numpy(), annotated.obs["batch"].to_numpy())
    n_conditions = annotated.obs["perturbation"].nunique()
    assert bulk.shape == (n_conditions, annotated.n_vars)
    assert int(bulk.obs["n_cells"].sum()) == annotated.n_obs


def test_sparse_input_stays_sparse_and_equals_the_dense_result(raw_screen):
    import scipy.sparse

    sparse = raw_screen.copy()
    sparse.X = scipy.sparse.csr_matrix(raw_screen.X)
    before = sparse.X.copy()
    out_sparse = cellshift.preprocess(sparse, hvg=12, progress=False)
    out_dense = cellshift.preprocess(raw_screen, hvg=12, progress=False)
    assert scipy.sparse.issparse(out_sparse.X) and out_sparse.X.format == "csr"
    assert not scipy.sparse.issparse(out_dense.X)
    assert list(out_sparse.var_names) == list(out_dense.var_names)
    np.testing.assert_array_equal(out_sparse.X.toarray(), out_dense.X)
    assert (sparse.X != before).nnz == 0
    csc = raw_screen.copy()
    csc.X = scipy.sparse.csc_matrix(raw_screen.X)
    np.testing.assert_array_equal(cellshift.preprocess(csc, hvg=12, progress=False).X.toarray(), out_dense.X)
