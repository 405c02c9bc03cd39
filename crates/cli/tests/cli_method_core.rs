//! The method-neutral core end to end through the CLI with the registry's test-only method
//! (`toy-gaussian`, one folder in `crates/models/src/toy` plus one registry line): it trains, checkpoints
//! with named loss components, resumes, predicts, is benched and is speed-timed with no command naming it.

mod common;

use common::{cellshift, simulate_linear};

fn ok(args: &[&str]) -> (String, String) {
    let (code, out, err) = cellshift(args);
    assert_eq!(code, 0, "cellshift {args:?} failed:\n{out}\n{err}");
    (out, err)
}

#[test]
fn a_registered_method_trains_resumes_predicts_and_benches_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("scm.h5ad").display().to_string();
    let run = tmp.path().join("toy").display().to_string();
    simulate_linear(&tmp.path().join("scm.h5ad"), "2", "5");
    let train = |stop: Option<&str>| {
        let mut args = vec![
            "train",
            "--method",
            "toy-gaussian",
            "--data",
            &data,
            "--out",
            &run,
            "--steps",
            "150",
            "--batch-size",
            "4",
            "--threads",
            "1",
        ];
        if let Some(s) = stop {
            args.extend(["--stop-at", s]);
        }
        ok(&args)
    };
    // Part of the run, then the rest: the second invocation resumes.
    let (_, err) = train(Some("20"));
    assert!(err.contains("stopped at micro-batch 20 of 150"), "{err}");
    let (_, err) = train(None);
    assert!(
        err.contains("stopped at micro-batch 150 of 150, run finished"),
        "{err}"
    );
    // The checkpoint names the method and records the loss's two named components.
    let latest = std::fs::read_to_string(tmp.path().join("toy/LATEST")).unwrap();
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            tmp.path()
                .join("toy")
                .join(latest.trim())
                .join("checkpoint.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(meta["method"], "toy-gaussian");
    assert_eq!(meta["counters"]["micro_batches"], 150);
    let names: Vec<&str> = meta["last_loss_components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[0].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nll", "shift_l2"]);
    // Predict a training perturbation through the registry: the toy learned its shift, so the predicted
    // mean is closer to that perturbation's cells than the control cells are.
    let screen = cellshift_data::h5ad::read_perturbation_data(
        std::path::Path::new(&data),
        &cellshift_data::h5ad::PerturbationColumns::default(),
        &cellshift_data::h5ad::ReadOptions::matrix_only(),
    )
    .unwrap();
    let split = cellshift_data::Split::new(
        &screen,
        &cellshift_data::SplitConfig {
            seed: 42,
            ..cellshift_data::SplitConfig::default()
        },
    )
    .unwrap();
    let conditions = screen.conditions();
    let trained = split
        .train_conditions()
        .into_iter()
        .map(|i| &conditions[i])
        .find(|c| !screen.treatments[c.treatment].is_control())
        .expect("a trained perturbation");
    let context = screen.contexts[trained.context].clone();
    let label = screen.treatments[trained.treatment].label(&screen.control_label);
    let control = conditions
        .iter()
        .find(|c| c.context == trained.context && screen.treatments[c.treatment].is_control())
        .unwrap();
    let mean = |a: ndarray::Array2<f32>| a.mean_axis(ndarray::Axis(0)).unwrap();
    let (truth, control_mean) = (
        mean(screen.cells_of(trained)),
        mean(screen.cells_of(control)),
    );
    let pred = tmp.path().join("pred.h5ad").display().to_string();
    ok(&[
        "predict",
        "--model",
        &run,
        "--data",
        &data,
        "--context",
        &context,
        "--query",
        &label,
        "--k",
        "0",
        "--cells",
        "200",
        "--out",
        &pred,
    ]);
    let predicted = cellshift_data::h5ad::read_h5ad(
        std::path::Path::new(&pred),
        &cellshift_data::h5ad::ReadOptions::default(),
    )
    .unwrap();
    let predicted = mean(predicted.x.unwrap().to_dense());
    let distance = |a: &ndarray::Array1<f32>| -> f32 { (a - &truth).mapv(|v| v * v).sum().sqrt() };
    assert!(
        distance(&predicted) < 0.5 * distance(&control_mean),
        "predicted mean {predicted} vs truth {truth} (control {control_mean})"
    );
    // Bench it (held-out perturbations, which a per-perturbation model has no parameters for, are
    // predicted as the control mean with zero shift and unit spread): the scoring runs and reports RMSE.
    let json = tmp.path().join("bench.json").display().to_string();
    ok(&[
        "bench",
        "--model",
        &run,
        "--data",
        &data,
        "--k",
        "0",
        "--cells",
        "20",
        "--seeds",
        "1",
        "--metrics",
        "mappfn",
        "--json",
        &json,
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rmse = v["summary"]
        .as_array()
        .and_then(|s| s.iter().find(|m| m["metric"] == "mean_rmse"))
        .and_then(|m| m["mean"].as_f64())
        .unwrap_or_else(|| panic!("no mean_rmse in {v}"));
    assert!(rmse.is_finite() && rmse > 0.0, "{rmse}");
    // Speed-time it through its registry hook (the shared fit-and-predict benchmark of the skeleton).
    let speed = tmp.path().join("speed.json").display().to_string();
    let (out, _) = ok(&[
        "bench",
        "speed",
        "--method",
        "toy-gaussian",
        "--data",
        &data,
        "--option",
        "steps=12",
        "--cells",
        "16",
        "--threads",
        "1",
        "--json",
        &speed,
    ]);
    assert!(out.contains("micro-batches/s"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&speed).unwrap()).unwrap();
    assert_eq!(v["method"], "toy-gaussian");
    let timing = &v["timings"][0];
    assert_eq!(timing["steps"], 12);
    assert_eq!(timing["cells_per_perturbation"], 16);
    assert!(timing["test_perturbations"].as_u64().unwrap() >= 1, "{v}");
    for key in [
        "fit_seconds",
        "steps_per_second",
        "predict_seconds",
        "cells_per_second",
    ] {
        let x = timing[key].as_f64().unwrap();
        assert!(x.is_finite() && x > 0.0, "{key} = {x}");
    }
}

#[test]
fn methods_pretrained_on_priors_refuse_train_and_unknown_methods_list_the_valid_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("scm.h5ad").display().to_string();
    ok(&[
        "simulate", "--prior", "linear", "--genes", "4", "--cells", "10", "--out", &data,
    ]);
    let out = tmp.path().join("x").display().to_string();
    let (code, _, err) = cellshift(&[
        "train", "--method", "mappfn", "--data", &data, "--out", &out,
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("cellshift pretrain --method mappfn"), "{err}");
    let (code, _, err) = cellshift(&["train", "--method", "nope", "--data", &data, "--out", &out]);
    assert_ne!(code, 0);
    assert!(
        err.contains("unknown method `nope`") && err.contains("toy-gaussian"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
