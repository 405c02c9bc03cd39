//! One MapPFN task ("example", spec §1.2): the observational cells of a context, K measured context
//! experiments of the same context, the query treatment and, when known, the target cells.

use ndarray::{Array1, Array2, Array3};

/// The input (and, for training and scoring, the target) of one prediction.
#[derive(Clone, Debug)]
pub struct Task {
    /// Context name.
    pub context: String,
    /// Control cells of the context, `n × d`.
    pub observational: Array2<f32>,
    /// Cells of the K context experiments, `K × n × d` (K may be 0).
    pub context_cells: Array3<f32>,
    /// Treatment encodings, `(K+1) × d`: the K context treatments, then the query (last row).
    pub treatments: Array2<f32>,
    /// Labels of the K context treatments, then the query's (last).
    pub treatment_labels: Vec<String>,
    /// Cells of the query condition, `n × d`, when known (training, scoring); `None` at inference.
    pub target: Option<Array2<f32>>,
}

impl Task {
    /// Number of context experiments K.
    pub fn k(&self) -> usize {
        self.context_cells.shape()[0]
    }

    /// Number of genes d.
    pub fn n_genes(&self) -> usize {
        self.observational.ncols()
    }

    /// The query's treatment encoding (last row of `treatments`).
    pub fn query_treatment(&self) -> Array1<f32> {
        self.treatments.row(self.treatments.nrows() - 1).to_owned()
    }

    /// The query's treatment label.
    pub fn query_label(&self) -> &str {
        self.treatment_labels
            .last()
            .map(String::as_str)
            .unwrap_or("")
    }
}
