//! Aggregates reports over contexts and resampling seeds into mean ± std per metric.

use std::collections::BTreeMap;

use crate::EvalReport;

/// One metric's mean and (sample) standard deviation over seeds.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MetricSummary {
    /// Metric key as in the report (`mean.*` keys bare, global keys bare too: they do not collide).
    pub metric: String,
    /// Mean over seeds (NaN seeds ignored).
    pub mean: f64,
    /// Sample standard deviation over seeds (0 for one seed).
    pub std: f64,
    /// Seeds with a finite value (cross-validation: perturbations, or folds for joint metrics).
    pub n: usize,
    /// Lower end of the bootstrap 95 % interval (cross-validation protocol only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci_low: Option<f64>,
    /// Upper end of the bootstrap 95 % interval (cross-validation protocol only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci_high: Option<f64>,
}

/// Per seed, averages each metric over the seed's contexts (the NaN-ignoring `nanmean` block for
/// per-perturbation metrics, so that one undefined value — e.g. a Pearson correlation of a constant
/// profile — does not hide the others; the `global` block for joint ones), then gives mean ± std over
/// seeds.
pub fn summarise(reports: &[(u64, String, EvalReport)], seeds: &[u64]) -> Vec<MetricSummary> {
    let mut per_metric: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for &seed in seeds {
        let mut sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        for (_, _, report) in reports.iter().filter(|(s, _, _)| *s == seed) {
            let values = report.nanmean.0.iter().map(|(k, v)| (k.clone(), *v)).chain(
                report
                    .global
                    .0
                    .iter()
                    .filter_map(|(k, v)| v.as_f64().map(|x| (k.clone(), x))),
            );
            for (key, value) in values {
                if value.is_finite() {
                    let entry = sums.entry(key).or_insert((0.0, 0));
                    entry.0 += value;
                    entry.1 += 1;
                } else {
                    sums.entry(key).or_insert((0.0, 0));
                }
            }
        }
        for (key, (sum, n)) in sums {
            let value = if n > 0 { sum / n as f64 } else { f64::NAN };
            per_metric.entry(key).or_default().push(value);
        }
    }
    per_metric
        .into_iter()
        .map(|(metric, values)| {
            let finite: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
            let n = finite.len();
            let mean = if n > 0 {
                finite.iter().sum::<f64>() / n as f64
            } else {
                f64::NAN
            };
            let std = if n > 1 {
                (finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
            } else {
                0.0
            };
            MetricSummary {
                metric,
                mean,
                std,
                n,
                ci_low: None,
                ci_high: None,
            }
        })
        .collect()
}

/// Looks a metric up in a summary.
pub fn find<'a>(summary: &'a [MetricSummary], metric: &str) -> Option<&'a MetricSummary> {
    summary.iter().find(|m| m.metric == metric)
}

/// A markdown table: one row per method, one column per metric, `mean ± std`.
pub fn markdown_table(rows: &[(String, Vec<MetricSummary>)], metrics: &[&str]) -> String {
    let mut out = format!(
        "| method | {} |\n|---|{}\n",
        metrics.join(" | "),
        "---|".repeat(metrics.len())
    );
    for (method, summary) in rows {
        let cells: Vec<String> = metrics
            .iter()
            .map(|m| match find(summary, m) {
                Some(s) if s.mean.is_finite() => format!("{} ± {}", fmt(s.mean), fmt(s.std)),
                _ => "n/a".to_string(),
            })
            .collect();
        out += &format!("| {method} | {} |\n", cells.join(" | "));
    }
    out
}

/// Formats a number with 4 significant digits (scientific for very small or large values).
pub fn fmt(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else if v.abs() < 1e-3 || v.abs() >= 1e5 {
        format!("{v:.3e}")
    } else {
        let digits = (3 - v.abs().log10().floor() as i32).max(0) as usize;
        format!("{v:.digits$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_readably() {
        assert_eq!(fmt(0.123456), "0.1235");
        assert_eq!(fmt(12.3456), "12.35");
        assert_eq!(fmt(1.0e-5), "1.000e-5");
        assert_eq!(fmt(0.0), "0");
    }
}
