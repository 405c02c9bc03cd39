//! The `cellshift` binary on bad input: a one-line error naming the problem and the fix, a non-zero
//! exit status, no panic, and no output file left behind.

use std::path::{Path, PathBuf};
mod common;

use common::cellshift;

/// Asserts a clean failure: exit 1, exactly one `error:` line on stderr containing every `needle`,
/// and no panic message.
fn assert_clean_failure(args: &[&str], needles: &[&str]) {
    let (code, _, stderr) = cellshift(args);
    assert_eq!(code, 1, "exit status for {args:?}; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic for {args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one error line for {args:?}, got: {stderr}"
    );
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "`{needle}` missing from: {}",
            lines[0]
        );
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/tests/fixtures")
        .join(name)
}

fn assert_no_files(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

#[test]
fn missing_file_is_named() {
    assert_clean_failure(
        &["inspect", "/nonexistent/screen.h5ad"],
        &["not found", "/nonexistent/screen.h5ad"],
    );
}

#[test]
fn non_hdf5_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.h5ad");
    std::fs::write(&path, "this is text, not HDF5").unwrap();
    assert_clean_failure(&["inspect", path.to_str().unwrap()], &["not an HDF5 file"]);
}

#[test]
fn preprocess_failure_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.h5ad");
    std::fs::write(&input, "not hdf5").unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out.h5ad");
    assert_clean_failure(
        &[
            "preprocess",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &["HDF5"],
    );
    assert_no_files(out_dir.path());
}

#[test]
fn wrong_perturbation_column_lists_columns() {
    let file = fixture("perturbation.h5ad");
    if !file.exists() {
        panic!("fixture {} missing", file.display());
    }
    assert_clean_failure(
        &[
            "inspect",
            file.to_str().unwrap(),
            "--perturbation-column",
            "guide_target",
        ],
        &["guide_target", "--perturbation-column", "perturbation"],
    );
}

#[test]
fn unknown_baseline_lists_valid_names() {
    let file = fixture("perturbation.h5ad");
    assert_clean_failure(
        &[
            "evaluate",
            "--baseline",
            "magic",
            "--data",
            file.to_str().unwrap(),
            "--control",
            "non-targeting",
        ],
        &["magic", "perturbation_mean"],
    );
}

#[test]
fn invalid_normalize_value_is_explained() {
    let file = fixture("perturbation.h5ad");
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out.h5ad");
    assert_clean_failure(
        &[
            "preprocess",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--normalize",
            "lots",
            "--control",
            "non-targeting",
        ],
        &["--normalize", "median"],
    );
    assert_no_files(out_dir.path());
}

#[test]
fn every_command_has_help() {
    for command in ["inspect", "preprocess", "simulate", "evaluate", "demo"] {
        let (code, stdout, _) = cellshift(&[command, "--help"]);
        assert_eq!(code, 0, "{command} --help");
        assert!(
            stdout.contains("Usage: cellshift"),
            "{command} --help printed: {stdout}"
        );
    }
}
