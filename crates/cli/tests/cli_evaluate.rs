//! `cellshift evaluate` end to end: a golden `.npz` case reproduces the reference JSON, a prediction file
//! equal to the real file scores as perfect, and a baseline is scored on a simulated screen.

use std::path::Path;
mod common;

use common::cellshift;

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn golden_npz_case_reproduces_the_reference_json() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden/metrics");
    let case = golden.join("gauss_small.npz");
    if cellshift_data::testing::require_path(&case).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let csv = dir.path().join("report.csv");
    let (code, table, stderr) = cellshift(&[
        "evaluate",
        case.to_str().unwrap(),
        "--metrics",
        "mappfn,celleval",
        "--json",
        out.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        table.contains("w2") && table.contains("pearson_delta"),
        "{table}"
    );
    let ours = json(&out);
    let reference = json(&golden.join("gauss_small.json"));
    for key in [
        "w2",
        "mmd",
        "mean_rmse",
        "mag_ratio",
        "pearson_delta",
        "mse",
    ] {
        let (a, b) = (
            ours["mean"][key].as_f64().unwrap(),
            reference["mean"][key].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() <= 1e-5 + 1e-6 * b.abs(),
            "mean.{key}: ours {a}, reference {b}"
        );
    }
    for key in ["pds", "deg_auprc"] {
        let (a, b) = (
            ours["global"][key].as_f64().unwrap(),
            reference["global"][key].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() <= 1e-9 * b.abs().max(1.0),
            "global.{key}: ours {a}, reference {b}"
        );
    }
    let n_perts = reference["per_perturbation"].as_array().unwrap().len();
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap().lines().count(),
        n_perts + 1
    );
}

#[test]
fn prediction_equal_to_the_real_cells_scores_as_perfect() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.h5ad");
    let (code, _, stderr) = cellshift(&[
        "simulate",
        "--prior",
        "linear",
        "--genes",
        "6",
        "--cells",
        "40",
        "--seed",
        "5",
        "--out",
        real.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let out = dir.path().join("perfect.json");
    let (code, _, stderr) = cellshift(&[
        "evaluate",
        "--pred",
        real.to_str().unwrap(),
        "--real",
        real.to_str().unwrap(),
        "--metrics",
        "mappfn",
        "--json",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report = json(&out);
    assert_eq!(report["n_perts"].as_u64(), Some(6));
    assert!(report["mean"]["mean_rmse"].as_f64().unwrap().abs() < 1e-12);
    assert!(report["mean"]["w2"].as_f64().unwrap().abs() < 1e-4);
    assert_eq!(report["global"]["pds"].as_f64(), Some(0.0));
}

#[test]
fn baseline_is_scored_on_a_simulated_screen() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("scm.h5ad");
    let (code, _, stderr) = cellshift(&[
        "simulate",
        "--prior",
        "linear",
        "--contexts",
        "2",
        "--genes",
        "8",
        "--cells",
        "60",
        "--seed",
        "9",
        "--out",
        data.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let out = dir.path().join("control.json");
    let (code, table, stderr) = cellshift(&[
        "evaluate",
        "--baseline",
        "control",
        "--data",
        data.to_str().unwrap(),
        "--k",
        "2",
        "--cells",
        "30",
        "--seeds",
        "2",
        "--metrics",
        "mappfn",
        "--json",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(table.contains("| control |"), "{table}");
    let report = json(&out);
    assert_eq!(report["method"], "control");
    // The control baseline predicts no effect: its magnitude ratio is far below 1.
    let mag = report["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "mag_ratio")
        .unwrap();
    assert!(mag["mean"].as_f64().unwrap() < 0.5, "{mag}");
}
