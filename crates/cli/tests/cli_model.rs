//! The model commands end to end on tiny configurations: pretrain (and resume), predict, bench, finetune,
//! and the clear errors of bad input (gene mismatch, unencodable query, K too large, corrupted checkpoint).

mod common;

use std::path::Path;

use cellshift_data::h5ad::{read_h5ad, ReadOptions, UnsValue};
use common::{cellshift, simulate_linear};

fn ok(args: &[&str]) -> (String, String) {
    let (code, out, err) = cellshift(args);
    assert_eq!(code, 0, "cellshift {args:?} failed:\n{out}\n{err}");
    (out, err)
}

fn fails(args: &[&str], needles: &[&str]) {
    let (code, out, err) = cellshift(args);
    assert_ne!(code, 0, "cellshift {args:?} should fail:\n{out}\n{err}");
    for needle in needles {
        assert!(
            err.contains(needle),
            "error of {args:?} lacks `{needle}`:\n{err}"
        );
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// A tiny pre-trained run directory on 6-gene linear SCMs, and a 2-context test file.
fn setup(dir: &Path) -> (String, String) {
    let run = dir.join("run").display().to_string();
    let data = dir.join("scm.h5ad").display().to_string();
    simulate_linear(&dir.join("scm.h5ad"), "2", "77");
    ok(&[
        "pretrain",
        "--prior",
        "linear",
        "--config",
        "tiny",
        "--genes",
        "6",
        "--k",
        "2",
        "--cells",
        "8",
        "--steps",
        "5",
        "--stop-at",
        "3",
        "--threads",
        "1",
        "--out",
        &run,
    ]);
    (run, data)
}

#[test]
fn pretrain_resumes_and_predict_writes_the_requested_cells() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, data) = setup(tmp.path());
    // Repeating the command without --stop-at continues from micro-batch 3 to the end of the run.
    let (_, err) = ok(&[
        "pretrain",
        "--prior",
        "linear",
        "--config",
        "tiny",
        "--genes",
        "6",
        "--k",
        "2",
        "--cells",
        "8",
        "--steps",
        "5",
        "--threads",
        "1",
        "--out",
        &run,
    ]);
    assert!(err.contains("stopped at micro-batch 5 of 5"), "{err}");
    let out = tmp.path().join("pred.h5ad");
    ok(&[
        "predict",
        "--model",
        &run,
        "--data",
        &data,
        "--context",
        "linear_1",
        "--query",
        "X02,X04",
        "--value",
        "1.1",
        "--k",
        "3",
        "--cells",
        "7",
        "--solver",
        "euler",
        "--solver-steps",
        "3",
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let pred = read_h5ad(&out, &ReadOptions::default()).unwrap();
    let x = pred.x.as_ref().unwrap().to_dense();
    assert_eq!(x.dim(), (14, 6));
    assert!(x.iter().all(|v| v.is_finite()));
    let labels = pred.obs.column("perturbation").unwrap().as_strings();
    assert_eq!(&labels[..7], vec!["X02".to_string(); 7].as_slice());
    assert_eq!(&labels[7..], vec!["X04".to_string(); 7].as_slice());
    assert_eq!(pred.var.index[0], "X00");
    // Provenance: which measured perturbations served as context for each query (K = 3, never the query).
    let meta = pred.uns.get("cellshift").expect("uns[cellshift]");
    let used = meta
        .get("context_experiments")
        .and_then(|e| e.get("X02"))
        .expect("X02");
    let UnsValue::StrArray(used) = used else {
        panic!("string array expected, got {used:?}")
    };
    assert_eq!(used.len(), 3);
    assert!(!used.contains(&"X02".to_string()));
}

#[test]
fn bench_scores_model_and_baseline_into_json() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, data) = setup(tmp.path());
    let json = tmp.path().join("m.json");
    let (out, _) = ok(&[
        "bench",
        "--model",
        &run,
        "--data",
        &data,
        "--split",
        "holdout",
        "--k",
        "2",
        "--cells",
        "10",
        "--seeds",
        "2",
        "--metrics",
        "mappfn",
        "--solver",
        "euler",
        "--solver-steps",
        "2",
        "--threads",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.contains("| mappfn |"), "{out}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let w2 = v["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "w2")
        .unwrap();
    assert!(w2["mean"].as_f64().unwrap() > 0.0 && w2["n"] == 2, "{w2}");
    // Two seeds × two hold-out contexts.
    assert_eq!(v["reports"].as_array().unwrap().len(), 4);
    let (out, _) = ok(&[
        "bench",
        "--baseline",
        "oracle",
        "--data",
        &data,
        "--split",
        "holdout",
        "--k",
        "0",
        "--cells",
        "10",
        "--seeds",
        "2",
        "--metrics",
        "mappfn",
    ]);
    assert!(out.contains("| oracle |"), "{out}");
    // The context-size curve: one row per K, a JSON entry per K and a PNG.
    let (curve_json, png) = (tmp.path().join("k.json"), tmp.path().join("k.png"));
    let (out, _) = ok(&[
        "bench",
        "--model",
        &run,
        "--data",
        &data,
        "--split",
        "holdout",
        "--k-curve",
        "0,2",
        "--cells",
        "8",
        "--seeds",
        "1",
        "--metrics",
        "mappfn",
        "--solver",
        "euler",
        "--solver-steps",
        "2",
        "--threads",
        "1",
        "--json",
        curve_json.to_str().unwrap(),
        "--plot",
        png.to_str().unwrap(),
    ]);
    assert!(
        out.contains("| mappfn K=0 |") && out.contains("| mappfn K=2 |"),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&curve_json).unwrap()).unwrap();
    let ks: Vec<u64> = v["k_curve"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["k"].as_u64().unwrap())
        .collect();
    assert_eq!(ks, vec![0, 2]);
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
}

