//! The closest-context baseline (C3TL's "Closest-cell" comparison, peers.md §1.4 and §5): copy the query
//! perturbation's effect from the training context most similar to the query's context.
//!
//! For a query (context c, perturbation p):
//! * candidates: the training contexts γ ≠ c in which p was measured (c itself is excluded: its own
//!   (c, p) measurement would be the answer, not a transfer); none → error;
//! * similarity by shared observed perturbations: for each candidate, the mean over the perturbations π
//!   measured in training in both c and γ of the mean squared difference of their shifts,
//!   (1/|Π|) Σ_π (1/d) ‖x_π^c − x_π^γ‖²; the candidate with the smallest value wins;
//! * candidates sharing no perturbation with c are used only when no candidate shares one (e.g. a context
//!   new at inference); they are then ranked by the Euclidean distance between control pseudo-bulks (c's
//!   from the training data, or the task's observational mean for a context the data does not have);
//! * ties go to the first context in sorted order.
//!
//! Prediction = the task's control cells (resampled to n) + x_p^γ*. A control query gets a zero shift.

use cellshift_data::FitContext;
use cellshift_data::{PerturbationData, PredictError, Prediction, Predictor, Task, Treatment};
use ndarray::Array1;

use crate::error::BaselineError;
use crate::shared::effects::{fitted, TrainingEffects};
use crate::shared::resample::{mean_profile, shifted_control_cells};

/// How the source context of a [`ClosestContext`] prediction was chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum ContextSimilarity {
    /// By the mean squared difference of the shifts of the `shared` perturbations both contexts measured.
    SharedPerturbations {
        /// Training perturbations the two contexts share.
        shared: usize,
        /// Mean squared difference of their shifts over those perturbations.
        mse: f64,
    },
    /// By the Euclidean distance of the control pseudo-bulks (no candidate shares a perturbation).
    ControlProfile {
        /// Euclidean distance of the control pseudo-bulks.
        distance: f64,
    },
}

/// The context a [`ClosestContext`] prediction copies its effect from, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceContext {
    /// Name of the chosen training context.
    pub context: String,
    /// The similarity that chose it.
    pub similarity: ContextSimilarity,
}

/// Control cells plus the query perturbation's shift in the most similar training context.
#[derive(Clone, Debug, Default)]
pub struct ClosestContext {
    effects: Option<TrainingEffects>,
}

impl ClosestContext {
    /// Registry name of this baseline.
    pub const NAME: &'static str = "closest_context";

    /// A new, unfitted baseline.
    pub fn new() -> Self {
        Self::default()
    }

    /// The training context whose effect `predict` copies for this task (`None` for a control query).
    pub fn source_context(&self, task: &Task) -> Result<Option<SourceContext>, PredictError> {
        let effects = fitted(&self.effects, Self::NAME)?;
        effects.check_task(task)?;
        let query = effects.query_treatment(task)?;
        if matches!(query, Treatment::Control) {
            return Ok(None);
        }
        Ok(Some(choose(effects, task, &query)?.0))
    }
}

/// Picks the source context and returns it with the shift to copy.
fn choose(
    effects: &TrainingEffects,
    task: &Task,
    query: &Treatment,
) -> Result<(SourceContext, Array1<f64>), BaselineError> {
    let own = effects.context_index(&task.context);
    let candidates: Vec<usize> = effects
        .contexts_with(query)
        .iter()
        .copied()
        .filter(|&g| Some(g) != own)
        .collect();
    if candidates.is_empty() {
        let measured = effects.contexts_with(query);
        let reason = if measured.is_empty() {
            "it was not measured in any training context; closest_context copies a measured effect, so use \
             perturbation_mean (global fallback) or a model for unseen perturbations"
                .to_string()
        } else {
            "it was measured in training only in the query's own context; closest_context transfers an effect \
             from another context"
                .to_string()
        };
        return Err(BaselineError::PerturbationNotMeasured {
            baseline: ClosestContext::NAME.into(),
            perturbation: effects.label(query),
            context: task.context.clone(),
            reason,
        });
    }
    let d = effects.n_genes() as f64;
    let mut best: Option<(f64, usize, ContextSimilarity)> = None;
    if let Some(c) = own {
        for &g in &candidates {
            let mut total = 0.0;
            let mut shared = 0usize;
            for (pi, effect_c) in effects.in_context(c) {
                if let Some(shift_g) = effects.shift(g, pi) {
                    total += (&effect_c.shift - shift_g).mapv(|v| v * v).sum() / d;
                    shared += 1;
                }
            }
            if shared > 0 {
                let mse = total / shared as f64;
                if best.as_ref().is_none_or(|(b, _, _)| mse < *b) {
                    best = Some((
                        mse,
                        g,
                        ContextSimilarity::SharedPerturbations { shared, mse },
                    ));
                }
            }
        }
    }
    if best.is_none() {
        let own_control = match own.and_then(|c| effects.control_mean(c)) {
            Some(m) => m.clone(),
            None => mean_profile(task.observational.view()).ok_or_else(|| {
                BaselineError::EmptyCells {
                    what: "the task's observational (control) set".into(),
                }
            })?,
        };
        for &g in &candidates {
            // Candidates have a shift, hence a control mean.
            let Some(control) = effects.control_mean(g) else {
                continue;
            };
            let distance = (control - &own_control).mapv(|v| v * v).sum().sqrt();
            if best.as_ref().is_none_or(|(b, _, _)| distance < *b) {
                best = Some((distance, g, ContextSimilarity::ControlProfile { distance }));
            }
        }
    }
    let (_, g, similarity) = best
        .ok_or_else(|| BaselineError::Numerical("no candidate context could be compared".into()))?;
    let shift = effects
        .shift(g, query)
        .cloned()
        .unwrap_or_else(|| Array1::zeros(effects.n_genes()));
    Ok((
        SourceContext {
            context: effects.contexts[g].clone(),
            similarity,
        },
        shift,
    ))
}

