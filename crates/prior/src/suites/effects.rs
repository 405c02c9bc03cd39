//! Per-condition means and standard errors of a suite on the scale the benchmarks score on: counts
//! normalised to the median non-zero cell total of the whole suite, then natural log1p
//! ([`crate::normalize_total_log1p`]). Knock-out effects (Δ = mean of the condition − mean of its
//! context's control) and their sampling noise are built from these.
//!
//! SERGIO's cells are snapshots of one trajectory, so they are autocorrelated and `sd/√n` understates the
//! noise of a condition's mean; the suites calibrate their noise thresholds with placebo knock-outs of
//! genes that regulate nothing (see the suite modules).

use std::collections::HashMap;

use cellshift_data::PerturbationData;

use ndarray::Array2;

use crate::normalize::{normalize_total_log1p, normalize_total_log1p_to};

/// Mean and standard error of the mean of every gene in one condition.
#[derive(Clone, Debug)]
pub struct ConditionMoments {
    /// Mean per gene.
    pub mean: Vec<f64>,
    /// Standard error of the mean per gene (sample standard deviation / √n; 0 for one cell).
    pub se: Vec<f64>,
}

/// The moments of every condition of a data set, keyed by (context name, treatment label).
#[derive(Clone, Debug)]
pub struct SuiteMoments {
    by_condition: HashMap<(String, String), ConditionMoments>,
    control_label: String,
    /// Normalisation target of the suite (median non-zero cell total).
    target: Option<f64>,
}

impl SuiteMoments {
    /// Normalises a copy of `data` (raw counts; median total + log1p over all its cells) and computes
    /// every condition's moments.
    pub fn of_counts(data: &PerturbationData) -> SuiteMoments {
        let mut x = data.x.to_dense();
        let target = normalize_total_log1p(&mut x);
        let mut by_condition = HashMap::new();
        for cond in data.conditions() {
            let key = (
                data.contexts[cond.context].clone(),
                data.treatments[cond.treatment].label(&data.control_label),
            );
            by_condition.insert(key, moments_of_rows(&x, &cond.cells));
        }
        SuiteMoments {
            by_condition,
            control_label: data.control_label.clone(),
            target,
        }
    }

    /// Adds a condition that is not part of the suite's data (e.g. a placebo double used to calibrate a
    /// test): its raw counts are normalised to the suite's target, then its moments stored under
    /// (`context`, `label`).
    pub fn add_condition(&mut self, context: &str, label: &str, counts: &Array2<f32>) {
        let mut x = counts.clone();
        if let Some(target) = self.target {
            normalize_total_log1p_to(&mut x, target);
        }
        let rows: Vec<usize> = (0..x.nrows()).collect();
        self.by_condition.insert(
            (context.to_string(), label.to_string()),
            moments_of_rows(&x, &rows),
        );
    }

    /// The moments of `label` in `context`, if that condition exists.
    pub fn get(&self, context: &str, label: &str) -> Option<&ConditionMoments> {
        self.by_condition
            .get(&(context.to_string(), label.to_string()))
    }

    /// The control condition of `context`, if it exists.
    pub fn control(&self, context: &str) -> Option<&ConditionMoments> {
        self.get(context, &self.control_label)
    }

    /// The effect Δ = mean(`label`) − mean(control) of `label` in `context`, per gene.
    pub fn effect(&self, context: &str, label: &str) -> Option<Vec<f64>> {
        let (treated, control) = (self.get(context, label)?, self.control(context)?);
        Some(
            treated
                .mean
                .iter()
                .zip(&control.mean)
                .map(|(t, c)| t - c)
                .collect(),
        )
    }
}

/// Mean and standard error (`sd/√n`) per gene of the rows `rows` of `x`.
fn moments_of_rows(x: &Array2<f32>, rows: &[usize]) -> ConditionMoments {
    let n = rows.len();
    let d = x.ncols();
    let mut mean = vec![0.0; d];
    for &r in rows {
        for (g, m) in mean.iter_mut().enumerate() {
            *m += f64::from(x[[r, g]]);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
    let mut se = vec![0.0; d];
    if n > 1 {
        for &r in rows {
            for (g, s) in se.iter_mut().enumerate() {
                *s += (f64::from(x[[r, g]]) - mean[g]).powi(2);
            }
        }
        se.iter_mut()
            .for_each(|s| *s = (*s / (n - 1) as f64 / n as f64).sqrt());
    }
    ConditionMoments { mean, se }
}
