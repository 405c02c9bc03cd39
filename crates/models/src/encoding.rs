//! Treatment encodings of the methods. A task carries structured treatments (see
//! [`cellshift_data::TaskTreatment`]); each method turns them into numbers its own way. MapPFN uses
//! [`OneHot`]: the value-scaled one-hot of the target gene(s) over the task's measured genes.

use cellshift_data::{Task, TaskTreatment};
use ndarray::{Array1, Array2};

use crate::error::{ModelError, Result};

/// One-hot over the measured genes, scaled by the intervention value (MapPFN spec §1.1): knock-out of
/// gene j → `e_j`; linear-SCM intervention `do(x_j := c)` → `c·e_j`; combination → the sum; control → 0.
#[derive(Clone, Copy, Debug, Default)]
pub struct OneHot;

impl OneHot {
    /// The encoding of one treatment over the task's genes; errors (naming the gene and the fix) when a
    /// target gene is not measured.
    pub fn encode(task: &Task, treatment: &TaskTreatment) -> Result<Array1<f32>> {
        task.one_hot(treatment).map_err(|e| {
            ModelError::Input(format!(
                "cannot encode treatment `{}` as a one-hot over the measured genes: {e}",
                treatment.label
            ))
        })
    }

    /// Rows for the K context treatments, then the query (last): `(K+1) × d`.
    pub fn task_treatments(task: &Task) -> Result<Array2<f32>> {
        let mut rows = Array2::<f32>::zeros((task.experiments.len() + 1, task.genes.len()));
        for (i, t) in task
            .experiments
            .iter()
            .chain(std::iter::once(&task.query))
            .enumerate()
        {
            rows.row_mut(i).assign(&OneHot::encode(task, t)?);
        }
        Ok(rows)
    }
}
