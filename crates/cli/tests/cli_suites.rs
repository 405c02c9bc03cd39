//! The benchmark suites end to end: `simulate --suite` writes seeded, non-trivial suites (contexts that
//! really differ; doubles that knock out both genes, some non-additive), and `bench suite` ranks the
//! baselines as the ground truth demands and reports "n/a" with a reason where a method cannot apply.

mod common;

use std::path::Path;

use cellshift_data::h5ad::{read_perturbation_data, PerturbationColumns, ReadOptions};
use cellshift_data::{PerturbationData, Treatment};
use common::cellshift;

fn read(path: &Path) -> PerturbationData {
    let columns = PerturbationColumns {
        context: Some("context".into()),
        ..PerturbationColumns::default()
    };
    read_perturbation_data(path, &columns, &ReadOptions::matrix_only()).unwrap()
}

fn stats(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn multi_context_suite_is_seeded_and_its_cell_types_differ() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, seed: &str| {
        let out = dir.path().join(format!("{name}.h5ad"));
        let json = dir.path().join(format!("{name}.json"));
        let (code, stdout, stderr) = cellshift(&[
            "simulate",
            "--suite",
            "multi-context",
            "--scale",
            "tiny",
            "--seed",
            seed,
            "--out",
            out.to_str().unwrap(),
            "--stats",
            json.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stdout.contains("3 contexts") && stdout.contains("noise floor"),
            "{stdout}"
        );
        (read(&out), stats(&json))
    };
    let (a, sa) = run("a", "1");
    let (b, _) = run("b", "1");
    let (c, _) = run("c", "2");
    assert_eq!(a.contexts, vec!["grn0/ct0", "grn0/ct1", "grn0/ct2"]);
    assert_eq!(a.scale, cellshift_data::ExpressionScale::RawCounts);
    assert_eq!(a.x, b.x, "the same seed must reproduce the suite");
    assert_eq!(a.cell_names, b.cell_names);
    assert_ne!(a.x, c.x);
    let s = &sa["stats"];
    let ratio = s["ratio_to_noise"].as_f64().unwrap();
    assert!(ratio > 1.25, "contexts barely differ: {s}");
    assert!(
        s["mean_abs_between_contexts_downstream"].as_f64().unwrap()
            > s["noise_floor"].as_f64().unwrap(),
        "{s}"
    );
    assert!(sa["seconds"].as_f64().unwrap() < 30.0, "{sa}");
}

#[test]
fn combinatorial_suite_knocks_out_both_genes_of_each_double() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("combo.h5ad");
    let json = dir.path().join("combo.json");
    let (code, stdout, stderr) = cellshift(&[
        "simulate",
        "--suite",
        "combinatorial",
        "--seed",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--stats",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("non-additive"), "{stdout}");
    let data = read(&out);
    let s = stats(&json);
    let n_doubles = s["stats"]["n_doubles"].as_u64().unwrap() as usize;
    assert!((20..=30).contains(&n_doubles), "{s}");
    let fraction = s["stats"]["non_additive_fraction"].as_f64().unwrap();
    assert!(fraction > 0.0 && fraction < 1.0, "{s}");
    let mut seen = 0;
    for cond in data.conditions() {
        if let Treatment::Combination { genes } = &data.treatments[cond.treatment] {
            seen += 1;
            assert_eq!(genes.len(), 2);
            for gene in genes {
                let g = data.gene_index(gene).unwrap();
                assert!(cond.cells.iter().all(|&r| data.x[[r, g]] == 0.0));
            }
        }
    }
    assert_eq!(seen, n_doubles);
}

#[test]
fn leaderboard_ranks_the_oracle_first_and_reports_what_cannot_apply() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("board");
    let (code, stdout, stderr) = cellshift(&[
        "bench",
        "suite",
        "--suites",
        "multi-context,combinatorial,papalexi",
        "--methods",
        "oracle,control,perturbation_mean,additive,closest_context",
        "--scale",
        "tiny",
        "--seeds",
        "2",
        "--cells",
        "64",
        "--shared",
        dir.path().join("no-shared").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("suite `papalexi` skipped") && stderr.contains("--shared"),
        "{stderr}"
    );
    let board = stats(&out.join("leaderboard.json"));
    let suite = |name: &str| {
        board["suites"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["suite"] == name)
            .unwrap()
            .clone()
    };
    let rank = |s: &serde_json::Value, method: &str| {
        s["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["method"] == method)
            .unwrap()["rank"]
            .as_u64()
    };
    let multi = suite("multi-context");
    assert_eq!(rank(&multi, "oracle"), Some(1), "{multi}");
    // The same knock-out's effect in the other cell types beats predicting no effect at all.
    assert!(
        rank(&multi, "perturbation_mean").unwrap() < rank(&multi, "control").unwrap(),
        "{multi}"
    );
    let combo = suite("combinatorial");
    assert_eq!(rank(&combo, "oracle"), Some(1), "{combo}");
    // One context: nothing to transfer from, so closest_context cannot apply — said with a reason.
    let closest = combo["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["method"] == "closest_context")
        .unwrap()
        .clone();
    assert_eq!(closest["status"], "not_applicable", "{closest}");
    assert!(!closest["reason"].as_str().unwrap().is_empty());
    assert!(suite("papalexi")["skipped"].is_string());
    let md = std::fs::read_to_string(out.join("leaderboard.md")).unwrap();
    assert!(
        md.contains("| 1 | oracle |") && md.contains("n/a: "),
        "{md}"
    );
    for png in ["multi-context.png", "combinatorial.png"] {
        let bytes = std::fs::read(out.join(png)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }
    assert!(stdout.contains("# Leaderboard"), "{stdout}");
}

#[test]
fn mappfn_is_not_applicable_where_targets_are_not_measured() {
    let shared = cellshift_data::testing::shared_dir(env!("CARGO_MANIFEST_DIR"));
    if cellshift_data::testing::require_path(&shared.join("data/perturbench/devel.h5ad")).is_none()
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("board");
    let (code, _, stderr) = cellshift(&[
        "bench",
        "suite",
        "--suites",
        "perturbench-norman",
        "--methods",
        "mappfn,control",
        "--seeds",
        "1",
        "--cells",
        "64",
        "--shared",
        shared.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let board = stats(&out.join("leaderboard.json"));
    let entries = board["suites"][0]["entries"].as_array().unwrap().clone();
    let mappfn = entries.iter().find(|e| e["method"] == "mappfn").unwrap();
    assert_eq!(mappfn["status"], "not_applicable", "{mappfn}");
    assert_eq!(mappfn["declared"], true, "{mappfn}");
    assert!(
        mappfn["reason"].as_str().unwrap().contains("one-hot"),
        "{mappfn}"
    );
    let control = entries.iter().find(|e| e["method"] == "control").unwrap();
    assert_eq!(control["rank"], 1, "{control}");
}

#[test]
fn leaderboard_columns_model_options_and_the_train_seed() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, train_seed: &str| {
        let out = dir.path().join(name);
        let (code, _, stderr) = cellshift(&[
            "bench",
            "suite",
            "--suites",
            "combinatorial",
            "--methods",
            "scdfm,additive",
            "--model-option",
            "scdfm:training.steps=5",
            "--model-option",
            "scdfm:training.grid_points=3",
            "--scale",
            "tiny",
            "--seeds",
            "1",
            "--cells",
            "32",
            "--columns",
            "celleval-paper",
            "--train-seed",
            train_seed,
            "--threads",
            "1",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stderr.contains("added it to --metrics"), "{stderr}");
        let md = std::fs::read_to_string(out.join("leaderboard.md")).unwrap();
        assert!(
            md.contains("| mean_rmse | mse | mae | de_spearman_lfc_sig |"),
            "{md}"
        );
        let board = stats(&out.join("leaderboard.json"));
        let toy = board["suites"][0]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["method"] == "scdfm")
            .unwrap()
            .clone();
        let steps = std::fs::read_to_string(out.join("runs/combinatorial/scdfm/LATEST")).unwrap();
        assert!(steps.trim().ends_with("0000005"), "{steps}");
        let metric = |key: &str| {
            toy["summary"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["metric"] == key)
                .unwrap_or_else(|| panic!("{key} missing: {toy}"))["mean"]
                .as_f64()
                .unwrap()
        };
        assert!(metric("de_spearman_lfc_sig").is_finite());
        metric("mean_rmse")
    };
    let (a, b, c) = (run("a", "0"), run("b", "0"), run("c", "1"));
    assert_eq!(a, b, "the same train seed must give the same model");
    assert_ne!(a, c, "another train seed must retrain differently");
    let (code, _, stderr) = cellshift(&[
        "bench",
        "suite",
        "--suites",
        "combinatorial",
        "--methods",
        "additive",
        "--columns",
        "mean_rmse,nope",
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("unknown metric `nope`"), "{stderr}");
}

#[test]
fn a_residual_method_starts_as_its_baseline() {
    // Five training steps teach scDFM nothing; as a residual of `additive` its calibrated gate closes and
    // it scores exactly as the baseline, where the plain five-step scDFM is worse.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("board");
    let (code, _, stderr) = cellshift(&[
        "bench",
        "suite",
        "--suites",
        "combinatorial",
        "--methods",
        "scdfm,scdfm:tiny,additive,control",
        "--model-option",
        "scdfm:training.steps=5",
        "--model-option",
        "scdfm:tiny:training.steps=5",
        "--model-option",
        "scdfm:tiny:residual=additive",
        "--model-option",
        "control:residual=additive",
        "--scale",
        "tiny",
        "--seeds",
        "1",
        "--cells",
        "32",
        "--threads",
        "1",
        "--protocol",
        "standard",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let board = stats(&out.join("leaderboard.json"));
    let entry = |method: &str| {
        board["suites"][0]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["method"] == method)
            .unwrap()
            .clone()
    };
    let metric = |method: &str, key: &str| {
        entry(method)["summary"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["metric"] == key)
            .unwrap()["mean"]
            .as_f64()
            .unwrap()
    };
    for key in ["mean_rmse", "w2", "mmd", "pearson_delta"] {
        assert_eq!(metric("scdfm:tiny", key), metric("additive", key), "{key}");
    }
    assert!(metric("scdfm", "mean_rmse") > metric("additive", "mean_rmse"));
    let control = entry("control");
    assert_eq!(control["status"], "not_applicable", "{control}");
    assert!(
        control["reason"]
            .as_str()
            .unwrap()
            .contains("learned methods"),
        "{control}"
    );
}
