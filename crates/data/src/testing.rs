//! Helpers for tests that need material from outside the repository (`../shared`: golden files, real
//! screens) or Python: locally such a test skips with a message when the material is absent; with
//! `CELLSHIFT_REQUIRE_SHARED=1` (set by `.ci/run`, where it is always present) the absence is a failure.

use std::path::{Path, PathBuf};

/// The environment variable that turns skips into failures.
pub const REQUIRE_SHARED_VAR: &str = "CELLSHIFT_REQUIRE_SHARED";

/// True when [`REQUIRE_SHARED_VAR`] is set to `1` (or `true`).
pub fn shared_required() -> bool {
    std::env::var(REQUIRE_SHARED_VAR)
        .map(|v| v == "1" || v.eq_ignore_ascii_case("true"))
        .unwrap_or(false)
}

/// Reports a missing prerequisite: prints `skipped: <what>` and returns, or panics when
/// [`shared_required`] (so CI cannot silently skip).
pub fn skip_or_fail(what: &str) {
    if shared_required() {
        panic!("{what}, but {REQUIRE_SHARED_VAR}=1 requires it");
    }
    println!("skipped: {what}");
}

/// The `../shared` folder beside the repository, seen from a crate's manifest directory.
pub fn shared_dir(manifest_dir: &str) -> PathBuf {
    Path::new(manifest_dir).join("../../../shared")
}

/// `path` when it exists; otherwise [`skip_or_fail`] and `None`.
pub fn require_path(path: &Path) -> Option<PathBuf> {
    if path.exists() {
        Some(path.to_path_buf())
    } else {
        skip_or_fail(&format!(
            "{} is absent (the shared reference material lives beside the repository, in ../shared)",
            path.display()
        ));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_paths_are_returned_and_missing_ones_skip_or_fail() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        assert_eq!(require_path(here).as_deref(), Some(here));
        let missing = here.join("no-such-file-anywhere");
        if shared_required() {
            let r = std::panic::catch_unwind(|| require_path(&missing));
            assert!(r.is_err(), "a required absence must fail");
        } else {
            assert!(require_path(&missing).is_none());
        }
    }
}

/// A task for method tests: predict `label` (a treatment label, `+` for combinations) from every control
/// cell of the data's first control condition, with no context experiments.
pub fn control_query_task(data: &crate::PerturbationData, label: &str) -> crate::Task {
    let control = data
        .conditions()
        .iter()
        .find(|c| data.treatments[c.treatment].is_control())
        .expect("the data has control cells");
    crate::Task {
        context: "default".into(),
        context_index: 0,
        genes: std::sync::Arc::new(data.genes.clone()),
        observational: data.cells_of(control),
        experiments: vec![],
        context_cells: ndarray::Array3::zeros((0, 0, data.n_genes())),
        query: crate::TaskTreatment::from_label(label, "control", 1.0),
        target: None,
    }
}

/// A small screen for tests of transfer between contexts: two contexts `x` and `y` (base levels 1 and
/// 2), each with `ctrl` and the knock-outs `G1`…`G{perturbations}`, 30 cells each, `genes` genes. Each
/// knock-out has its own effect (uniform in ±1 per gene), the same in both contexts, plus ±0.1 noise,
/// drawn from `seed`.
pub fn shared_effect_screen(
    perturbations: usize,
    genes: usize,
    seed: u64,
) -> crate::PerturbationData {
    use rand::Rng;
    let mut rng = crate::seed::rng_from_parts(&[seed]);
    let effects: Vec<Vec<f32>> = (0..perturbations)
        .map(|_| (0..genes).map(|_| rng.gen_range(-1.0..1.0)).collect())
        .collect();
    let (mut rows, mut contexts, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for (context, base) in [("x", 1.0f32), ("y", 2.0)] {
        for p in 0..=perturbations {
            for _ in 0..30 {
                for g in 0..genes {
                    let effect = if p == 0 { 0.0 } else { effects[p - 1][g] };
                    rows.push(base + effect + rng.gen_range(-0.1..0.1));
                }
                contexts.push(context.to_string());
                labels.push(if p == 0 {
                    "ctrl".into()
                } else {
                    format!("G{p}")
                });
            }
        }
    }
    let x = ndarray::Array2::from_shape_vec((contexts.len(), genes), rows)
        .expect("rows × genes values");
    let cells = crate::model::CellAnnotations {
        cell_names: Vec::new(),
        contexts,
        treatment_labels: labels,
        treatment_values: Vec::new(),
    };
    let names = (0..genes).map(|g| format!("g{g}")).collect();
    crate::PerturbationData::new(names, x, cells, "ctrl").expect("a valid screen")
}
