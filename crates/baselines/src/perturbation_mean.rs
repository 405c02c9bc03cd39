//! The perturbation-mean baseline (STATE `perturb_mean`, C3TL "Mean baseline", PerturBench `Average` on the
//! delta scale): the query perturbation's mean shift across the training contexts, added to the query
//! context's control cells.
//!
//! Shift of perturbation p = mean over the training contexts c where p was measured of
//! (pseudo-bulk(p, c) − pseudo-bulk(control, c)), each context weighted equally. Prediction = the task's
//! control cells (resampled to n) + that shift. **Fallback** when p was never measured in training: the
//! global mean shift, i.e. the mean over all distinct training perturbations of their mean shifts (each
//! perturbation weighted equally) — the "mean of perturbation pseudo-bulks on the delta scale" baseline.
//! A control query gets a zero shift.

use cellshift_data::FitContext;
use cellshift_data::{PerturbationData, PredictError, Prediction, Predictor, Task, Treatment};

use crate::shared::effects::{fitted, TrainingEffects};
use crate::shared::resample::shifted_control_cells;

/// Control cells plus the query perturbation's mean training shift (global mean shift if unseen).
#[derive(Clone, Debug, Default)]
pub struct PerturbationMean {
    effects: Option<TrainingEffects>,
}

impl PerturbationMean {
    /// Registry name of this baseline.
    pub const NAME: &'static str = "perturbation_mean";

    /// A new, unfitted baseline.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when the query perturbation of `task` was measured in training (otherwise `predict` uses the
    /// global mean shift). Errors before `fit`.
    pub fn has_seen(&self, task: &Task) -> Result<bool, PredictError> {
        let effects = fitted(&self.effects, Self::NAME)?;
        Ok(!effects
            .contexts_with(&effects.query_treatment(task)?)
            .is_empty())
    }
}

impl Predictor for PerturbationMean {
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
            Treatment::Control => ndarray::Array1::zeros(effects.n_genes()),
            ref p => effects
                .perturbation_mean_shift(p)
                .unwrap_or_else(|| effects.global_mean_shift())
                .clone(),
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

    fn fitted_baseline() -> (PerturbationData, PerturbationMean) {
        let data = fixture::data();
        let mut baseline = PerturbationMean::new();
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
    fn adds_the_mean_shift_across_training_contexts() {
        let (data, baseline) = fitted_baseline();
        // G3 shifts: B (0,0,−3), C (1,1,1) → mean (0.5,0.5,−1); A's control mean (2,2,2).
        let task = fixture::query_in_a(&data, "G3");
        assert!(baseline.has_seen(&task).unwrap());
        fixture::assert_mean(&baseline.predict(&task, 2, 0).unwrap(), &[2.5, 2.5, 1.0]);
        // G1 shifts: A (−1,0,1), B (−2,0,2), C (−1,0,1.5) → (−4/3, 0, 1.5).
        let task = fixture::query_in_a(&data, "G1");
        fixture::assert_mean(
            &baseline.predict(&task, 2, 0).unwrap(),
            &[2.0 - 4.0 / 3.0, 2.0, 3.5],
        );
    }

    #[test]
    fn unseen_perturbation_gets_the_global_mean_shift() {
        let (data, baseline) = fitted_baseline();
        // Per-perturbation means G1 (−4/3,0,1.5), G2 (0,−1,0), G3 (0.5,0.5,−1) → (−5/18, −1/6, 1/6).
        // The combination G1+G2 was held out of training, and G4 is not even a gene of the data.
        for label in ["G1+G2", "G4"] {
            let task = fixture::query_in_a(&data, label);
            assert!(!baseline.has_seen(&task).unwrap());
            fixture::assert_mean(
                &baseline.predict(&task, 2, 0).unwrap(),
                &[2.0 - 5.0 / 18.0, 2.0 - 1.0 / 6.0, 2.0 + 1.0 / 6.0],
            );
        }
        // A control query is the control cells unchanged.
        fixture::assert_mean(
            &baseline
                .predict(&fixture::query_in_a(&data, "control"), 2, 0)
                .unwrap(),
            &[2.0, 2.0, 2.0],
        );
    }

    #[test]
    fn deterministic_under_a_seed_and_paired_with_control() {
        let (data, baseline) = fitted_baseline();
        let task = fixture::query_in_a(&data, "G3");
        let cells = |seed| match baseline.predict(&task, 7, seed).unwrap() {
            Prediction::Cells(c) => c,
            Prediction::PseudoBulk(_) => panic!("cells expected"),
        };
        assert_eq!(cells(4), cells(4));
        assert_ne!(cells(4), cells(5));
        // Same seed → the same control cells as the identity baseline, shifted by (0.5, 0.5, −1).
        let Prediction::Cells(control) =
            crate::ControlBaseline::new().predict(&task, 7, 4).unwrap()
        else {
            panic!()
        };
        let diff = cells(4) - control;
        for row in diff.rows() {
            assert!(
                (row[0] - 0.5).abs() < 1e-6
                    && (row[1] - 0.5).abs() < 1e-6
                    && (row[2] + 1.0).abs() < 1e-6
            );
        }
    }

    #[test]
    fn errors_before_fit_and_on_bad_input() {
        let data = fixture::data();
        let task = fixture::query_in_a(&data, "G3");
        let err = PerturbationMean::new().predict(&task, 2, 0).unwrap_err();
        assert!(err.to_string().contains("before it was fitted"), "{err}");
        let mut baseline = PerturbationMean::new();
        let err = baseline
            .fit(&data, &[999], &mut FitContext::default())
            .unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
        let err = baseline
            .fit(&data, &[], &mut FitContext::default())
            .unwrap_err();
        assert!(err.to_string().contains("no training conditions"), "{err}");
        // Control conditions only: nothing to average.
        let controls: Vec<usize> = (0..data.conditions().len())
            .filter(|&i| data.treatments[data.conditions()[i].treatment].is_control())
            .collect();
        let err = baseline
            .fit(&data, &controls, &mut FitContext::default())
            .unwrap_err();
        assert!(err.to_string().contains("all control conditions"), "{err}");
        // A task with another gene count.
        baseline
            .fit(
                &data,
                &fixture::train_conditions(&data),
                &mut FitContext::default(),
            )
            .unwrap();
        let wide = fixture::task("A", ndarray::Array2::zeros((2, 4)), vec![], &["G3"], None);
        let err = baseline.predict(&wide, 2, 0).unwrap_err();
        assert!(
            err.to_string().contains("has 4 genes but 3 were expected"),
            "{err}"
        );
    }
}
