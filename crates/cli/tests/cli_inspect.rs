//! `cellshift inspect` finds the control label on its own: `non-targeting` in the Papalexi screen, and a
//! clear error listing candidates when no label (or more than one) reads like a control.

use std::path::Path;
mod common;

use common::cellshift;

#[test]
fn papalexi_control_label_is_detected_without_being_told() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/papalexi2021/thp1_subset.h5ad");
    if cellshift_data::testing::require_path(&file).is_none() {
        return;
    }
    let (code, summary, stderr) = cellshift(&["inspect", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let line = summary
        .lines()
        .find(|l| l.starts_with("control label"))
        .unwrap_or_else(|| panic!("no control line in {summary}"));
    assert!(
        line.contains(" non-targeting (") && line.contains("detected"),
        "{line}"
    );
}

#[test]
fn a_screen_without_a_control_like_label_names_the_candidates() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/tests/fixtures/perturbation.h5ad");
    // The fixture's `cell_line` column has no control-like value: reading it as the label column must fail
    // by listing the labels to choose from and the flag that sets the control.
    let (code, _, stderr) = cellshift(&[
        "inspect",
        fixture.to_str().unwrap(),
        "--perturbation-column",
        "cell_line",
    ]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("no label looks like a control") && stderr.contains("--control LABEL"),
        "{stderr}"
    );
    assert!(
        stderr.contains(" cells)"),
        "candidates with counts expected: {stderr}"
    );
}
