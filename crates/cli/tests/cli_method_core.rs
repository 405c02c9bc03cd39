//! The method-neutral core end to end through the CLI with the registry's test-only method
//! (`toy-gaussian`, one folder in `crates/models/src/toy`): it trains, checkpoints with named loss
//! components, resumes, predicts and is benched with no command naming it.

mod common;

use common::cellshift;

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
    ok(&[
        "simulate",
        "--prior",
        "linear",
        "--genes",
        "6",
        "--cells",
        "40",
        "--contexts",
        "2",
        "--seed",
        "5",
        "--out",
        &data,
    ]);
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
            "60",
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
    assert!(err.contains("stopped at micro-batch 20 of 60"), "{err}");
    let (_, err) = train(None);
    assert!(
        err.contains("stopped at micro-batch 60 of 60, run finished"),
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
    assert_eq!(meta["counters"]["micro_batches"], 60);
    let names: Vec<&str> = meta["last_loss_components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[0].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nll", "shift_l2"]);
    // Predict a perturbation of the training data, through the registry.
    let pred = tmp.path().join("pred.h5ad").display().to_string();
    ok(&[
        "predict",
        "--model",
        &run,
        "--data",
        &data,
        "--context",
        "linear_0",
        "--query",
        "X01",
        "--k",
        "0",
        "--cells",
        "10",
        "--out",
        &pred,
    ]);
    assert!(std::path::Path::new(&pred).exists());
    // Bench it: it learned the perturbations' shifts, so it beats the control baseline on RMSE.
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
    let control = tmp.path().join("control.json").display().to_string();
    ok(&[
        "bench",
        "--baseline",
        "control",
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
        &control,
    ]);
    let rmse = |path: &str| -> f64 {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let text = v.to_string();
        let summary = v["summary"].as_array().unwrap_or_else(|| panic!("{text}"));
        summary
            .iter()
            .find(|m| m["metric"] == "mean_rmse")
            .and_then(|m| m["mean"].as_f64())
            .unwrap_or_else(|| panic!("no mean_rmse in {text}"))
    };
    let (toy, identity) = (rmse(&json), rmse(&control));
    assert!(toy < 0.8 * identity, "toy RMSE {toy} vs control {identity}");
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
