//! CellTarNet end to end: `bench celltarnet` fits it on held-out doubles, scores it beside baselines with
//! its held-out log-likelihood (and says why `linear` cannot apply); `bench celltarnet-speed` gives the same
//! cells cached and uncached; bad options are one-line errors.

mod common;

use common::cellshift;

#[test]
fn bench_celltarnet_scores_held_out_doubles_with_a_log_likelihood() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("ctn.json");
    let (code, stdout, stderr) = cellshift(&[
        "bench",
        "sweep",
        "--method",
        "celltarnet",
        "--suites",
        "combinatorial",
        "--steps",
        "5",
        "--seeds",
        "1",
        "--cells",
        "32",
        "--baselines",
        "additive,linear",
        "--threads",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("heldout_log_likelihood_per_gene"),
        "{stdout}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = v["suites"][0]["rows"].as_array().unwrap();
    let ctn = rows.iter().find(|r| r["method"] == "celltarnet").unwrap();
    let ll = ctn["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "heldout_log_likelihood_per_gene")
        .unwrap();
    assert!(ll["mean"].as_f64().unwrap().is_finite(), "{ll}");
    assert_eq!(ctn["fit"]["steps"], 5);
    let linear = rows.iter().find(|r| r["method"] == "linear").unwrap();
    assert!(linear["not_applicable"]
        .as_str()
        .unwrap()
        .contains("single"));
}

#[test]
fn bench_celltarnet_speed_gives_the_same_cells_cached_and_uncached() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("speed.json");
    let (code, _, stderr) = cellshift(&[
        "bench",
        "speed",
        "--method",
        "celltarnet",
        "--genes",
        "24",
        "--cells",
        "8",
        "--threads",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["times"].as_array().unwrap().len(), 2);
    assert!(v["max_abs_difference"].as_f64().unwrap() < 1e-4, "{v}");
    let (code, _, stderr) = cellshift(&[
        "bench",
        "speed",
        "--method",
        "celltarnet",
        "--option",
        "modes=warp",
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("cached or uncached"), "{stderr}");
    let (code, _, stderr) = cellshift(&[
        "bench",
        "sweep",
        "--method",
        "celltarnet",
        "--suites",
        "combinatorial",
        "--preset",
        "huge",
        "--steps",
        "1",
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("tiny, small, paper"), "{stderr}");
}

#[test]
fn train_model_options_set_the_no_prior_ablation_and_name_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("comb.h5ad").display().to_string();
    let (code, _, stderr) = cellshift(&[
        "simulate",
        "--suite",
        "combinatorial",
        "--scale",
        "tiny",
        "--seed",
        "0",
        "--out",
        &data,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let run = dir.path().join("run");
    let train = |option: &str| {
        cellshift(&[
            "train",
            "--method",
            "celltarnet",
            "--data",
            &data,
            "--out",
            run.to_str().unwrap(),
            "--steps",
            "2",
            "--threads",
            "1",
            "--model-option",
            option,
        ])
    };
    let (code, _, stderr) = train("prior.enabled=false");
    assert_eq!(code, 0, "{stderr}");
    let latest = std::fs::read_to_string(run.join("LATEST")).unwrap();
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join(latest.trim()).join("checkpoint.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["model_config"]["prior"]["enabled"], false, "{meta}");
    let (code, _, stderr) = train("prior.enable=false");
    assert_ne!(code, 0);
    assert!(stderr.contains("unknown field `enable`"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
