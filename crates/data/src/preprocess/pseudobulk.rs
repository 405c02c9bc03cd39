//! Pseudo-bulk profiles: the per-gene mean expression of every (context, treatment) condition, with its
//! cell count. Means are accumulated in f64.

use ndarray::{Array1, Array2};

use crate::error::DataError;
use crate::h5ad::{AnnData, Column, DataFrame, Matrix};
use crate::model::{Condition, PerturbationData};

/// Pseudo-bulk table: one row per condition of the data, in `data.conditions()` order.
#[derive(Clone, Debug, PartialEq)]
pub struct PseudoBulk {
    /// Gene names (columns of `means`).
    pub genes: Vec<String>,
    /// Context name per row.
    pub contexts: Vec<String>,
    /// Treatment label per row.
    pub treatments: Vec<String>,
    /// Cells per row.
    pub n_cells: Vec<usize>,
    /// Mean expression, rows × genes.
    pub means: Array2<f64>,
}

impl PseudoBulk {
    /// The table as AnnData: one row per condition named `context|treatment`, `obs` with the context, the
    /// treatment label (in column `label_column`) and the cell count.
    pub fn to_anndata(&self, label_column: &str) -> Result<AnnData, DataError> {
        let index: Vec<String> = self
            .contexts
            .iter()
            .zip(&self.treatments)
            .map(|(c, t)| format!("{c}|{t}"))
            .collect();
        let mut obs = DataFrame::from_index(index);
        obs.set_column("context", Column::Str(self.contexts.clone()))?;
        obs.set_column(label_column, Column::Str(self.treatments.clone()))?;
        obs.set_column(
            "n_cells",
            Column::I64(self.n_cells.iter().map(|&n| n as i64).collect()),
        )?;
        Ok(AnnData {
            x: Some(Matrix::Dense(self.means.mapv(|v| v as f32))),
            obs,
            var: DataFrame::from_index(self.genes.clone()),
            ..AnnData::default()
        })
    }

    /// Row of a (context, treatment) pair; errors with [`DataError::EmptyCondition`] if absent.
    pub fn row(&self, context: &str, treatment: &str) -> Result<usize, DataError> {
        self.contexts
            .iter()
            .zip(&self.treatments)
            .position(|(c, t)| c == context && t == treatment)
            .ok_or_else(|| DataError::EmptyCondition {
                condition: format!("({context}, {treatment})"),
            })
    }
}

/// Mean profile of one condition.
pub fn condition_mean(data: &PerturbationData, condition: &Condition) -> Array1<f64> {
    data.x.mean_of_rows(&condition.cells)
}

/// Pseudo-bulk means of every condition.
pub fn pseudobulk(data: &PerturbationData) -> PseudoBulk {
    let conds = data.conditions();
    let mut means = Array2::<f64>::zeros((conds.len(), data.n_genes()));
    for (i, c) in conds.iter().enumerate() {
        means.row_mut(i).assign(&condition_mean(data, c));
    }
    PseudoBulk {
        genes: data.genes.clone(),
        contexts: conds
            .iter()
            .map(|c| data.contexts[c.context].clone())
            .collect(),
        treatments: conds
            .iter()
            .map(|c| data.treatments[c.treatment].label(&data.control_label))
            .collect(),
        n_cells: conds.iter().map(|c| c.cells.len()).collect(),
        means,
    }
}

/// Mean profile and cell count of the condition (context, treatment label). Errors with
/// [`DataError::UnknownLabel`] for an unknown context or treatment and [`DataError::EmptyCondition`] when
/// the pair has no cells.
pub fn pseudobulk_of(
    data: &PerturbationData,
    context: &str,
    treatment: &str,
) -> Result<(Array1<f64>, usize), DataError> {
    let ci = data.context_index(context)?;
    let ti = data.treatment_index(treatment)?;
    let cond = data
        .condition(ci, ti)
        .ok_or_else(|| DataError::EmptyCondition {
            condition: format!("({context}, {treatment})"),
        })?;
    Ok((condition_mean(data, cond), cond.cells.len()))
}
