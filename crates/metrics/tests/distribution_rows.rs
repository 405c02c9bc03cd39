//! `EvalOptions::distribution_rows`: the distribution metrics see only the given rows of each set, every
//! other metric sees every cell.

use cellshift_metrics::{evaluate, EvalCase, EvalOptions, MetricGroups, MetricsError, SetRows};
use ndarray::{Array2, Axis};

fn cells(n: usize, d: usize, salt: usize, shift: f64) -> Array2<f64> {
    Array2::from_shape_fn((n, d), |(i, j)| {
        ((i * 31 + j * 17 + salt * 7) % 23) as f64 * 0.05 + shift * (j % 2) as f64
    })
}

fn case(obs: Array2<f64>, trues: Vec<Array2<f64>>, preds: Vec<Array2<f64>>) -> EvalCase {
    let n = trues.len();
    EvalCase::new(
        obs,
        trues,
        preds,
        Some((0..n).map(|i| format!("p{i}")).collect()),
        None,
    )
    .unwrap()
}

fn value(report: &cellshift_metrics::EvalReport, key: &str) -> f64 {
    report.mean.0.iter().find(|(k, _)| k == key).unwrap().1
}

#[test]
fn distribution_metrics_see_the_rows_and_means_see_every_cell() {
    let full = case(
        cells(120, 6, 0, 0.0),
        vec![cells(60, 6, 1, 0.4), cells(50, 6, 2, -0.3)],
        vec![cells(70, 6, 3, 0.3), cells(40, 6, 4, -0.2)],
    );
    let keep = |n: usize, step: usize| Some((0..n).step_by(step).collect::<Vec<_>>());
    let rows = SetRows {
        obs: keep(120, 4),
        trues: vec![keep(60, 3), None],
        preds: vec![keep(70, 2), None],
    };
    let groups = MetricGroups::parse("mappfn,celleval,distribution").unwrap();
    let capped = evaluate(
        &full,
        &groups,
        &EvalOptions {
            distribution_rows: Some(rows.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let plain = evaluate(&full, &groups, &EvalOptions::default()).unwrap();
    // The same case cut to those rows, evaluated without restriction.
    let pick = |m: &Array2<f64>, r: &Option<Vec<usize>>| match r {
        Some(r) => m.select(Axis(0), r),
        None => m.clone(),
    };
    let cut = case(
        pick(&full.obs, &rows.obs),
        vec![pick(&full.trues[0], &rows.trues[0]), full.trues[1].clone()],
        vec![pick(&full.preds[0], &rows.preds[0]), full.preds[1].clone()],
    );
    let on_cut = evaluate(&cut, &groups, &EvalOptions::default()).unwrap();
    for key in ["w2", "mmd", "energy_distance", "w2_obs_true"] {
        assert_eq!(value(&capped, key), value(&on_cut, key), "{key}");
        assert_ne!(value(&capped, key), value(&plain, key), "{key} must change");
    }
    for key in ["mse", "mae", "pearson_delta", "mean_rmse"] {
        assert_eq!(
            value(&capped, key),
            value(&plain, key),
            "{key} uses every cell"
        );
    }
}

#[test]
fn rows_out_of_range_or_for_the_wrong_count_of_perturbations_are_refused() {
    let full = case(
        cells(20, 3, 0, 0.0),
        vec![cells(10, 3, 1, 0.2)],
        vec![cells(10, 3, 2, 0.1)],
    );
    let run = |rows: SetRows| {
        evaluate(
            &full,
            &MetricGroups::all(),
            &EvalOptions {
                distribution_rows: Some(rows),
                ..Default::default()
            },
        )
    };
    let out_of_range = SetRows {
        obs: Some(vec![0, 25]),
        trues: vec![None],
        preds: vec![None],
    };
    assert!(matches!(
        run(out_of_range),
        Err(MetricsError::LengthMismatch { .. })
    ));
    let wrong_count = SetRows {
        obs: None,
        trues: vec![None, None],
        preds: vec![None],
    };
    assert!(matches!(
        run(wrong_count),
        Err(MetricsError::LengthMismatch { .. })
    ));
}