impl Predictor for ClosestContext {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn fit(
        &mut self,
        data: &PerturbationData,
        train_conditions: &[usize],
        _ctx: &mut FitContext<'_>,
    ) -> Result<(), PredictError> {
        self.effects = Some(TrainingEffects::from_training(
            Self::NAME,
            data,
            train_conditions,
        )?);
        Ok(())
    }

    fn predict(&self, task: &Task, n_cells: usize, seed: u64) -> Result<Prediction, PredictError> {
        let effects = fitted(&self.effects, Self::NAME)?;
        effects.check_task(task)?;
        let query = effects.query_treatment(task)?;
        let shift = match query {
            Treatment::Control => Array1::zeros(effects.n_genes()),
            ref p => choose(effects, task, p)?.1,
        };
        Ok(Prediction::Cells(shifted_control_cells(
            task.observational.view(),
            &shift,
            n_cells,
            seed,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::fixture;
    use ndarray::array;

    fn fitted_baseline() -> (PerturbationData, ClosestContext) {
        let data = fixture::data();
        let mut baseline = ClosestContext::new();
        baseline
            .fit(
                &data,
                &fixture::train_conditions(&data),
                &mut FitContext::default(),
            )
            .unwrap();
        (data, baseline)
    }

    #[test]
    fn copies_the_effect_of_the_context_with_the_closest_shared_shifts() {
        let (data, baseline) = fitted_baseline();
        // A shares G1 with B and C. G1 shifts: A (−1,0,1), B (−2,0,2), C (−1,0,1.5):
        // MSE(A,B) = (1+0+1)/3 = 2/3, MSE(A,C) = 0.25/3 = 1/12 → C; C's G3 shift (1,1,1) on (2,2,2).
        let task = fixture::query_in_a(&data, "G3");
        let source = baseline.source_context(&task).unwrap().unwrap();
        assert_eq!(source.context, "C");
        match source.similarity {
            ContextSimilarity::SharedPerturbations { shared, mse } => {
                assert_eq!(shared, 1);
                assert!((mse - 1.0 / 12.0).abs() < 1e-12, "{mse}");
            }
            other => panic!("expected shared-perturbation similarity, got {other:?}"),
        }
        fixture::assert_mean(&baseline.predict(&task, 2, 0).unwrap(), &[3.0, 3.0, 3.0]);
    }

    #[test]
    fn a_new_context_is_matched_by_its_control_profile() {
        let (_, baseline) = fitted_baseline();
        // Context D is not in the data: observational mean (4,4,4.5) is closest to B's control (5,5,5)
        // (distance √2.25 = 1.5) rather than C's (1,1,1); B's G3 shift (0,0,−3).
        let obs = array![[4.0f32, 4.0, 4.0], [4.0, 4.0, 5.0]];
        let task = fixture::task("D", obs, vec![], &["G3"], None);
        let source = baseline.source_context(&task).unwrap().unwrap();
        assert_eq!(source.context, "B");
        assert_eq!(
            source.similarity,
            ContextSimilarity::ControlProfile { distance: 1.5 }
        );
        fixture::assert_mean(&baseline.predict(&task, 2, 0).unwrap(), &[4.0, 4.0, 1.5]);
    }

    #[test]
    fn deterministic_under_a_seed() {
        let (data, baseline) = fitted_baseline();
        let task = fixture::query_in_a(&data, "G3");
        let cells = |seed| match baseline.predict(&task, 5, seed).unwrap() {
            Prediction::Cells(c) => c,
            Prediction::PseudoBulk(_) => panic!("cells expected"),
        };
        assert_eq!(cells(1), cells(1));
        assert_ne!(cells(1), cells(2));
    }

    #[test]
    fn errors_when_no_other_context_measured_the_perturbation() {
        let (data, baseline) = fitted_baseline();
        // G2 was measured only in A, the query's own context.
        let err = baseline
            .predict(&fixture::query_in_a(&data, "G2"), 2, 0)
            .unwrap_err();
        assert!(
            err.to_string().contains("only in the query's own context"),
            "{err}"
        );
        let err = baseline
            .predict(&fixture::query_in_a(&data, "G1+G2"), 2, 0)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("not measured in any training context"),
            "{err}"
        );
        let err = ClosestContext::new()
            .predict(&fixture::query_in_a(&data, "G3"), 2, 0)
            .unwrap_err();
        assert!(err.to_string().contains("before it was fitted"), "{err}");
    }
}