#[test]
fn finetune_continues_from_the_pretrained_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, data) = setup(tmp.path());
    let tuned = tmp.path().join("tuned").display().to_string();
    let (_, err) = ok(&[
        "finetune",
        "--model",
        &run,
        "--data",
        &data,
        "--out",
        &tuned,
        "--k",
        "2",
        "--cells",
        "8",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--accumulation",
        "1",
        "--threads",
        "1",
    ]);
    assert!(
        err.contains("stopped at micro-batch 2 of 2, run finished"),
        "{err}"
    );
}

#[test]
fn bad_input_to_model_commands_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, data) = setup(tmp.path());
    let out = tmp.path().join("p.h5ad").display().to_string();
    let predict = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "predict",
            "--model",
            &run,
            "--data",
            &data,
            "--cells",
            "5",
            "--solver",
            "euler",
            "--solver-steps",
            "2",
            "--threads",
            "1",
            "--out",
            &out,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run_args = |a: Vec<String>| a;
    let check = |extra: &[&str], needles: &[&str]| {
        let a = run_args(predict(extra));
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        fails(&refs, needles);
    };
    // A query whose target is not a gene of the data cannot be encoded.
    check(
        &["--context", "linear_0", "--query", "NOPE", "--k", "2"],
        &["NOPE", "not measured"],
    );
    // More context experiments than the context has besides the query.
    check(
        &["--context", "linear_0", "--query", "X01", "--k", "6"],
        &["K = 6", "only 5", "--k 5"],
    );
    // An unknown context, and a missing --context with several contexts.
    check(
        &["--context", "nowhere", "--query", "X01"],
        &["nowhere", "linear_0"],
    );
    check(&["--query", "X01"], &["--context", "2 contexts"]);
    // Genes of the data ≠ genes of the checkpoint.
    let wide = tmp.path().join("wide.h5ad").display().to_string();
    ok(&[
        "simulate", "--prior", "linear", "--genes", "7", "--cells", "20", "--out", &wide,
    ]);
    let (code, _, err) = cellshift(&[
        "predict", "--model", &run, "--data", &wide, "--query", "X01", "--k", "2", "--out", &out,
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("7 genes") && err.contains("trained on 6"),
        "{err}"
    );
    // A corrupted checkpoint: truncate the weights file.
    let latest = std::fs::read_to_string(Path::new(&run).join("LATEST")).unwrap();
    let weights = Path::new(&run)
        .join(latest.trim())
        .join("checkpoint.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    check(
        &["--context", "linear_0", "--query", "X01", "--k", "2"],
        &["unusable"],
    );
    assert!(
        !Path::new(&out).exists(),
        "no output may be written on failure"
    );
}

