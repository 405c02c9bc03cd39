//! The additive baseline for combinations (Ahlmann-Eltze et al. 2025; GEARS/scDFM discussions):
//! μ̂_{A+B} = μ_ctrl + (μ_A − μ_ctrl) + (μ_B − μ_ctrl), i.e. the query context's control cells plus the sum
//! of the single-gene knock-out shifts.
//!
//! Shift of each single gene g (in this order):
//! 1. its training shift in the query's context (pseudo-bulk(g, c) − pseudo-bulk(control, c)) — the
//!    reference definition, which works within one data set;
//! 2. otherwise its mean shift over the training contexts where it was measured (as `perturbation_mean`);
//! 3. otherwise an error naming the gene.
//!
//! A single knock-out query is its own one-gene sum (its shift by the same rules); a control query gets a
//! zero shift; compounds are not supported.

use cellshift_data::FitContext;
use cellshift_data::{PerturbationData, PredictError, Prediction, Predictor, Task, Treatment};
use ndarray::Array1;

use crate::error::BaselineError;
use crate::shared::effects::{fitted, TrainingEffects};
use crate::shared::resample::shifted_control_cells;

/// Control cells plus the sum of the query's single-gene knock-out shifts.
#[derive(Clone, Debug, Default)]
pub struct Additive {
    effects: Option<TrainingEffects>,
}

impl Additive {
    /// Registry name of this baseline.
    pub const NAME: &'static str = "additive";

    /// A new, unfitted baseline.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The single-gene knock-outs of a query (one for a knock-out, several for a combination, none for
/// control); errors for compounds, which have no single-gene decomposition.
pub(crate) fn query_genes(
    baseline: &str,
    effects: &TrainingEffects,
    query: &Treatment,
) -> Result<Vec<Treatment>, BaselineError> {
    match query {
        Treatment::Compound { .. } => Err(BaselineError::UnsupportedTreatment {
            baseline: baseline.to_string(),
            label: effects.label(query),
            reason: "a compound has no single-gene knock-outs to combine; use perturbation_mean or context_mean".into(),
        }),
        _ => Ok(query.target_genes().into_iter().map(|g| Treatment::Knockout { gene: g.to_string() }).collect()),
    }
}

impl Predictor for Additive {
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
        let context = effects.context_index(&task.context);
        let mut shift = Array1::<f64>::zeros(effects.n_genes());
        for single in query_genes(Self::NAME, effects, &query)? {
            let own = context.and_then(|c| effects.shift(c, &single));
            let single_shift = own.or_else(|| effects.perturbation_mean_shift(&single)).ok_or_else(|| {
                BaselineError::PerturbationNotMeasured {
                    baseline: Self::NAME.into(),
                    perturbation: effects.label(&query),
                    context: task.context.clone(),
                    reason: format!(
                        "its single knock-out `{}` was not measured in any training context; the additive model \
                         needs every single of a combination in training",
                        effects.label(&single)
                    ),
                }
            })?;
            shift += single_shift;
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

    fn fitted_baseline() -> (PerturbationData, Additive) {
        let data = fixture::data();
        let mut baseline = Additive::new();
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
    fn sums_the_single_shifts_of_the_query_context() {
        let (data, baseline) = fitted_baseline();
        // A: G1 (−1,0,1) + G2 (0,−1,0) on (2,2,2) → (1,1,3), which is exactly A's held-out G1+G2 mean.
        let task = fixture::query_in_a(&data, "G1+G2");
        fixture::assert_mean(&baseline.predict(&task, 2, 0).unwrap(), &[1.0, 1.0, 3.0]);
        let target = task
            .target
            .as_ref()
            .unwrap()
            .mean_axis(ndarray::Axis(0))
            .unwrap();
        assert_eq!(target, ndarray::array![1.0f32, 1.0, 3.0]);
        // Order of the genes does not matter.
        fixture::assert_mean(
            &baseline
                .predict(&fixture::query_in_a(&data, "G2+G1"), 2, 0)
                .unwrap(),
            &[1.0, 1.0, 3.0],
        );
    }

    #[test]
    fn a_single_missing_in_the_context_uses_its_cross_context_mean() {
        let (data, baseline) = fitted_baseline();
        // G3 is not trained in A: its mean over B and C is (0.5,0.5,−1); plus G1 in A (−1,0,1).
        let task = fixture::query_in_a(&data, "G1+G3");
        fixture::assert_mean(&baseline.predict(&task, 2, 0).unwrap(), &[1.5, 2.5, 2.0]);
        // A single knock-out query is its own shift: G2 in A.
        fixture::assert_mean(
            &baseline
                .predict(&fixture::query_in_a(&data, "G2"), 2, 0)
                .unwrap(),
            &[2.0, 1.0, 2.0],
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
    fn errors_on_an_unmeasured_single_and_before_fit() {
        let (data, baseline) = fitted_baseline();
        let err = baseline
            .predict(&fixture::query_in_a(&data, "G1+G4"), 2, 0)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("single knock-out `G4` was not measured"),
            "{err}"
        );
        let err = Additive::new()
            .predict(&fixture::query_in_a(&data, "G1+G2"), 2, 0)
            .unwrap_err();
        assert!(err.to_string().contains("before it was fitted"), "{err}");
    }
}
