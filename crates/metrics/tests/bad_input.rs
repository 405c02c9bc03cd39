//! Bad input never panics: each case returns a clear `MetricsError` naming the problem.

use cellshift_metrics::{evaluate, EvalCase, EvalOptions, MetricGroups, MetricsError};
use ndarray::Array2;

fn grid(n: usize, d: usize, offset: f64) -> Array2<f64> {
    Array2::from_shape_fn((n, d), |(i, j)| {
        ((i * 7 + j * 3) % 11) as f64 * 0.1 + offset
    })
}

fn case_with(obs: Array2<f64>, t: Vec<Array2<f64>>, p: Vec<Array2<f64>>) -> EvalCase {
    // bypass EvalCase::new's validation so evaluate() itself must catch the problem
    let n = t.len();
    EvalCase {
        obs,
        trues: t,
        preds: p,
        names: (0..n).map(|i| format!("p{i}")).collect(),
        targets: None,
    }
}

fn run(case: &EvalCase) -> Result<cellshift_metrics::EvalReport, MetricsError> {
    evaluate(case, &MetricGroups::all(), &EvalOptions::default())
}

#[test]
fn mismatched_gene_counts_are_rejected() {
    let case = case_with(
        grid(10, 4, 0.0),
        vec![grid(8, 4, 0.5)],
        vec![grid(8, 5, 0.5)],
    );
    let err = run(&case).unwrap_err();
    assert!(
        matches!(
            &err,
            MetricsError::GeneMismatch {
                got: 5,
                expected: 4,
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("pred_0") && msg.contains("same genes"),
        "{msg}"
    );
    // the constructor rejects it too
    assert!(EvalCase::new(
        grid(10, 4, 0.0),
        vec![grid(8, 3, 0.5)],
        vec![grid(8, 4, 0.5)],
        None,
        None
    )
    .is_err());
}

#[test]
fn perturbation_with_one_cell_is_rejected() {
    let case = case_with(
        grid(10, 4, 0.0),
        vec![grid(1, 4, 0.5)],
        vec![grid(8, 4, 0.5)],
    );
    let err = run(&case).unwrap_err();
    assert!(
        matches!(&err, MetricsError::TooFewCells { got: 1, min: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("true_0"), "{err}");
}

#[test]
fn missing_control_cells_are_rejected() {
    let case = case_with(
        Array2::zeros((0, 4)),
        vec![grid(8, 4, 0.5)],
        vec![grid(8, 4, 0.5)],
    );
    let err = run(&case).unwrap_err();
    assert!(matches!(err, MetricsError::NoControlCells), "{err}");
}

#[test]
fn nan_in_predictions_is_rejected() {
    let mut pred = grid(8, 4, 0.5);
    pred[[3, 2]] = f64::NAN;
    let case = case_with(grid(10, 4, 0.0), vec![grid(8, 4, 0.5)], vec![pred]);
    let err = run(&case).unwrap_err();
    assert!(
        matches!(&err, MetricsError::NonFinite { row: 3, col: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("pred_0"), "{err}");
}

#[test]
fn other_bad_inputs() {
    assert!(
        matches!(MetricGroups::parse("mappfn,bogus"), Err(MetricsError::UnknownGroup(g)) if g == "bogus")
    );
    assert!(matches!(
        EvalCase::read_npz("/nonexistent/case.npz"),
        Err(MetricsError::Io { .. })
    ));
    let case = case_with(grid(10, 4, 0.0), vec![], vec![]);
    assert!(matches!(run(&case), Err(MetricsError::NoPerturbations)));
    let case = case_with(
        grid(10, 4, 0.0),
        vec![grid(8, 4, 0.5)],
        vec![grid(8, 4, 0.5)],
    );
    let opts = EvalOptions {
        gene_names: Some(vec!["a".into()]),
        ..Default::default()
    };
    assert!(matches!(
        evaluate(&case, &MetricGroups::all(), &opts),
        Err(MetricsError::LengthMismatch { .. })
    ));
    let bad_targets = EvalCase {
        targets: Some(vec![7]),
        ..case.clone()
    };
    assert!(matches!(
        run(&bad_targets),
        Err(MetricsError::InvalidParameter { .. })
    ));
}

#[test]
fn npz_round_trip_with_float32_and_int32() {
    use ndarray_npy::NpzWriter;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.npz");
    {
        let mut w = NpzWriter::new_compressed(std::fs::File::create(&path).unwrap());
        w.add_array("obs", &grid(6, 3, 0.0).mapv(|v| v as f32))
            .unwrap();
        w.add_array("true_0", &grid(5, 3, 0.2)).unwrap();
        w.add_array("pred_0", &grid(4, 3, 0.3)).unwrap();
        w.add_array("targets", &ndarray::arr1(&[1i32])).unwrap();
        w.finish().unwrap();
    }
    let c = EvalCase::read_npz(&path).unwrap();
    assert_eq!(c.names, vec!["p0".to_string()]);
    assert_eq!(c.targets, Some(vec![1]));
    assert_eq!(c.obs[[1, 1]], (grid(6, 3, 0.0)[[1, 1]] as f32) as f64);
    // missing pred_0 → MissingArray naming it
    let path2 = dir.path().join("d.npz");
    {
        let mut w = NpzWriter::new(std::fs::File::create(&path2).unwrap());
        w.add_array("obs", &grid(6, 3, 0.0)).unwrap();
        w.add_array("true_0", &grid(5, 3, 0.2)).unwrap();
        w.finish().unwrap();
    }
    let err = EvalCase::read_npz(&path2).unwrap_err();
    assert!(
        matches!(&err, MetricsError::MissingArray { name, .. } if name == "pred_0"),
        "{err}"
    );
}
