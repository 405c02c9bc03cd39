//! `auto` chooses among the listed contenders by cross-validation on the training perturbations alone:
//! on the leaderboard (a contender) and in `predict --method auto`.

mod common;

use common::{cellshift, ok, simulate_linear};

#[test]
fn auto_on_the_leaderboard_reports_its_choice_per_fold() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("screen.h5ad");
    simulate_linear(&data, "2", "6");
    let out = dir.path().join("board");
    let (stdout, _) = ok(&[
        "bench",
        "suite",
        "--data",
        data.to_str().unwrap(),
        "--methods",
        "auto,control,context_mean,perturbation_mean,oracle",
        "--protocol",
        "cv",
        "--folds",
        "3",
        "--seeds",
        "1",
        "--cells",
        "16",
        "--out",
        out.to_str().unwrap(),
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("leaderboard.json")).unwrap())
            .unwrap();
    let entries = json["suites"][0]["entries"].as_array().unwrap();
    let auto = entries.iter().find(|e| e["method"] == "auto").unwrap();
    assert_eq!(auto["status"], "scored", "{auto}");
    let choices = auto["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3, "one choice per outer fold: {auto}");
    for choice in choices {
        let inner = choice["inner"].as_array().unwrap();
        let names: Vec<&str> = inner.iter().map(|s| s["name"].as_str().unwrap()).collect();
        // The oracle reads the answer and auto never chooses it (nor itself).
        assert_eq!(
            names,
            ["control", "context_mean", "perturbation_mean"],
            "{choice}"
        );
        // The winner has the lowest inner score.
        let best = inner
            .iter()
            .min_by(|a, b| {
                a["mean_rmse"]
                    .as_f64()
                    .unwrap()
                    .total_cmp(&b["mean_rmse"].as_f64().unwrap())
            })
            .unwrap();
        assert_eq!(choice["chosen"], best["name"], "{choice}");
    }
    assert!(stdout.contains("`auto` chose, per fit"), "{stdout}");
}

#[test]
fn predict_with_auto_never_uses_the_queried_perturbations() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("screen.h5ad");
    simulate_linear(&data, "2", "4");
    let out = dir.path().join("pred.h5ad");
    let (code, stdout, stderr) = cellshift(&[
        "predict",
        "--method",
        "auto",
        "--data",
        data.to_str().unwrap(),
        "--context",
        "linear_0",
        "--query",
        "X01,X02",
        "--k",
        "3",
        "--cells",
        "20",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    // Six knock-outs in the context, two queried: auto scores its candidates on the other four.
    assert!(stderr.contains("over 4 perturbations"), "{stderr}");
    assert!(stderr.contains("auto chose "), "{stderr}");
    assert!(stdout.contains("wrote 40 predicted cells"), "{stdout}");
    let (code, _, stderr) = cellshift(&[
        "predict",
        "--method",
        "magic",
        "--data",
        data.to_str().unwrap(),
        "--query",
        "X01",
        "--out",
        dir.path().join("x.h5ad").to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("use --method auto"), "{stderr}");
    assert!(!dir.path().join("x.h5ad").exists());
}
