//! One task ("example", MapPFN spec §1.2): the observational cells of a context, K measured context
//! experiments of the same context, the query treatment and, when known, the target cells.
//!
//! A task carries structured information — the context, the genes, and every treatment as a
//! [`Treatment`] with its intervention value — never a method's encoding of it: each method encodes
//! treatments its own way (MapPFN: one-hot over the measured genes; scDFM, CellTarNet: gene or
//! perturbation tokens; C3TL: perturbation identities).

use std::sync::Arc;

use ndarray::{Array1, Array2, Array3};

use crate::error::DataError;
use crate::model::{encode_treatment, Treatment};

/// A treatment applied in a task: what was done, its intervention value and its `obs` label.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskTreatment {
    /// What was done.
    pub treatment: Treatment,
    /// Intervention value (1.0 for knock-outs; the intervened value for linear-SCM interventions).
    pub value: f32,
    /// The label as written in `obs` (e.g. `GENE3`, `A+B`).
    pub label: String,
}

impl TaskTreatment {
    /// A treatment parsed from its `obs` label (see [`Treatment::from_label`]).
    pub fn from_label(label: &str, control_label: &str, value: f32) -> TaskTreatment {
        TaskTreatment {
            treatment: Treatment::from_label(label, control_label),
            value,
            label: label.to_string(),
        }
    }
}

/// The input (and, for training and scoring, the target) of one prediction.
#[derive(Clone, Debug)]
pub struct Task {
    /// Context name.
    pub context: String,
    /// Index of the context in the data set the task was cut from.
    pub context_index: usize,
    /// Gene names, the columns of every cell matrix of the task.
    pub genes: Arc<Vec<String>>,
    /// Control cells of the context, `n × d`.
    pub observational: Array2<f32>,
    /// The K context experiments' treatments, in slot order.
    pub experiments: Vec<TaskTreatment>,
    /// Cells of the K context experiments, `K × n × d` (K may be 0).
    pub context_cells: Array3<f32>,
    /// The query's treatment.
    pub query: TaskTreatment,
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

    /// The query's treatment label.
    pub fn query_label(&self) -> &str {
        &self.query.label
    }

    /// Labels of the K context treatments, then the query's (last).
    pub fn treatment_labels(&self) -> Vec<&str> {
        self.experiments
            .iter()
            .chain(std::iter::once(&self.query))
            .map(|t| t.label.as_str())
            .collect()
    }

    /// The value-scaled one-hot of a treatment over the task's genes (see [`encode_treatment`]).
    pub fn one_hot(&self, treatment: &TaskTreatment) -> Result<Array1<f32>, DataError> {
        encode_treatment(&self.genes, &treatment.treatment, treatment.value)
    }

    /// The query's one-hot encoding over the task's genes (zeros when its target is not measured).
    pub fn query_treatment(&self) -> Array1<f32> {
        self.one_hot(&self.query)
            .unwrap_or_else(|_| Array1::zeros(self.genes.len()))
    }
}
