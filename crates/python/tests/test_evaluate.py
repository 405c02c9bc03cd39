"""`cellshift.evaluate` equals `cellshift evaluate` on the same data, whatever the in-memory layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse

import cellshift
from conftest import read_json, same_number


def test_python_evaluate_equals_cli_json(prediction, cli, tmp_path):
    pred, real = prediction
    pred.write_h5ad(tmp_path / "pred.h5ad")
    real.write_h5ad(tmp_path / "real.h5ad")
    cli("evaluate", "--pred", tmp_path / "pred.h5ad", "--real", tmp_path / "real.h5ad",
        "--metrics", "mappfn,celleval", "--json", tmp_path / "cli.json")
    expected = read_json(tmp_path / "cli.json")
    scores = cellshift.evaluate(pred, real, progress=False)
    expected_summary = {**expected["mean"], **expected["global"]}
    assert set(scores.summary) == set(expected_summary)
    for key, value in expected_summary.items():
        assert same_number(scores.summary[key], value), (key, scores.summary[key], value)
    assert list(scores.per_perturbation.index) == [p["name"] for p in expected["per_perturbation"]]
    for row in expected["per_perturbation"]:
        for key, value in row.items():
            if key != "name" and not isinstance(value, list):
                assert same_number(scores.per_perturbation.loc[row["name"], key], value), key
    assert (scores.cell_eval is None) == ((expected.get("cell_eval") or {}).get("status") != "ok")
    assert "w2" in scores.summary and np.isfinite(scores.summary["w2"])


def test_cell_eval_table_with_the_de_group(prediction):
    pred, real = prediction
    scores = cellshift.evaluate(pred, real, metrics="celleval,de", progress=False)
    assert scores.cell_eval is not None
    assert list(scores.cell_eval.index) == list(scores.per_perturbation.index)


def test_sparse_and_string_layouts_score_the_same(prediction):
    pred, real = prediction
    dense = cellshift.evaluate(pred, real, progress=False).summary
    sparse_pred = pred.copy()
    sparse_pred.X = scipy.sparse.csr_matrix(pred.X)
    sparse_real = real.copy()
    sparse_real.X = scipy.sparse.csc_matrix(real.X.astype(np.float64))
    sparse_real.obs["perturbation"] = sparse_real.obs["perturbation"].astype(str)
    other = cellshift.evaluate(sparse_pred, sparse_real, progress=False).summary
    for key, value in dense.items():
        assert same_number(other[key], value, tol=0.0), key


def test_inputs_are_not_modified(prediction):
    pred, real = prediction
    x_before, obs_before = real.X.copy(), real.obs.copy()
    cellshift.evaluate(pred, real, progress=False)
    np.testing.assert_array_equal(real.X, x_before)
    pd.testing.assert_frame_equal(real.obs, obs_before)


def test_progress_callback_hears_the_call(prediction):
    pred, real = prediction
    heard = []
    cellshift.evaluate(pred, real, progress=lambda done, total, text: heard.append((done, total, text)))
    assert heard[0][0] == 0 and heard[-1][:2] == (1, 1)
