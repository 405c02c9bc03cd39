//! Shared helper of the CLI tests: run the built `cellshift` binary.

use std::process::Command;

/// Runs `cellshift` with `args`; returns (exit status, stdout, stderr).
pub fn cellshift(args: &[&str]) -> (i32, String, String) {
    cellshift_env(args, &[])
}

/// Runs `cellshift` with `args` and extra environment variables; returns (exit status, stdout, stderr).
pub fn cellshift_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cellshift"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run cellshift");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `cellshift` with `args`, asserts that it succeeded, and returns (stdout, stderr).
#[allow(dead_code)] // not every test file that includes this module uses it
pub fn ok(args: &[&str]) -> (String, String) {
    let (code, out, err) = cellshift(args);
    assert_eq!(code, 0, "cellshift {args:?} failed:\n{out}\n{err}");
    (out, err)
}

/// Simulates a small linear-SCM screen (6 genes, 40 cells per condition, `contexts` contexts) into `path`.
#[allow(dead_code)]
pub fn simulate_linear(path: &std::path::Path, contexts: &str, seed: &str) {
    ok(&[
        "simulate",
        "--prior",
        "linear",
        "--genes",
        "6",
        "--cells",
        "40",
        "--contexts",
        contexts,
        "--seed",
        seed,
        "--out",
        path.to_str().expect("a UTF-8 path"),
    ]);
}
