//! The identity baseline (MapPFN "Identity", Ahlmann-Eltze "no change"): the query's predicted cells are
//! the task's observational (control) cells, resampled to `n` cells with the sampler's replacement rule.

use cellshift_data::{PredictError, Prediction, Predictor, Task};

use crate::shared::effects::check_task_shape;
use crate::shared::resample::resample_cells;

/// Predicts "no change": resampled control cells of the task's context. Needs no training.
#[derive(Clone, Debug, Default)]
pub struct ControlBaseline;

impl ControlBaseline {
    /// Registry name of this baseline.
    pub const NAME: &'static str = "control";

    /// A new identity baseline.
    pub fn new() -> Self {
        ControlBaseline
    }
}

impl Predictor for ControlBaseline {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn predict(&self, task: &Task, n_cells: usize, seed: u64) -> Result<Prediction, PredictError> {
        check_task_shape(task, None)?;
        let cells = resample_cells(
            task.observational.view(),
            n_cells,
            seed,
            "the task's observational (control) set",
        )?;
        Ok(Prediction::Cells(cells))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::fixture;
    use ndarray::Array2;

    #[test]
    fn predicts_the_control_mean_and_control_rows() {
        let data = fixture::data();
        let task = fixture::query_in_a(&data, "G3");
        let prediction = ControlBaseline::new().predict(&task, 2, 5).unwrap();
        // Two control cells (1,2,3) and (3,2,1), drawn without replacement: mean (2,2,2).
        fixture::assert_mean(&prediction, &[2.0, 2.0, 2.0]);
        let Prediction::Cells(cells) = prediction else {
            panic!("cell-level prediction expected")
        };
        for row in cells.rows() {
            assert!(task.observational.rows().into_iter().any(|r| r == row));
        }
        // More cells than the pool: drawn with replacement, still control rows only.
        let Prediction::Cells(many) = ControlBaseline::new().predict(&task, 9, 5).unwrap() else {
            panic!()
        };
        assert_eq!(many.nrows(), 9);
        for row in many.rows() {
            assert!(task.observational.rows().into_iter().any(|r| r == row));
        }
    }

    #[test]
    fn deterministic_under_a_seed() {
        let obs = Array2::from_shape_fn((30, 3), |(i, j)| (i * 3 + j) as f32);
        let task = fixture::task("A", obs, vec![], &["G3"], None);
        let a = ControlBaseline::new().predict(&task, 10, 1).unwrap();
        let b = ControlBaseline::new().predict(&task, 10, 1).unwrap();
        let c = ControlBaseline::new().predict(&task, 10, 2).unwrap();
        let (Prediction::Cells(a), Prediction::Cells(b), Prediction::Cells(c)) = (a, b, c) else {
            panic!()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn errors_on_an_empty_observational_set_and_zero_cells() {
        let task = fixture::task("A", Array2::zeros((0, 3)), vec![], &["G3"], None);
        let err = ControlBaseline::new().predict(&task, 4, 0).unwrap_err();
        assert!(
            err.to_string()
                .contains("observational (control) set has no cells"),
            "{err}"
        );
        let data = fixture::data();
        let err = ControlBaseline::new()
            .predict(&fixture::query_in_a(&data, "G3"), 0, 0)
            .unwrap_err();
        assert!(err.to_string().contains("at least one"), "{err}");
    }
}
