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
