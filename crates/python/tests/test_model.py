"""Prediction with the bundled checkpoint, fitting C3TL and a baseline, saving and loading them."""

from __future__ import annotations

import anndata
import numpy as np
import pytest

import cellshift


def test_bundled_model_predicts_like_the_cli(log_screen, cli, tmp_path):
    queries = ["GENE0003", "GENE0007"]
    pred = cellshift.predict(log_screen, queries=queries, k=4, cells=30, seed=1, progress=False)
    model = cellshift.Model.load(cellshift.bundled_checkpoint())
    assert model.method == "mappfn" and model.kind == "checkpoint"
    assert pred.shape == (60, 50)
    assert list(pred.var_names) == list(log_screen.var_names)  # the model records 50 unnamed genes
    assert list(pred.obs["perturbation"]) == ["GENE0003"] * 30 + ["GENE0007"] * 30
    assert sorted(pred.uns["cellshift"]["context_experiments"]) == queries
    log_screen.write_h5ad(tmp_path / "screen.h5ad")
    cli("predict", "--data", tmp_path / "screen.h5ad", "--query", "GENE0003,GENE0007", "--k", "4", "--cells", "30",
        "--seed", "1", "--out", tmp_path / "pred.h5ad")
    expected = anndata.read_h5ad(tmp_path / "pred.h5ad")
    np.testing.assert_allclose(pred.X, expected.X, atol=1e-4)
    again = model.predict(log_screen, queries, k=4, cells=30, seed=1, progress=False)
    np.testing.assert_array_equal(again.X, pred.X)


@pytest.fixture(scope="module")
def contexts_screen():
    """The tiny multi-context suite, log-normalised: perturbations measured in several cell types."""
    return cellshift.preprocess(cellshift.simulate(suite="multi-context", seed=0, progress=False), progress=False)


def test_fit_c3tl_predicts_profiles_and_round_trips(contexts_screen, tmp_path):
    held_out_context = sorted(contexts_screen.obs["context"].unique())[0]
    model = cellshift.fit("c3tl", contexts_screen, steps=20, seed=0, progress=False)
    assert model.method == "c3tl" and model.kind == "checkpoint"
    queries = ["GENE0001", "GENE0002"]
    profiles = model.predict(contexts_screen, queries, context=held_out_context, k=2, cells=20, progress=False)
    assert profiles.shape == (2, contexts_screen.n_vars)
    assert list(profiles.obs["perturbation"]) == queries
    model.save(tmp_path / "c3tl")
    loaded = cellshift.Model.load(tmp_path / "c3tl")
    again = loaded.predict(contexts_screen, queries, context=held_out_context, k=2, cells=20, progress=False)
    np.testing.assert_allclose(again.X, profiles.X, atol=1e-6)


def test_fit_baseline_predicts_and_round_trips(log_screen, tmp_path):
    model = cellshift.fit("context_mean", log_screen, progress=False)
    assert model.kind == "baseline"
    pred = model.predict(log_screen, ["GENE0003"], k=4, cells=25, seed=2, progress=False)
    assert pred.shape == (25, 50)
    via_predict = cellshift.predict(log_screen, queries=["GENE0003"], method="context_mean", k=4, cells=25, seed=2,
                                    progress=False)
    np.testing.assert_array_equal(via_predict.X, pred.X)
    model.save(tmp_path / "baseline")
    loaded = cellshift.Model.load(tmp_path / "baseline")
    np.testing.assert_array_equal(
        loaded.predict(log_screen, ["GENE0003"], k=4, cells=25, seed=2, progress=False).X, pred.X
    )
    with pytest.raises(ValueError, match="not empty"):
        model.save(tmp_path / "baseline")


def test_predicted_cells_score_through_evaluate(log_screen):
    queries = ["GENE0003", "GENE0007"]
    pred = cellshift.predict(log_screen, queries=queries, method="context_mean", k=4, cells=40, progress=False)
    control = log_screen[log_screen.obs["perturbation"] == "control"]
    real = anndata.concat([control, log_screen[log_screen.obs["perturbation"].isin(queries)]])
    pred = anndata.concat([control, pred])
    pred.obs_names_make_unique()
    scores = cellshift.evaluate(pred, real, progress=False)
    assert list(scores.per_perturbation.index) == queries
    assert np.isfinite(scores.summary["mean_rmse"]) if "mean_rmse" in scores.summary else True
    assert np.isfinite(scores.summary["w2"])


def test_fit_mappfn_fine_tunes_the_bundled_checkpoint(log_screen, tmp_path):
    queries, options = ["GENE0003"], dict(k=2, cells=8, seed=3, progress=False)
    tuned = cellshift.fit("mappfn", log_screen, steps=2, k=2, cells=8, batch_size=1, accumulation=1, lr=1e-5,
                          seed=0, run_dir=tmp_path / "run", progress=False)
    assert tuned.method == "mappfn" and (tmp_path / "run").is_dir()
    pred = tuned.predict(log_screen, queries, **options)
    bundled = cellshift.Model.load(cellshift.bundled_checkpoint(), reference_sampler=True)
    before = bundled.predict(log_screen, queries, **options)
    assert pred.shape == before.shape == (8, 50)
    assert not np.array_equal(pred.X, before.X), "fine-tuning did not change the model"
    reloaded = cellshift.Model.load(tmp_path / "run").predict(log_screen, queries, **options)
    np.testing.assert_allclose(reloaded.X, pred.X, atol=1e-5)
