//! The matching-mean baseline for combinations (Systema, Viñas Torné et al. 2025): the prediction for
//! A+B is the mean of the single perturbations' pseudo-bulks, ½(μ_A + μ_B); a single that was not
//! measured in training is replaced by the mean of all perturbed training cells. On the delta scale used
//! here: the query context's control cells plus the mean of the singles' shifts, where a single's shift is
//! 1. its training shift in the query's context, or
//! 2. if it was not trained there, the shift of all perturbed training cells of the query context pooled
//!    together (each cell weighted equally, Systema's "non-control mean"); error if the context has none.
//!
//! A single knock-out query follows the same rule (its own shift if trained in the context, else the
//! pooled perturbed shift), a control query gets a zero shift, compounds are not supported. Unlike
//! `additive`, nothing is borrowed from other contexts: Systema's reference works within one data set.

use cellshift_data::FitContext;
use cellshift_data::{PerturbationData, PredictError, Prediction, Predictor, Task};
use ndarray::Array1;

use crate::additive::query_genes;
use crate::error::BaselineError;
use crate::shared::effects::{fitted, TrainingEffects};
use crate::shared::resample::shifted_control_cells;

/// Control cells plus the mean of the query's single-gene shifts in its context.
#[derive(Clone, Debug, Default)]
pub struct MatchingMean {
    effects: Option<TrainingEffects>,
}

impl MatchingMean {
    /// Registry name of this baseline.
    pub const NAME: &'static str = "matching_mean";

    /// A new, unfitted baseline.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Predictor for MatchingMean {
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
        let singles = query_genes(Self::NAME, effects, &query)?;
        let mut shift = Array1::<f64>::zeros(effects.n_genes());
        if !singles.is_empty() {
            let context = effects.context_index(&task.context);
            for single in &singles {
                let own = context.and_then(|c| effects.shift(c, single)).cloned();
                let single_shift = match own {
                    Some(s) => s,
                    None => context.and_then(|c| effects.pooled_perturbed_shift(c)).ok_or_else(|| {
                        BaselineError::ContextNotTrained {
                            baseline: Self::NAME.into(),
                            context: task.context.clone(),
                            reason: format!(
                                "`{}` was not trained in this context and the context has no perturbed training \
                                 cells to fall back on; put some of its perturbations in training",
                                effects.label(single)
                            ),
                        }
                    })?,
                };
                shift += &single_shift;
            }
            shift /= singles.len() as f64;
        }
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

    fn fitted_baseline() -> (PerturbationData, MatchingMean) {
        let data = fixture::data();
        let mut baseline = MatchingMean::new();
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
    fn averages_the_single_shifts() {
        let (data, baseline) = fitted_baseline();
        // ½[(−1,0,1) + (0,−1,0)] = (−0.5,−0.5,0.5) on (2,2,2).
        fixture::assert_mean(
            &baseline
                .predict(&fixture::query_in_a(&data, "G1+G2"), 2, 0)
                .unwrap(),
            &[1.5, 1.5, 2.5],
        );
    }

    #[test]
    fn untrained_single_falls_back_to_the_pooled_perturbed_cells() {
        let (data, baseline) = fitted_baseline();
        // A's perturbed training cells: G1 (2 cells, sum (2,4,6)) and G2 (3 cells, sum (6,3,6)) → mean
        // (1.6,1.4,2.4), shift (−0.4,−0.6,0.4). G1+G3: ½[(−1,0,1) + (−0.4,−0.6,0.4)] = (−0.7,−0.3,0.7).
        fixture::assert_mean(
            &baseline
                .predict(&fixture::query_in_a(&data, "G1+G3"), 2, 0)
                .unwrap(),
            &[1.3, 1.7, 2.7],
        );
        // An unseen single is the pooled perturbed mean itself (Systema's non-control mean).
        fixture::assert_mean(
            &baseline
                .predict(&fixture::query_in_a(&data, "G4"), 2, 0)
                .unwrap(),
            &[1.6, 1.4, 2.4],
        );
    }

    #[test]
    fn deterministic_under_a_seed() {
        let (data, baseline) = fitted_baseline();
        let task = fixture::query_in_a(&data, "G1+G2");
        let cells = |seed| match baseline.predict(&task, 5, seed).unwrap() {
            Prediction::Cells(c) => c,
            Prediction::PseudoBulk(_) => panic!("cells expected"),
        };
        assert_eq!(cells(1), cells(1));
        assert_ne!(cells(1), cells(2));
    }

    #[test]
    fn errors_for_a_context_without_training_and_before_fit() {
        let (data, baseline) = fitted_baseline();
        let unseen = fixture::task(
            "D",
            fixture::cells(&data, "A", "control"),
            vec![],
            &["G1+G2"],
            None,
        );
        let err = baseline.predict(&unseen, 2, 0).unwrap_err();
        assert!(
            err.to_string().contains("no perturbed training cells"),
            "{err}"
        );
        let err = MatchingMean::new()
            .predict(&fixture::query_in_a(&data, "G1+G2"), 2, 0)
            .unwrap_err();
        assert!(err.to_string().contains("before it was fitted"), "{err}");
    }
}
