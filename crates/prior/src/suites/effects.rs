//! Per-condition means and standard errors of a suite on the scale the benchmarks score on: counts
//! normalised to the median non-zero cell total of the whole suite, then natural log1p
//! ([`crate::normalize_total_log1p`]). Knock-out effects (Δ = mean of the condition − mean of its
//! context's control) and their sampling noise are built from these.

use std::collections::HashMap;

use cellshift_data::PerturbationData;

use crate::normalize::normalize_total_log1p;

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
}

impl SuiteMoments {
    /// Normalises a copy of `data` (raw counts; median total + log1p over all its cells) and computes
    /// every condition's moments.
    pub fn of_counts(data: &PerturbationData) -> SuiteMoments {
        let mut x = data.x.clone();
        normalize_total_log1p(&mut x);
        let mut by_condition = HashMap::new();
        for cond in data.conditions() {
            let n = cond.cells.len();
            let d = x.ncols();
            let mut mean = vec![0.0; d];
            for &r in &cond.cells {
                for (g, m) in mean.iter_mut().enumerate() {
                    *m += f64::from(x[[r, g]]);
                }
            }
            mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
            let mut se = vec![0.0; d];
            if n > 1 {
                for &r in &cond.cells {
                    for (g, s) in se.iter_mut().enumerate() {
                        *s += (f64::from(x[[r, g]]) - mean[g]).powi(2);
                    }
                }
                se.iter_mut()
                    .for_each(|s| *s = (*s / (n - 1) as f64 / n as f64).sqrt());
            }
            let key = (
                data.contexts[cond.context].clone(),
                data.treatments[cond.treatment].label(&data.control_label),
            );
            by_condition.insert(key, ConditionMoments { mean, se });
        }
        SuiteMoments {
            by_condition,
            control_label: data.control_label.clone(),
        }
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

/// `E|X|` of `X ~ N(0, 1)`: `√(2/π)`; the expected absolute value of pure sampling noise per unit of
/// standard error.
pub const MEAN_ABS_STANDARD_NORMAL: f64 = 0.797_884_560_802_865_4;
