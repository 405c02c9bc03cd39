//! The cross-validation protocol's statistics: every eligible perturbation is predicted once (in the fold
//! that tests it, see `Split::cross_validation_folds`), so each per-perturbation metric has one value per
//! perturbation (averaged over resampling seeds). A metric is reported as the mean over perturbations with
//! a percentile-bootstrap 95 % interval over perturbations. Joint metrics, computed over a fold's
//! perturbations together (PDS, pooled DEG AUPRC, …), have one value per fold: their mean over folds is
//! reported, with the bootstrap interval over folds.

use std::collections::BTreeMap;

use cellshift_data::seed::rng_from_parts;
use rand::Rng;

use crate::score::ScoreResult;
use cellshift_metrics::summary::{summarise, MetricSummary};

/// Bootstrap resamples of an interval unless configured otherwise.
pub const DEFAULT_BOOTSTRAP: usize = 1000;

/// Salt of the bootstrap's random stream.
const BOOTSTRAP_SALT: u64 = 0xb007_57a9_0000_0095;

/// Per metric, the value of each perturbation (key: `context/perturbation`), averaged over seeds.
pub type PerPerturbation = BTreeMap<String, BTreeMap<String, f64>>;

/// The scores of one fold: per-perturbation values and the fold's joint metrics.
#[derive(Clone, Debug, Default)]
pub struct FoldScores {
    /// Perturbation key → metric → value (mean over the seeds with a finite value).
    pub per_perturbation: PerPerturbation,
    /// Joint metrics of the fold (mean over seeds and contexts), those with no per-perturbation value.
    pub joint: BTreeMap<String, f64>,
}

/// Splits a fold's [`ScoreResult`] into per-perturbation values and joint metrics.
pub fn fold_scores(result: &ScoreResult, seeds: &[u64]) -> FoldScores {
    let mut sums: BTreeMap<String, BTreeMap<String, (f64, usize)>> = BTreeMap::new();
    for (_, context, report) in &result.reports {
        for pert in &report.per_perturbation {
            let metrics = sums.entry(format!("{context}/{}", pert.name)).or_default();
            for (key, value) in &pert.values.0 {
                if let Some(v) = value.as_f64() {
                    let slot = metrics.entry(key.clone()).or_insert((0.0, 0));
                    if v.is_finite() {
                        slot.0 += v;
                        slot.1 += 1;
                    }
                }
            }
        }
    }
    let per_perturbation: PerPerturbation = sums
        .into_iter()
        .map(|(pert, metrics)| {
            let means = metrics
                .into_iter()
                .map(|(k, (s, n))| (k, if n > 0 { s / n as f64 } else { f64::NAN }))
                .collect();
            (pert, means)
        })
        .collect();
    let per_pert_keys: std::collections::BTreeSet<&String> =
        per_perturbation.values().flat_map(|m| m.keys()).collect();
    let joint = summarise(&result.reports, seeds)
        .into_iter()
        .filter(|m| !per_pert_keys.contains(&m.metric))
        .map(|m| (m.metric, m.mean))
        .collect();
    FoldScores {
        per_perturbation,
        joint,
    }
}

