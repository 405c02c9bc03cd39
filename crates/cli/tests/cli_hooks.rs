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
    fails_with(
        &["bench", "speed", "--method", "scdfm"],
        &["method scdfm has no speed benchmark (methods with one: mappfn, c3tl, celltarnet, toy-gaussian)"],
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
