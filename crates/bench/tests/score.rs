//! The scoring protocol on a screen with known effects: the oracle must beat the control baseline on
//! every effect-sensitive metric, and results must be reproducible from the seeds.

use cellshift_baselines::baseline_by_name;
use cellshift_bench::{score_predictor, ScoreConfig};
use cellshift_data::split::{SplitConfig, SplitMode};
use cellshift_data::{CellAnnotations, PerturbationData};
use cellshift_metrics::summary::find;
use cellshift_metrics::MetricGroups;
use ndarray::Array2;
use rand::{Rng, SeedableRng};

/// One context, control + 8 knock-outs; knock-out of gene j lowers gene j by 3 and raises gene j+1 by 1.
fn screen() -> PerturbationData {
    let genes: Vec<String> = (0..10).map(|g| format!("G{g}")).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let cells_per_condition = 60;
    let mut labels = Vec::new();
    let mut rows = Vec::new();
    for condition in 0..9usize {
        for _ in 0..cells_per_condition {
            let mut x: Vec<f32> = (0..10).map(|_| 5.0 + rng.gen_range(-1.0..1.0)).collect();
            if condition > 0 {
                let j = condition - 1;
                x[j] -= 3.0;
                x[j + 1] += 1.0;
                labels.push(genes[j].clone());
            } else {
                labels.push("control".to_string());
            }
            rows.extend(x);
        }
    }
    let x = Array2::from_shape_vec((labels.len(), 10), rows).unwrap();
    let annotations = CellAnnotations {
        treatment_labels: labels,
        ..CellAnnotations::default()
    };
    PerturbationData::new(genes, x, annotations, "control").unwrap()
}

fn config() -> ScoreConfig {
    ScoreConfig {
        k: 2,
        n_cells: 40,
        seeds: vec![1, 2],
        groups: MetricGroups::parse("mappfn").unwrap(),
        split: SplitConfig {
            mode: SplitMode::AllContextsHoldout,
            ..SplitConfig::default()
        },
    }
}

#[test]
fn oracle_beats_control_on_effect_metrics() {
    let data = screen();
    let mut control = baseline_by_name("control").unwrap();
    let mut oracle = baseline_by_name("oracle").unwrap();
    let control = score_predictor(&data, control.as_mut(), &config()).unwrap();
    let oracle = score_predictor(&data, oracle.as_mut(), &config()).unwrap();
    let metric = |r: &cellshift_bench::ScoreResult, m: &str| find(&r.summary, m).unwrap().mean;
    // Control predicts no effect: RMSE ≈ the effect size (sqrt((9+1)/10) = 1), the oracle only sampling noise.
    assert!(
        metric(&control, "mean_rmse") > 0.8,
        "control rmse {}",
        metric(&control, "mean_rmse")
    );
    assert!(
        metric(&oracle, "mean_rmse") < 0.2,
        "oracle rmse {}",
        metric(&oracle, "mean_rmse")
    );
    assert!(metric(&oracle, "w2") < metric(&control, "w2") / 5.0);
    assert!(
        metric(&oracle, "pds") < 0.1,
        "oracle pds {}",
        metric(&oracle, "pds")
    );
    assert!((metric(&oracle, "mag_ratio") - 1.0).abs() < 0.3);
    assert!(metric(&control, "mag_ratio") < 0.2);
    // Four test queries per seed (half of the 8 knock-outs), two seeds.
    assert_eq!(control.reports.len(), 2);
    assert_eq!(control.reports[0].2.n_perts, 4);
}

#[test]
fn scores_are_reproducible_from_seeds() {
    let data = screen();
    let run = || {
        let mut predictor = baseline_by_name("context_mean").unwrap();
        score_predictor(&data, predictor.as_mut(), &config()).unwrap()
    };
    let (a, b) = (run(), run());
    for (x, y) in a.summary.iter().zip(&b.summary) {
        assert_eq!(x.metric, y.metric);
        assert!(
            x.mean == y.mean || (x.mean.is_nan() && y.mean.is_nan()),
            "{} differs",
            x.metric
        );
    }
}
