//! The main job with the bundled SERGIO-prior checkpoint, on small settings: `cellshift demo` on a new
//! simulated network and on a user's screen, and `cellshift bench tta` on a screen wider than the model.

mod common;

use std::path::Path;

use common::{cellshift, cellshift_env};

fn ok(args: &[&str]) -> (String, String) {
    let (code, out, err) = cellshift(args);
    assert_eq!(code, 0, "cellshift {args:?} failed:\n{out}\n{err}");
    (out, err)
}

/// The scores of `method` in a printed markdown table, in column order.
fn row(table: &str, method: &str) -> Vec<String> {
    let line = table
        .lines()
        .find(|l| l.starts_with(&format!("| {method} |")))
        .unwrap_or_else(|| panic!("no `{method}` row in:\n{table}"));
    line.split('|')
        .skip(2)
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

fn mean_of(cell: &str) -> f64 {
    cell.split('±')
        .next()
        .and_then(|m| m.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

const BUNDLED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../checkpoints/mappfn-sergio-small"
);

#[test]
fn demo_predicts_a_new_network_and_a_user_screen_with_the_bundled_model() {
    assert!(
        Path::new(BUNDLED).exists(),
        "the SERGIO-prior checkpoint must ship at {BUNDLED}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let out_s = out.display().to_string();
    // Not a terminal (the output is captured): progress comes as plain lines, here at a short interval.
    let args = [
        "demo",
        "--out",
        &out_s,
        "--cells",
        "24",
        "--seeds",
        "1",
        "--k",
        "4",
        "--threads",
        "2",
    ];
    let (code, stdout, stderr) = cellshift_env(&args, &[("CELLSHIFT_PROGRESS_SECS", "0.001")]);
    assert_eq!(code, 0, "cellshift {args:?} failed:\n{stdout}\n{stderr}");
    for stage in [
        "0. mappfn checkpoint",
        "1. drawing a new regulatory network",
        "2. normalising",
        "3. half of the knock-outs",
        "4. writing the report",
    ] {
        assert!(
            stdout.contains(stage),
            "stage `{stage}` not announced:\n{stdout}"
        );
    }
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("predicting with mappfn: ") && l.contains(" s elapsed")),
        "no progress line for the predictions:\n{stderr}"
    );
    assert!(
        stderr.contains("predicting with mappfn: done in"),
        "{stderr}"
    );
    let mappfn = row(&stdout, "mappfn");
    let control = row(&stdout, "control");
    // Columns: w2, mmd, mean_rmse, pds, mag_ratio, deg_auprc, pearson_delta.
    assert!(
        mean_of(&mappfn[0]).is_finite() && mean_of(&mappfn[0]) > 0.0,
        "{mappfn:?}"
    );
    // The model predicts an effect (the control prediction has magnitude ratio 0).
    assert!(mean_of(&mappfn[4]) > 0.2, "{mappfn:?}");
    assert!(mean_of(&control[4]).abs() < 1e-6, "{control:?}");
    for file in ["report.md", "mean_shifts.png", "simulated_counts.h5ad"] {
        assert!(out.join(file).exists(), "{file} missing");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("| mappfn |") && report.contains("(`mappfn`)"),
        "{report}"
    );
    // The bundled checkpoint carries the sampler chosen for it on validation networks; the demo uses it
    // and the report says so.
    assert!(
        report.contains("4 pooled population(s)")
            && report.contains("clamped at 0")
            && report.contains("ODE solver RK4, 2 steps"),
        "{report}"
    );

    // The same on a user's file: the simulated raw counts, read back and normalised as the model expects.
    let screen = out.join("simulated_counts.h5ad").display().to_string();
    let user_out = dir.path().join("user").display().to_string();
    let (stdout, _) = ok(&[
        "demo",
        "--data",
        &screen,
        "--context",
        "demo_grn",
        "--out",
        &user_out,
        "--cells",
        "24",
        "--seeds",
        "1",
        "--k",
        "4",
        "--threads",
        "2",
        "--reference-sampler",
    ]);
    assert!(stdout.contains("context `demo_grn`"), "{stdout}");
    assert!(mean_of(&row(&stdout, "mappfn")[0]).is_finite());
    let report = std::fs::read_to_string(Path::new(&user_out).join("report.md")).unwrap();
    assert!(
        report.contains(
            "ω = 2, 1 pooled population(s), source-noise temperature 1, ODE solver adaptive Dopri5"
        ),
        "{report}"
    );
    let (code, _, err) = cellshift(&[
        "demo",
        "--data",
        &screen,
        "--context",
        "nope",
        "--out",
        &user_out,
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("context `nope` is not in the data"), "{err}");
}

#[test]
fn tta_pools_subsets_of_a_wider_screen_and_refuses_a_screen_of_the_model_width() {
    let dir = tempfile::tempdir().unwrap();
    let wide = dir.path().join("wide.h5ad").display().to_string();
    ok(&[
        "simulate",
        "--prior",
        "sergio",
        "--genes",
        "60",
        "--cells",
        "40",
        "--seed",
        "5",
        "--log-normalize",
        "--out",
        &wide,
    ]);
    let json = dir.path().join("tta.json");
    let json_s = json.display().to_string();
    let (stdout, _) = ok(&[
        "bench",
        "tta",
        "--model",
        BUNDLED,
        "--data",
        &wide,
        "--k",
        "2",
        "--cells",
        "16",
        "--subsets",
        "3",
        "--seeds",
        "1",
        "--solver",
        "rk4",
        "--solver-steps",
        "4",
        "--threads",
        "2",
        "--reference-sampler",
        "--json",
        &json_s,
    ]);
    assert!(
        stdout.contains("DEG AUPRC on 60 genes (3 subsets of 50"),
        "{stdout}"
    );
    let parsed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let seed = &parsed["seeds"][0];
    assert!(seed["queries"].as_u64().unwrap() >= 10, "{seed}");
    for key in [
        "auprc_tta",
        "auprc_single_subset",
        "auprc_target_only",
        "positive_fraction",
    ] {
        let v = seed[key].as_f64().unwrap_or(f64::NAN);
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }

    let narrow = dir.path().join("narrow.h5ad").display().to_string();
    ok(&[
        "simulate",
        "--prior",
        "sergio",
        "--genes",
        "50",
        "--cells",
        "20",
        "--seed",
        "5",
        "--log-normalize",
        "--out",
        &narrow,
    ]);
    let (code, _, err) = cellshift(&["bench", "tta", "--model", BUNDLED, "--data", &narrow]);
    assert_ne!(code, 0);
    assert!(
        err.contains("augmentation needs more genes than the model"),
        "{err}"
    );
}

#[test]
fn the_linear_baseline_does_not_blow_up_on_the_demo_networks() {
    // The demo's shape: a new 50-gene SERGIO network, 25 measured knock-outs, 25 predicted. With the
    // reference's embedding (rows of G as they are) two query genes got changes of norm ~50 and the
    // baseline scored W2 178 and magnitude ratio 5.7 against the context mean's 29.6 and 0.23.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo").display().to_string();
    let (stdout, _) = ok(&["demo", "--no-model", "--seeds", "1", "--out", &out]);
    let linear = row(&stdout, "linear");
    let context_mean = row(&stdout, "context_mean");
    // Columns: w2, mmd, mean_rmse, pds, mag_ratio, deg_auprc, pearson_delta.
    let (w2, rmse, ratio) = (
        mean_of(&linear[0]),
        mean_of(&linear[2]),
        mean_of(&linear[4]),
    );
    assert!(
        ratio > 0.0 && ratio < 1.5,
        "linear's magnitude ratio {ratio}: {linear:?}"
    );
    assert!(
        w2 < 1.1 * mean_of(&context_mean[0]),
        "linear's W2 {w2} vs the context mean's {}",
        context_mean[0]
    );
    assert!(
        rmse < 1.1 * mean_of(&context_mean[2]),
        "linear's RMSE {rmse} vs the context mean's {}",
        context_mean[2]
    );
}
