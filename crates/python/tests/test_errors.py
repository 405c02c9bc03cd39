"""Bad input raises a Python exception of the right type with the command line's message, never a crash
of the interpreter (the cases of crates/cli/tests/cli_errors.rs, through Python)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse

import cellshift


def test_wrong_perturbation_column_lists_columns(log_screen):
    with pytest.raises(ValueError, match="guide_target") as err:
        cellshift.preprocess(log_screen, perturbation_key="guide_target", progress=False)
    assert "perturbation" in str(err.value) and "context" in str(err.value)


def test_unknown_baseline_lists_valid_names(log_screen):
    with pytest.raises(ValueError, match="magic") as err:
        cellshift.bench(log_screen, methods=["magic"], progress=False)
    assert "perturbation_mean" in str(err.value)
    with pytest.raises(ValueError, match="unknown method `magic`"):
        cellshift.fit("magic", log_screen, progress=False)


def test_invalid_normalize_value_is_explained(raw_screen):
    with pytest.raises(ValueError, match="normalize `lots` is not valid.*median"):
        cellshift.preprocess(raw_screen, normalize="lots", progress=False)


def test_missing_model_folder_is_file_not_found(log_screen, tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        cellshift.Model.load(tmp_path / "no-such-run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        cellshift.predict(log_screen, queries=["GENE0001"], model=tmp_path / "empty", progress=False)


def test_ambiguous_control_lists_candidates(log_screen):
    odd = log_screen.copy()
    odd.obs["perturbation"] = odd.obs["perturbation"].cat.rename_categories({"control": "ctrl"})
    odd.obs["perturbation"] = odd.obs["perturbation"].cat.add_categories(["non-targeting"])
    odd.obs.loc[odd.obs_names[:5], "perturbation"] = "non-targeting"
    with pytest.raises(ValueError, match="cannot tell the control label"):
        cellshift.fit("control", odd, progress=False)
    model = cellshift.fit("control", odd, control="ctrl", progress=False)
    assert model.method == "control"


def test_non_finite_and_duplicate_names_are_refused(log_screen):
    bad = log_screen.copy()
    bad.X[3, 4] = np.nan
    with pytest.raises(ValueError, match="non-finite value NaN at row 3, column 4"):
        cellshift.fit("control", bad, progress=False)
    dup = log_screen.copy()
    dup.var_names = ["GENE0000"] + list(dup.var_names[1:-1]) + ["GENE0000"]
    with pytest.raises(ValueError, match="duplicate var name `GENE0000`"):
        cellshift.fit("control", dup, progress=False)


def test_missing_values_in_the_label_column(log_screen):
    bad = log_screen.copy()
    labels = bad.obs["perturbation"].astype(object)
    labels.iloc[:3] = None
    bad.obs["perturbation"] = labels
    with pytest.raises(ValueError, match="3 missing values"):
        cellshift.fit("control", bad, progress=False)


def test_evaluate_refusals(prediction, raw_screen):
    pred, real = prediction
    partial = pred[pred.obs["perturbation"] != "GENE0001"].copy()
    with pytest.raises(ValueError, match="`GENE0001`.*no cells in pred"):
        cellshift.evaluate(partial, real, progress=False)
    with pytest.raises(ValueError, match="raw counts.*allow_scale_mismatch"):
        cellshift.evaluate(pred, raw_screen, progress=False)
    with pytest.raises(ValueError, match="unknown metric group|metric"):
        cellshift.evaluate(pred, real, metrics="nonsense", progress=False)


def test_queries_and_k_are_checked(log_screen):
    with pytest.raises(ValueError, match="not measured"):
        cellshift.predict(log_screen, queries=["NOPE"], method="context_mean", progress=False)
    with pytest.raises(ValueError, match="K = 500"):
        cellshift.predict(log_screen, queries=["GENE0001"], method="context_mean", k=500, progress=False)
    with pytest.raises(ValueError, match="no queries"):
        cellshift.predict(log_screen, progress=False)


def test_not_an_anndata_and_bad_sparse(log_screen):
    with pytest.raises(TypeError, match="AnnData"):
        cellshift.evaluate(np.zeros((3, 3)), log_screen, progress=False)
    broken = log_screen.copy()
    matrix = scipy.sparse.csr_matrix(broken.X)
    matrix.indices[0] = 10_000
    broken.X = matrix
    with pytest.raises(ValueError, match="inconsistent"):
        cellshift.fit("control", broken, progress=False)
