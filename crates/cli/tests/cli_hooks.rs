//! The commands that go through a method's hooks (`import`, `bench speed`, `bench sweep`, `--split`)
//! refuse a method without that hook with one line naming the methods that have it.

mod common;

use common::cellshift;

fn fails_with(args: &[&str], expected: &[&str]) {
    let (code, _, stderr) = cellshift(args);
    assert_ne!(code, 0, "{args:?} succeeded");
    for e in expected {
        assert!(stderr.contains(e), "{args:?}: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_method_without_the_hook_is_refused_naming_the_methods_that_have_it() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("model.safetensors");
    let data = tmp.path().join("screen.h5ad");
    std::fs::write(&reference, b"not read").unwrap();
    std::fs::write(&data, b"not read").unwrap();
    let out = tmp.path().join("out");
    fails_with(
        &[
            "import",
            "--method",
            "celltarnet",
            "--reference",
            reference.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[
            "method celltarnet has no reference importer (methods with one: scdfm)",
            "cellshift train",
        ],
    );
    assert!(!out.exists());
    // Every method has a speed benchmark; one without a reference implementation refuses to be timed
    // against it, naming those that can.
    fails_with(
        &["bench", "speed", "--method", "c3tl", "--against-reference"],
        &[
            "has no reference implementation to time against; drop --against-reference",
            "scdfm",
        ],
    );
    fails_with(
        &[
            "bench",
            "sweep",
            "--method",
            "mappfn",
            "--suites",
            "combinatorial",
        ],
        &["method mappfn has no sweep benchmark (methods with one: c3tl, celltarnet)"],
    );
    fails_with(
        &["bench", "speed", "--method", "nosuch"],
        &["unknown method `nosuch`"],
    );
    // A hook's own settings are checked by name.
    fails_with(
        &["bench", "speed", "--method", "c3tl", "--option", "epoch=1"],
        &["unknown field `epoch`", "epochs"],
    );
    // A split no method has is named with the valid ones.
    fails_with(
        &[
            "bench",
            "--baseline",
            "control",
            "--data",
            data.to_str().unwrap(),
            "--split",
            "diagonal",
        ],
        &[
            "unknown split `diagonal`",
            "standard, holdout, additive, unseen, combinations",
        ],
    );
}

#[test]
fn c3tl_speed_times_its_epochs_through_the_hook() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("c3tl-speed.json");
    let (code, stdout, stderr) = cellshift(&[
        "bench",
        "speed",
        "--method",
        "c3tl",
        "--preset",
        "tiny",
        "--genes",
        "16",
        "--option",
        "contexts=2",
        "--option",
        "perturbations=6",
        "--option",
        "epochs=1",
        "--threads",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("| tiny | f32 |"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["genes"], 16);
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
}

#[test]
fn scdfm_speed_times_its_steps_and_reports_the_reference_side_by_side() {
    let tmp = tempfile::tempdir().unwrap();
    // A stand-in for the authors' timing script run by a Python with torch: it prints their JSON lines.
    let python = tmp.path().join("python");
    std::fs::write(
        &python,
        "#!/bin/sh\necho '{\"what\": \"train_step\", \"rep\": 0, \"seconds\": 0.5}'\n\
         echo '{\"summary\": {\"train_step\": {\"n\": 1, \"min\": 0.5, \"median\": 0.5}, \
         \"rk4_step_4evals\": {\"n\": 1, \"min\": 0.25, \"median\": 0.25}}}'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = tmp.path().join("time_reference.py");
    std::fs::write(&script, b"# run by the stand-in").unwrap();
    let json = tmp.path().join("scdfm-speed.json");
    let option = |k: &str, v: &std::path::Path| format!("{k}={}", v.display());
    let (script_opt, reference_opt) = (option("script", &script), option("reference", tmp.path()));
    // `bench speed --method scdfm` at a tiny shape against the reference run by `python`.
    let against = |python: &std::path::Path, extra: &[&str]| {
        let python_opt = option("python", python);
        let mut args = vec![
            "bench",
            "speed",
            "--method",
            "scdfm",
            "--preset",
            "tiny",
            "--genes",
            "8",
            "--option",
            "iters=1",
            "--option",
            "warmup=0",
            "--against-reference",
            "--option",
            &python_opt,
            "--option",
            &script_opt,
            "--option",
            &reference_opt,
        ];
        args.extend_from_slice(extra);
        cellshift(&args)
    };
    let (code, stdout, stderr) = against(
        &python,
        &["--threads", "1", "--json", json.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("| cellshift | tiny |"), "{stdout}");
    assert!(
        stdout.contains("| scDFM authors (PyTorch) | tiny |"),
        "{stdout}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let timings = v["timings"].as_array().unwrap();
    assert_eq!(timings.len(), 2);
    let ours = timings[0]["train_step_seconds"].as_f64().unwrap();
    assert!(ours.is_finite() && ours > 0.0, "{v}");
    assert_eq!(timings[1]["train_step_seconds"], 0.5);
    assert_eq!(timings[1]["rk4_step_seconds"], 0.25);
    // A Python that cannot be run is named with the fix.
    let (code, _, stderr) = against(&tmp.path().join("no-such-python"), &[]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("could not run") && stderr.contains("--option python=PATH"),
        "{stderr}"
    );
}
