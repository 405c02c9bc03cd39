//! Any screen is a suite: `cellshift bench suite --data FILE.h5ad` ranks the methods on the user's own
//! file with the same outputs as the built-in suites, choosing the split by what the screen holds.

mod common;

use common::{cellshift, ok, simulate_linear};

#[test]
fn a_users_screen_is_ranked_like_a_built_in_suite() {
    let dir = tempfile::tempdir().unwrap();
    for (contexts, split_words) in [("2", "hold-out context"), ("1", "one context")] {
        let data = dir.path().join(format!("screen{contexts}.h5ad"));
        let data_s = data.display().to_string();
        simulate_linear(&data, contexts, "4");
        let out = dir.path().join(format!("board{contexts}"));
        let (stdout, _) = ok(&[
            "bench",
            "suite",
            "--data",
            &data_s,
            "--methods",
            "baselines",
            "--seeds",
            "1",
            "--cells",
            "16",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(stdout.contains("(the user's screen)"), "{stdout}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("leaderboard.json")).unwrap())
                .unwrap();
        let suites = json["suites"].as_array().unwrap();
        assert_eq!(suites.len(), 1, "{json}");
        let suite = &suites[0];
        assert!(
            suite["split"].as_str().unwrap().contains(split_words),
            "{contexts} context(s): {}",
            suite["split"]
        );
        let entries = suite["entries"].as_array().unwrap();
        let scored: Vec<&str> = entries
            .iter()
            .filter(|e| e["error"].is_null())
            .map(|e| e["method"].as_str().unwrap_or(""))
            .collect();
        for baseline in ["control", "oracle", "context_mean", "linear"] {
            assert!(
                scored.contains(&baseline),
                "{baseline} not scored: {entries:?}"
            );
        }
        assert!(out.join("leaderboard.md").exists());
    }
    // A missing file is named.
    let (code, _, err) = cellshift(&[
        "bench",
        "suite",
        "--data",
        "/nonexistent/screen.h5ad",
        "--methods",
        "baselines",
        "--out",
        dir.path().join("none").to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("/nonexistent/screen.h5ad"), "{err}");
}

/// The metric summary `key` of `method` in a leaderboard JSON's first suite.
fn summary(board: &serde_json::Value, method: &str, key: &str) -> serde_json::Value {
    board["suites"][0]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["method"] == method)
        .unwrap_or_else(|| panic!("{method} missing: {board}"))["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == key)
        .unwrap_or_else(|| panic!("{method} has no {key}: {board}"))
        .clone()
}

#[test]
fn cross_validation_predicts_every_perturbation_once_with_bootstrap_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("screen.h5ad");
    simulate_linear(&data, "2", "5");
    let board = |protocol: &str| {
        let out = dir.path().join(protocol);
        ok(&[
            "bench",
            "suite",
            "--data",
            data.to_str().unwrap(),
            "--methods",
            "oracle,control,context_mean",
            "--protocol",
            protocol,
            "--folds",
            "3",
            "--columns",
            "mean_rmse,w2,vcc_score",
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
        let md = std::fs::read_to_string(out.join("leaderboard.md")).unwrap();
        (json, md)
    };
    let (standard, _) = board("standard");
    let (cv, md) = board("cv");
    assert_eq!(cv["suites"][0]["protocol"]["protocol"], "cross_validation");
    assert_eq!(cv["suites"][0]["protocol"]["folds"], 3);
    assert_eq!(standard["suites"][0]["protocol"]["protocol"], "standard");
    // The hold-out context's six knock-outs: the standard split tests half, cross-validation all, once.
    let n_std = summary(&standard, "control", "mean_rmse")["n"]
        .as_u64()
        .unwrap();
    let cv_rmse = summary(&cv, "control", "mean_rmse");
    assert_eq!(cv_rmse["n"].as_u64().unwrap(), 6, "{cv_rmse}");
    assert_eq!(n_std, 1, "standard n counts seeds");
    for method in ["oracle", "control", "context_mean"] {
        let m = summary(&cv, method, "mean_rmse");
        let (lo, mean, hi) = (
            m["ci_low"].as_f64().unwrap(),
            m["mean"].as_f64().unwrap(),
            m["ci_high"].as_f64().unwrap(),
        );
        assert!(lo <= mean && mean <= hi && lo < hi, "{method}: {m}");
        assert!(summary(&standard, method, "mean_rmse")["ci_low"].is_null());
    }
    // The VCC score gets a paired interval; the baseline it is scaled against scores 0 on every resample.
    let vcc = summary(&cv, "context_mean", "vcc_score");
    assert_eq!(
        (
            vcc["mean"].as_f64(),
            vcc["ci_low"].as_f64(),
            vcc["ci_high"].as_f64()
        ),
        (Some(0.0), Some(0.0), Some(0.0)),
        "{vcc}"
    );
    assert!(
        summary(&cv, "oracle", "vcc_score")["ci_high"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(md.contains(" [") && md.contains("cross-validation"), "{md}");
    // Reproducible: the same seed gives the same intervals.
    let (again, _) = board("cv");
    assert_eq!(summary(&again, "control", "mean_rmse"), cv_rmse);
    // `auto` is cross-validation on a user's screen.
    let (auto, _) = board("auto");
    assert_eq!(
        auto["suites"][0]["protocol"]["protocol"],
        "cross_validation"
    );
}
