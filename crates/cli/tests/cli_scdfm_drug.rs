//! scDFM's drug mode from an `.h5ad` file: compound labels `NAME@DOSE` train a drug-mode model through
//! `cellshift train`; `cellshift predict` predicts a trained compound and refuses one absent from training
//! with the reason.

mod common;

use cellshift_data::h5ad::{write_perturbation_data, PerturbationColumns, WriteOptions};
use cellshift_data::{CellAnnotations, PerturbationData};
use common::cellshift;
use ndarray::Array2;

/// The compounds of the screen (two doses of one of them).
const COMPOUNDS: [&str; 8] = [
    "drugA@1", "drugA@10", "drugB@1", "drugC@1", "drugD@1", "drugE@1", "drugF@1", "drugG@1",
];

/// 30 control cells and 20 cells of each compound (each shifts the six genes differently).
fn compound_screen() -> PerturbationData {
    let labels: Vec<&str> = std::iter::once("control").chain(COMPOUNDS).collect();
    let (mut rows, mut names) = (Vec::new(), Vec::new());
    for (k, label) in labels.iter().enumerate() {
        let n = if k == 0 { 30 } else { 20 };
        for i in 0..n {
            rows.push(
                (0..6)
                    .map(|g| 1.0 + 0.3 * ((k * 7 + g * 3 + i) % 5) as f32 + (k * g) as f32 * 0.2)
                    .collect::<Vec<f32>>(),
            );
            names.push(label.to_string());
        }
    }
    let x = Array2::from_shape_fn((rows.len(), 6), |(i, g)| rows[i][g]);
    PerturbationData::new(
        (0..6).map(|g| format!("g{g}")).collect(),
        x,
        CellAnnotations {
            treatment_labels: names,
            ..CellAnnotations::default()
        },
        "control",
    )
    .unwrap()
}

#[test]
fn compound_screens_train_drug_mode_and_unseen_compounds_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("drugs.h5ad");
    write_perturbation_data(
        &data,
        &compound_screen(),
        &PerturbationColumns::default(),
        &WriteOptions::default(),
    )
    .unwrap();
    let data = data.to_str().unwrap();
    let run = dir.path().join("run");
    let run = run.to_str().unwrap();
    let (code, out, err) = cellshift(&[
        "train",
        "--method",
        "scdfm",
        "--data",
        data,
        "--out",
        run,
        "--steps",
        "3",
        "--threads",
        "1",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let latest = std::fs::read_to_string(dir.path().join("run/LATEST")).unwrap();
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            dir.path()
                .join("run")
                .join(latest.trim())
                .join("checkpoint.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let config = &meta["model_config"];
    assert_eq!(config["net"]["perturbation"], "drug", "{config}");
    let trained: Vec<String> = serde_json::from_value(config["compounds"].clone()).unwrap();
    assert!(
        !trained.is_empty() && trained.len() < COMPOUNDS.len(),
        "{trained:?}"
    );
    for compound in COMPOUNDS {
        let pred = dir.path().join(format!("{compound}.h5ad"));
        let (code, out, err) = cellshift(&[
            "predict",
            "--model",
            run,
            "--data",
            data,
            "--context",
            "default",
            "--query",
            compound,
            "--cells",
            "8",
            "--k",
            "2",
            "--threads",
            "1",
            "--out",
            pred.to_str().unwrap(),
        ]);
        if trained.iter().any(|t| t == compound) {
            assert_eq!(code, 0, "{compound}: {out}\n{err}");
            assert!(pred.exists());
        } else {
            assert_ne!(code, 0, "{compound} was not trained on");
            assert!(
                err.contains(&format!("`{compound}`"))
                    && err.contains("cannot embed compounds absent from training"),
                "{err}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}