#[test]
fn bench_speed_compares_solvers_on_the_same_noise() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, data) = setup(tmp.path());
    let json = tmp.path().join("speed.json");
    let (out, _) = ok(&[
        "bench",
        "speed",
        "--method",
        "mappfn",
        "--model",
        &run,
        "--data",
        &data,
        "--option",
        "k=2",
        "--cells",
        "8",
        "--option",
        "queries=2",
        "--option",
        "fast_reference=true",
        "--threads",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.contains("sampling noise"), "{out}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let solvers = v["solvers"].as_array().unwrap();
    let evals = |name: &str| {
        solvers
            .iter()
            .find(|s| s["solver"].as_str().unwrap().starts_with(name))
            .map(|s| s["evaluations"].as_u64().unwrap())
            .unwrap()
    };
    // Fixed-step solvers use exactly their evaluation budgets; RK4 costs 4 per step.
    assert_eq!(evals("Euler { steps: 10 }"), 10);
    assert_eq!(evals("Rk4 { steps: 3 }"), 12);
    // The reference compared with itself is exactly zero; every other solver is close to it.
    assert_eq!(solvers[0]["w2_to_reference"].as_f64().unwrap(), 0.0);
    assert!(solvers
        .iter()
        .all(|s| s["w2_to_reference"].as_f64().unwrap().abs() < 1.0));
}

#[test]
fn an_exported_checkpoint_recommends_its_sampler_and_options_override_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, data) = setup(tmp.path());
    let exported = tmp.path().join("calibrated").display().to_string();
    let (out, _) = ok(&[
        "export",
        "--model",
        &run,
        "--out",
        &exported,
        "--recommend-guidance",
        "1",
        "--recommend-populations",
        "2",
        "--recommend-temperature",
        "0.5",
        "--recommend-nonnegative",
        "true",
        "--recommend-chosen-on",
        "validation networks",
    ]);
    assert!(
        out.contains("populations = 2") && out.contains("Half"),
        "{out}"
    );
    // The half-precision export predicts, with the sampler that wins: options given, then the checkpoint's
    // settings, then the reference.
    let out_path = tmp.path().join("p.h5ad");
    let predict = |extra: &[&str]| -> (String, Vec<f32>, String) {
        let mut a = vec![
            "predict",
            "--model",
            &exported,
            "--data",
            &data,
            "--context",
            "linear_0",
            "--query",
            "X01",
            "--k",
            "2",
            "--cells",
            "6",
            "--solver",
            "euler",
            "--solver-steps",
            "2",
            "--threads",
            "1",
            "--out",
            out_path.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        let (_, err) = ok(&a);
        let pred = read_h5ad(&out_path, &ReadOptions::default()).unwrap();
        let sampler = pred.uns.get("cellshift").unwrap().get("sampler").unwrap();
        let x = pred.x.as_ref().unwrap().to_dense();
        (format!("{sampler:?}"), x.iter().copied().collect(), err)
    };
    let (sampler, x, err) = predict(&[]);
    for field in [
        "guidance: 1.0",
        "populations: 2",
        "nonnegative: true",
        "temperature: 0.5",
    ] {
        assert!(sampler.contains(field), "{field} missing in {sampler}");
    }
    assert!(
        x.iter().all(|&v| v >= 0.0),
        "the recommended clamp was not applied"
    );
    assert!(
        err.contains("recommended settings") && err.contains("validation networks"),
        "{err}"
    );
    let (sampler, x, _) = predict(&["--populations", "3", "--nonnegative", "false"]);
    for field in ["populations: 3", "nonnegative: false", "temperature: 0.5"] {
        assert!(sampler.contains(field), "{field} missing in {sampler}");
    }
    assert!(
        x.iter().any(|&v| v < 0.0),
        "unclamped cells of a linear SCM go negative"
    );
    let (sampler, _, _) = predict(&["--reference-sampler"]);
    for field in [
        "guidance: 2.0",
        "populations: 1",
        "nonnegative: false",
        "temperature: 1.0",
    ] {
        assert!(sampler.contains(field), "{field} missing in {sampler}");
    }
    // Unusable settings are refused before anything is written.
    let bad = tmp.path().join("bad").display().to_string();
    fails(
        &[
            "export",
            "--model",
            &run,
            "--out",
            &bad,
            "--recommend-populations",
            "0",
            "--recommend-chosen-on",
            "x",
        ],
        &["populations must be at least 1"],
    );
    assert!(!Path::new(&bad).exists());
    fails(
        &[
            "export",
            "--model",
            &run,
            "--out",
            &bad,
            "--recommend-populations",
            "2",
        ],
        &["--recommend-chosen-on"],
    );
}
