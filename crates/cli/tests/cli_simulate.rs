//! `cellshift simulate` end to end: a user network (JSON or CSV edge list) and a random prior are written
//! as `.h5ad` files that `cellshift inspect` reads back with the right conditions.

use std::path::Path;
mod common;

use common::cellshift;

#[test]
fn csv_network_with_listed_knockouts_round_trips_through_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let edges = dir.path().join("net.csv");
    std::fs::write(&edges, "regulator,target,K,n\nA,B,3.0,2\nB,C,-2.0,2\n").unwrap();
    let out = dir.path().join("sim.h5ad");
    let (code, stdout, stderr) = cellshift(&[
        "simulate",
        "--grn",
        edges.to_str().unwrap(),
        "--knockouts",
        "A,C",
        "--cells",
        "50",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("150 cells × 3 genes") && stdout.contains("clean expression"),
        "{stdout}"
    );
    let (code, summary, stderr) = cellshift(&["inspect", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(summary.contains("cells × genes     150 × 3"), "{summary}");
    assert!(
        summary.contains("control label     control (50 cells)"),
        "{summary}"
    );
    for label in ["A", "C"] {
        assert!(
            summary
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{label} ")) && l.contains("50")),
            "{summary}"
        );
    }
}

#[test]
fn golden_json_network_simulates_control_and_knockout() {
    let grn = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/golden/sergio/chain2_activation.json");
    if cellshift_data::testing::require_path(&grn).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("chain.h5ad");
    let (code, stdout, stderr) = cellshift(&[
        "simulate",
        "--grn",
        grn.to_str().unwrap(),
        "--knockouts",
        "all",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    // The golden network has technical noise, so the output is raw counts with 200 cells per condition;
    // each knock-out is either written or reported as discarded (the reference's all-zero-cell rule).
    assert!(
        stdout.contains("× 2 genes") && stdout.contains("(raw counts)"),
        "{stdout}"
    );
    let (_, summary, _) = cellshift(&["inspect", out.to_str().unwrap()]);
    for gene in ["A", "B"] {
        let written = summary
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{gene} ")) && l.contains("200"));
        let discarded = stderr.contains("discarded") && stderr.contains(gene);
        assert!(
            written ^ discarded,
            "knock-out {gene}: written {written}, discarded {discarded}\n{summary}\n{stderr}"
        );
    }
    assert!(
        summary.contains("control label     control (200 cells)"),
        "{summary}"
    );
}

#[test]
fn random_linear_prior_writes_several_contexts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scm.h5ad");
    let (code, stdout, stderr) = cellshift(&[
        "simulate",
        "--prior",
        "linear",
        "--contexts",
        "2",
        "--genes",
        "5",
        "--cells",
        "30",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    // Each SCM: observational + one intervention per node = 6 conditions × 30 cells; two SCMs.
    assert!(
        stdout.contains("360 cells × 5 genes, 2 contexts"),
        "{stdout}"
    );
}

#[test]
fn unknown_knockout_gene_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let edges = dir.path().join("net.csv");
    std::fs::write(&edges, "regulator,target,K,n\nA,B,3.0,2\n").unwrap();
    let out = dir.path().join("sim.h5ad");
    let (code, _, stderr) = cellshift(&[
        "simulate",
        "--grn",
        edges.to_str().unwrap(),
        "--knockouts",
        "Z",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("error: ") && stderr.contains('Z') && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(!out.exists());
}
