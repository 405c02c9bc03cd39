//! scDFM's splits through the CLI (`train --split`, `bench --split`): on a tiny synthetic combinatorial
//! screen the held-out conditions the commands record are those of the library's split function.

mod common;

use std::path::Path;

use cellshift_data::h5ad::{read_perturbation_data, PerturbationColumns, ReadOptions};
use cellshift_data::PerturbationData;
use cellshift_models::scdfm::split::{split_conditions, SplitKind, SplitOptions};
use common::cellshift;

fn ok(args: &[&str]) -> (String, String) {
    let (code, out, err) = cellshift(args);
    assert_eq!(code, 0, "cellshift {args:?} failed:\n{out}\n{err}");
    (out, err)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap()
}

/// The held-out and trained (non-control) labels of the library's split.
fn library(data: &PerturbationData, options: SplitOptions) -> (Vec<String>, Vec<String>) {
    let split = split_conditions(data, options).unwrap();
    let label =
        |i: &usize| data.treatments[data.conditions()[*i].treatment].label(&data.control_label);
    let test = split.test.iter().map(label).collect();
    let train = split
        .train
        .iter()
        .filter(|&&i| !data.treatments[data.conditions()[i].treatment].is_control())
        .map(label)
        .collect();
    (test, train)
}

#[test]
fn train_and_bench_hold_out_the_conditions_of_the_library_splits() {
    let tmp = tempfile::tempdir().unwrap();
    let screen = tmp.path().join("combo.h5ad");
    let screen_s = screen.display().to_string();
    ok(&[
        "simulate",
        "--suite",
        "combinatorial",
        "--scale",
        "tiny",
        "--seed",
        "1",
        "--out",
        &screen_s,
    ]);
    let columns = PerturbationColumns {
        context: Some("context".into()),
        ..PerturbationColumns::default()
    };
    let data = read_perturbation_data(&screen, &columns, &ReadOptions::matrix_only()).unwrap();
    assert_eq!(data.contexts.len(), 1);
    let cases: Vec<(&str, Vec<&str>, SplitOptions)> = vec![
        (
            "additive",
            vec![],
            SplitOptions::new(SplitKind::Additive, 3),
        ),
        (
            "unseen",
            vec!["--unseen-genes", "4"],
            SplitOptions {
                n_unseen: 4,
                ..SplitOptions::new(SplitKind::Unseen, 5)
            },
        ),
        (
            "combinations",
            vec!["--held-out-doubles", "5"],
            SplitOptions {
                n_combinations: 5,
                ..SplitOptions::new(SplitKind::Combinations, 7)
            },
        ),
        (
            "unseen",
            vec!["--scdfm-or-bug"],
            SplitOptions {
                reproduce_or_bug: true,
                ..SplitOptions::new(SplitKind::Unseen, 3)
            },
        ),
    ];
    let mut runs = Vec::new();
    for (i, (split, extra, options)) in cases.iter().enumerate() {
        let run = tmp.path().join(format!("run{i}"));
        let seed = options.seed.to_string();
        let mut args = vec![
            "train",
            "--method",
            "scdfm",
            "--data",
            &screen_s,
            "--split",
            split,
            "--split-seed",
            &seed,
            "--steps",
            "1",
            "--cells",
            "8",
            "--threads",
            "1",
        ];
        args.extend(extra.iter().copied());
        let run_s = run.display().to_string();
        args.extend(["--out", run_s.as_str()]);
        ok(&args);
        let recorded = json(&run.join("split.json"));
        let (test, train) = library(&data, *options);
        assert!(!test.is_empty());
        assert_eq!(recorded["split"], *split);
        assert_eq!(
            strings(&recorded["test_conditions"]),
            test,
            "{split} {extra:?}"
        );
        assert_eq!(
            strings(&recorded["train_conditions"]),
            train,
            "{split} {extra:?}"
        );
        runs.push((run, test));
    }
    // The or-bug makes `unseen` the additive split of the same seed (held-out doubles only).
    assert_eq!(runs[3].1, runs[0].1);
    assert!(runs[0].1.iter().all(|l| l.contains('+')));
    assert!(
        runs[1].1.iter().any(|l| !l.contains('+')),
        "unseen holds out singles"
    );
    // Resuming a run with another split is refused.
    let (code, _, err) = cellshift(&[
        "train",
        "--method",
        "scdfm",
        "--data",
        &screen_s,
        "--split",
        "combinations",
        "--split-seed",
        "3",
        "--steps",
        "1",
        "--threads",
        "1",
        "--out",
        &runs[0].0.display().to_string(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("started with another split"), "{err}");
    // bench scores the model of the additive run on exactly the conditions it never saw.
    let report = tmp.path().join("bench.json");
    ok(&[
        "bench",
        "--model",
        &runs[0].0.display().to_string(),
        "--data",
        &screen_s,
        "--split",
        "additive",
        "--split-seed",
        "3",
        "--k",
        "0",
        "--cells",
        "16",
        "--seeds",
        "1",
        "--metrics",
        "mappfn",
        "--threads",
        "1",
        "--json",
        &report.display().to_string(),
    ]);
    let scored = json(&report);
    assert_eq!(scored["protocol"]["split"], "additive");
    assert_eq!(strings(&scored["protocol"]["test_conditions"]), runs[0].1);
    // A split the screen cannot give is named with the option to change.
    let (code, _, err) = cellshift(&[
        "bench",
        "--baseline",
        "control",
        "--data",
        &screen_s,
        "--split",
        "unseen",
        "--unseen-genes",
        "100000",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("--unseen-genes"), "{err}");
}
