//! The oracle baseline (MapPFN "Observed", the data ceiling): resampled real cells of the query. It is the
//! only predictor that reads `task.target`. MapPFN draws its Observed reference as a second independent
//! resample of the condition's cells; a task carries only the `n` target cells already drawn, so this
//! baseline resamples those (with `n` equal to the target size and no replacement it is a permutation of
//! them, whose every metric equals the target's own). For an independent resample, build a second task
//! for the same condition with another seed and score the two against each other.

use cellshift_data::{Capabilities, PredictError, Prediction, Predictor, Task};

use crate::error::BaselineError;
use crate::shared::effects::check_task_shape;
use crate::shared::resample::resample_cells;

/// Predicts the query's real cells, resampled. Needs no training; errors on tasks without a target.
#[derive(Clone, Debug, Default)]
pub struct OracleBaseline;

impl OracleBaseline {
    /// Registry name of this baseline.
    pub const NAME: &'static str = "oracle";

    /// A new oracle baseline.
    pub fn new() -> Self {
        OracleBaseline
    }
}

impl Predictor for OracleBaseline {
    fn name(&self) -> &str {
        Self::NAME
    }

    /// Cells at any K, read from the task's target: the ceiling, not a contender.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            reads_target: true,
            ..Capabilities::default()
        }
    }

    fn predict(&self, task: &Task, n_cells: usize, seed: u64) -> Result<Prediction, PredictError> {
        check_task_shape(task, None)?;
        let target = task.target.as_ref().ok_or(BaselineError::MissingTarget)?;
        let cells = resample_cells(target.view(), n_cells, seed, "the task's target")?;
        Ok(Prediction::Cells(cells))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::fixture;
    use ndarray::Array2;

    #[test]
    fn predicts_the_target_mean() {
        let data = fixture::data();
        let task = fixture::query_in_a(&data, "G3");
        // A's G3 cells are (2,2,0) twice.
        fixture::assert_mean(
            &OracleBaseline::new().predict(&task, 2, 9).unwrap(),
            &[2.0, 2.0, 0.0],
        );
        let task = fixture::query_in_a(&data, "G2");
        // A's G2 cells: (2,0,2), (2,2,2), (2,1,2) → mean (2,1,2); all three drawn without replacement.
        fixture::assert_mean(
            &OracleBaseline::new().predict(&task, 3, 9).unwrap(),
            &[2.0, 1.0, 2.0],
        );
    }

    #[test]
    fn deterministic_under_a_seed() {
        let obs = Array2::<f32>::zeros((4, 3));
        let target = Array2::from_shape_fn((30, 3), |(i, j)| (i * 3 + j) as f32);
        let task = fixture::task("A", obs, vec![], &["G3"], Some(target));
        let run = |seed| match OracleBaseline::new().predict(&task, 10, seed).unwrap() {
            Prediction::Cells(c) => c,
            Prediction::PseudoBulk(_) => panic!("cells expected"),
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn errors_without_a_target() {
        let data = fixture::data();
        let mut task = fixture::query_in_a(&data, "G3");
        task.target = None;
        let err = OracleBaseline::new().predict(&task, 2, 0).unwrap_err();
        assert!(err.to_string().contains("has no target"), "{err}");
    }
}
