//! Shared helper of the CLI tests: run the built `cellshift` binary.

use std::process::Command;

/// Runs `cellshift` with `args`; returns (exit status, stdout, stderr).
pub fn cellshift(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cellshift"))
        .args(args)
        .output()
        .expect("run cellshift");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `cellshift` with `args` and extra environment variables; returns (exit status, stdout, stderr).
#[allow(dead_code)] // not every test file that includes this module uses it
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
