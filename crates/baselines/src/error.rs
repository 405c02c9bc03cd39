//! Errors of the baselines. Every message names the problem and how to fix it.

/// Errors raised while fitting a baseline or predicting with it.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// [`crate::baseline_by_name`] was given a name it does not know.
    #[error("unknown baseline `{name}`; valid names: {}", valid.join(", "))]
    UnknownName {
        /// The name concerned.
        name: String,
        /// The valid choices.
        valid: Vec<String>,
    },
    /// `predict` was called on a baseline that learns from training data before `fit`.
    #[error("baseline `{baseline}` was asked to predict before it was fitted; call `fit` with the training conditions first")]
    NotFitted {
        /// The baseline.
        baseline: String,
    },
    /// The oracle was given a task without target cells.
    #[error("the `oracle` baseline resamples the query's real cells, but this task has no target (an inference task); build the task with its target cells (training or scoring) or choose another baseline")]
    MissingTarget,
    /// A set of cells that must not be empty is empty.
    #[error("{what} has no cells; give a task with at least one cell in it")]
    EmptyCells {
        /// What the value is.
        what: String,
    },
    /// `n_cells` was zero.
    #[error("asked for 0 predicted cells; ask for at least one")]
    ZeroCells,
    /// A task's gene count differs from the data the baseline was fitted on, or its arrays disagree.
    #[error("{what} has {got} genes but {expected} were expected; build tasks and fit baselines on the same gene panel")]
    GeneCountMismatch {
        /// What the value is.
        what: String,
        /// The value found.
        got: usize,
        /// The value expected.
        expected: usize,
    },
    /// A training-condition index does not exist in the data.
    #[error(
        "training condition index {index} is out of range: the data has {n_conditions} conditions"
    )]
    ConditionOutOfRange {
        /// The index.
        index: usize,
        /// The n conditions.
        n_conditions: usize,
    },
    /// Nothing in the training conditions can be used by the baseline.
    #[error("`{baseline}` found no usable training data: {reason}")]
    NoTrainingData {
        /// The baseline.
        baseline: String,
        /// What went wrong.
        reason: String,
    },
    /// The query's context has no training data that the baseline needs.
    #[error("`{baseline}` cannot predict in context `{context}`: {reason}")]
    ContextNotTrained {
        /// The baseline.
        baseline: String,
        /// The context.
        context: String,
        /// What went wrong.
        reason: String,
    },
    /// A perturbation (or a single gene of a combination) was never measured where the baseline needs it.
    #[error("`{baseline}` cannot predict `{perturbation}` in context `{context}`: {reason}")]
    PerturbationNotMeasured {
        /// The baseline.
        baseline: String,
        /// The perturbation.
        perturbation: String,
        /// The context.
        context: String,
        /// What went wrong.
        reason: String,
    },
    /// The query's target gene is not one of the measured genes.
    #[error("`{baseline}` needs the perturbed gene `{gene}` to be measured (it embeds a perturbation by its gene's row), but it is not among the data's genes; choose a panel that contains it or another baseline")]
    GeneNotMeasured {
        /// The baseline.
        baseline: String,
        /// The gene.
        gene: String,
    },
    /// The baseline does not handle this kind of treatment.
    #[error("`{baseline}` cannot predict treatment `{label}`: {reason}")]
    UnsupportedTreatment {
        /// The baseline.
        baseline: String,
        /// The label.
        label: String,
        /// What went wrong.
        reason: String,
    },
    /// The task is malformed (e.g. it has no query label).
    #[error("invalid task: {0}")]
    InvalidTask(String),
    /// A parameter is out of its valid range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// A numerical routine failed (singular system, no convergence).
    #[error("numerical failure: {0}")]
    Numerical(String),
}
