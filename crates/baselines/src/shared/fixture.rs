//! A tiny hand-checkable data set and task builder for the baselines' tests.
//!
//! Genes G1, G2, G3; contexts A, B, C; every condition's mean and shift (mean − control mean) is:
//!
//! | context | control mean | G1 shift | G2 shift | G3 shift | G1+G2 shift |
//! |---|---|---|---|---|---|
//! | A | (2, 2, 2) | (−1, 0, 1) [2 cells] | (0, −1, 0) [3 cells] | (0, 0, −2) *test* | (−1, −1, 1) *test* |
//! | B | (5, 5, 5) | (−2, 0, 2) | — | (0, 0, −3) | — |
//! | C | (1, 1, 1) | (−1, 0, 1.5) | — | (1, 1, 1) | — |
//!
//! Training conditions: everything except A's G3 and G1+G2 (the controls are listed too; baselines
//! ignore them as perturbations).

use cellshift_data::{CellAnnotations, PerturbationData, Task, TaskTreatment};
use ndarray::{Array2, Array3, Axis};

/// (context, label, cells) of the fixture.
fn rows() -> Vec<(&'static str, &'static str, Vec<[f32; 3]>)> {
    vec![
        ("A", "control", vec![[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]),
        ("A", "G1", vec![[0.0, 2.0, 4.0], [2.0, 2.0, 2.0]]),
        (
            "A",
            "G2",
            vec![[2.0, 0.0, 2.0], [2.0, 2.0, 2.0], [2.0, 1.0, 2.0]],
        ),
        ("A", "G3", vec![[2.0, 2.0, 0.0], [2.0, 2.0, 0.0]]),
        ("A", "G1+G2", vec![[1.0, 1.0, 3.0], [1.0, 1.0, 3.0]]),
        ("B", "control", vec![[4.0, 4.0, 4.0], [6.0, 6.0, 6.0]]),
        ("B", "G1", vec![[3.0, 5.0, 7.0], [3.0, 5.0, 7.0]]),
        ("B", "G3", vec![[5.0, 5.0, 1.0], [5.0, 5.0, 3.0]]),
        ("C", "control", vec![[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]]),
        ("C", "G1", vec![[0.0, 1.0, 2.0], [0.0, 1.0, 3.0]]),
        ("C", "G3", vec![[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]),
    ]
}

/// The fixture data set.
pub(crate) fn data() -> PerturbationData {
    let mut values = Vec::new();
    let mut contexts = Vec::new();
    let mut labels = Vec::new();
    for (context, label, cells) in rows() {
        for cell in cells {
            values.extend_from_slice(&cell);
            contexts.push(context.to_string());
            labels.push(label.to_string());
        }
    }
    let n = contexts.len();
    let x = Array2::from_shape_vec((n, 3), values).expect("fixture shape");
    let annotations = CellAnnotations {
        contexts,
        treatment_labels: labels,
        ..Default::default()
    };
    PerturbationData::new(
        vec!["G1".into(), "G2".into(), "G3".into()],
        x,
        annotations,
        "control",
    )
    .expect("valid fixture")
}

/// Indices of the fixture's training conditions (all but A's G3 and G1+G2).
pub(crate) fn train_conditions(data: &PerturbationData) -> Vec<usize> {
    let a = data.context_index("A").expect("context A");
    let held_out: Vec<usize> = ["G3", "G1+G2"]
        .iter()
        .map(|l| data.treatment_index(l).expect("held-out label"))
        .collect();
    (0..data.conditions().len())
        .filter(|&i| {
            let c = &data.conditions()[i];
            !(c.context == a && held_out.contains(&c.treatment))
        })
        .collect()
}

/// All cells of a condition of the fixture.
pub(crate) fn cells(data: &PerturbationData, context: &str, label: &str) -> Array2<f32> {
    let c = data.context_index(context).expect("context");
    let t = data.treatment_index(label).expect("treatment");
    data.cells_of(data.condition(c, t).expect("condition"))
}

/// A task with the given observational cells, context experiments (each `n × d`, same `n`), query label
/// (last of `labels`) and optional target.
pub(crate) fn task(
    context: &str,
    observational: Array2<f32>,
    context_sets: Vec<Array2<f32>>,
    labels: &[&str],
    target: Option<Array2<f32>>,
) -> Task {
    let d = observational.ncols();
    let genes: Vec<String> = (1..=d).map(|i| format!("G{i}")).collect();
    let n = context_sets.first().map_or(0, |s| s.nrows());
    let mut context_cells = Array3::<f32>::zeros((context_sets.len(), n, d));
    for (k, set) in context_sets.iter().enumerate() {
        context_cells.index_axis_mut(Axis(0), k).assign(set);
    }
    let mut treatments: Vec<TaskTreatment> = labels
        .iter()
        .map(|l| TaskTreatment::from_label(l, "control", 1.0))
        .collect();
    let query = treatments
        .pop()
        .unwrap_or_else(|| TaskTreatment::from_label("control", "control", 0.0));
    Task {
        context: context.to_string(),
        context_index: 0,
        genes: std::sync::Arc::new(genes),
        observational,
        experiments: treatments,
        context_cells,
        query,
        target,
    }
}

/// The standard query task: context A's control cells as observational set, no context experiments,
/// query `label`, target = A's cells of `label` when they exist.
pub(crate) fn query_in_a(data: &PerturbationData, label: &str) -> Task {
    let target = data
        .treatment_index(label)
        .ok()
        .and_then(|t| data.condition(data.context_index("A").ok()?, t))
        .map(|c| data.cells_of(c));
    task("A", cells(data, "A", "control"), vec![], &[label], target)
}

/// Asserts that a prediction's mean profile equals `expected` within 1e-5.
pub(crate) fn assert_mean(prediction: &cellshift_data::Prediction, expected: &[f64]) {
    let mean = prediction.mean_profile();
    assert_eq!(mean.len(), expected.len(), "gene count");
    for (j, (&got, &want)) in mean.iter().zip(expected).enumerate() {
        assert!(
            (got as f64 - want).abs() < 1e-5,
            "gene {j}: predicted mean {got}, expected {want} (profile {mean})"
        );
    }
}