/// Mean, sample standard deviation and count of the finite values.
fn moments(values: &[f64]) -> (f64, f64, usize) {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let n = finite.len();
    if n == 0 {
        return (f64::NAN, 0.0, 0);
    }
    let mean = finite.iter().sum::<f64>() / n as f64;
    let std = if n > 1 {
        (finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    (mean, std, n)
}

/// The 2.5 and 97.5 percentiles (linear interpolation, numpy's default) of `statistic` over `reps`
/// resamples with replacement of `n` units; resample `r` draws from a stream fixed by `(seed, stream, r)`.
/// `None` when `n == 0` or `reps == 0`.
pub fn bootstrap_interval(
    n: usize,
    reps: usize,
    seed: u64,
    stream: u64,
    statistic: &dyn Fn(&[usize]) -> f64,
) -> Option<(f64, f64)> {
    if n == 0 || reps == 0 {
        return None;
    }
    let mut stats: Vec<f64> = (0..reps)
        .map(|r| {
            let mut rng = rng_from_parts(&[seed, BOOTSTRAP_SALT, stream, r as u64]);
            let idx: Vec<usize> = (0..n).map(|_| rng.gen_range(0..n)).collect();
            statistic(&idx)
        })
        .filter(|v| v.is_finite())
        .collect();
    if stats.is_empty() {
        return None;
    }
    stats.sort_by(f64::total_cmp);
    Some((percentile(&stats, 2.5), percentile(&stats, 97.5)))
}

/// Percentile `q` (0–100) of sorted values, interpolating linearly between ranks.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Mean of the finite values at `idx` of `values`.
fn resampled_mean(values: &[f64], idx: &[usize]) -> f64 {
    let (sum, n) = idx
        .iter()
        .map(|&i| values[i])
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

/// Stream number of a metric's bootstrap (its name hashed), so that each metric's interval is reproducible
/// on its own.
fn metric_stream(metric: &str) -> u64 {
    cellshift_data::seed::fnv1a64(metric.as_bytes())
}

/// Summarises the folds of one contender: per-perturbation metrics over every perturbation of every fold
/// (mean, std and count over perturbations, bootstrap interval over perturbations), joint metrics over
/// folds (bootstrap interval over folds). Returns the summary and the pooled per-perturbation values.
pub fn summarise_folds(
    folds: &[FoldScores],
    reps: usize,
    seed: u64,
) -> (Vec<MetricSummary>, PerPerturbation) {
    let mut pooled: PerPerturbation = BTreeMap::new();
    for fold in folds {
        for (pert, metrics) in &fold.per_perturbation {
            pooled.insert(pert.clone(), metrics.clone());
        }
    }
    let mut columns: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (i, metrics) in pooled.values().enumerate() {
        for (key, &v) in metrics {
            let column = columns.entry(key.clone()).or_default();
            column.resize(i, f64::NAN);
            column.push(v);
        }
    }
    for column in columns.values_mut() {
        column.resize(pooled.len(), f64::NAN);
    }
    let mut joint: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for fold in folds {
        for (key, &v) in &fold.joint {
            joint.entry(key.clone()).or_default().push(v);
        }
    }
    let summary = columns
        .iter()
        .chain(joint.iter())
        .map(|(metric, values)| {
            let (mean, std, n) = moments(values);
            let interval =
                bootstrap_interval(values.len(), reps, seed, metric_stream(metric), &|idx| {
                    resampled_mean(values, idx)
                });
            MetricSummary {
                metric: metric.clone(),
                mean,
                std,
                n,
                ci_low: interval.map(|i| i.0),
                ci_high: interval.map(|i| i.1),
            }
        })
        .collect();
    (summary, pooled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_as_numpy_does() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 50.0), 3.0);
        // numpy.percentile([1,2,3,4,5], 2.5) = 1.1, 97.5 → 4.9.
        assert!((percentile(&v, 2.5) - 1.1).abs() < 1e-12);
        assert!((percentile(&v, 97.5) - 4.9).abs() < 1e-12);
    }

    #[test]
    fn bootstrap_interval_of_a_mean_matches_the_normal_approximation() {
        // 400 values of a known spread: the 95 % interval of the mean is ≈ mean ± 1.96·sd/√n.
        let values: Vec<f64> = (0..400).map(|i| ((i * 37) % 100) as f64 / 10.0).collect();
        let (mean, sd, n) = moments(&values);
        let (lo, hi) =
            bootstrap_interval(n, 2000, 11, 0, &|idx| resampled_mean(&values, idx)).unwrap();
        let half = 1.96 * sd / (n as f64).sqrt();
        assert!(lo < mean && mean < hi);
        assert!(
            ((hi - lo) / 2.0 - half).abs() < 0.15 * half,
            "{lo} {hi} {half}"
        );
        // Seeded: the same seed gives the same interval.
        let again =
            bootstrap_interval(n, 2000, 11, 0, &|idx| resampled_mean(&values, idx)).unwrap();
        assert_eq!((lo, hi), again);
    }

    #[test]
    fn folds_pool_perturbations_and_joint_metrics_average_over_folds() {
        let fold = |perts: &[(&str, f64)], pds: f64| FoldScores {
            per_perturbation: perts
                .iter()
                .map(|(p, v)| {
                    (
                        p.to_string(),
                        BTreeMap::from([("mean_rmse".to_string(), *v)]),
                    )
                })
                .collect(),
            joint: BTreeMap::from([("pds".to_string(), pds)]),
        };
        let folds = [
            fold(&[("c/A", 1.0), ("c/B", 2.0)], 0.2),
            fold(&[("c/C", 3.0), ("c/D", f64::NAN)], 0.4),
        ];
        let (summary, pooled) = summarise_folds(&folds, 500, 3);
        assert_eq!(pooled.len(), 4);
        let rmse = summary.iter().find(|m| m.metric == "mean_rmse").unwrap();
        assert_eq!(
            (rmse.mean, rmse.n),
            (2.0, 3),
            "NaN perturbations are left out"
        );
        let (lo, hi) = (rmse.ci_low.unwrap(), rmse.ci_high.unwrap());
        assert!(
            (1.0..=2.0).contains(&lo) && (2.0..=3.0).contains(&hi),
            "{lo} {hi}"
        );
        let pds = summary.iter().find(|m| m.metric == "pds").unwrap();
        assert!((pds.mean - 0.3).abs() < 1e-12 && pds.n == 2);
        assert!(pds.ci_low.unwrap() >= 0.2 && pds.ci_high.unwrap() <= 0.4);
    }
}
