//! Errors of the metric suite. Every message names the problem and how to fix it.

use std::path::PathBuf;

/// Errors raised while reading an evaluation case or computing metrics.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The input file could not be opened or read.
    #[error(
        "cannot read {path}: {reason}; check the path and that the file is a NumPy .npz archive"
    )]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// An array required by the `.npz` layout is missing.
    #[error("{path}: array `{name}` is missing; an evaluation .npz needs `obs`, `true_0..true_{{P-1}}` and `pred_0..pred_{{P-1}}` (optional `names`, `targets`)")]
    MissingArray {
        /// The file concerned.
        path: PathBuf,
        /// The name concerned.
        name: String,
    },
    /// An array has an unsupported dtype or shape.
    #[error("{path}: array `{name}` could not be read ({reason}); store expression matrices as 2-D float64/float32, `names` as a 1-D string array and `targets` as 1-D integers")]
    BadArray {
        /// The file concerned.
        path: PathBuf,
        /// The name concerned.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// Two matrices that must share genes have a different number of columns.
    #[error("{what} has {got} genes (columns) but the control matrix `obs` has {expected}; predictions and ground truth must use the same genes in the same order")]
    GeneMismatch {
        /// What the value is.
        what: String,
        /// The value found.
        got: usize,
        /// The value expected.
        expected: usize,
    },
    /// A matrix has too few cells for the requested statistic.
    #[error("{what} has {got} cells but at least {min} are needed; drop this perturbation or provide more cells")]
    TooFewCells {
        /// What the value is.
        what: String,
        /// The value found.
        got: usize,
        /// The smallest allowed value.
        min: usize,
    },
    /// There are no control cells.
    #[error("the control matrix `obs` has no cells; every metric referenced to control needs control (non-targeting) cells")]
    NoControlCells,
    /// There are no perturbations to evaluate.
    #[error(
        "the case has no perturbations (no `true_0`/`pred_0`); provide at least one perturbation"
    )]
    NoPerturbations,
    /// Inconsistent list lengths (names, targets, trues, preds).
    #[error("{what} has length {got} but there are {expected} perturbations; give one entry per perturbation")]
    LengthMismatch {
        /// What the value is.
        what: String,
        /// The value found.
        got: usize,
        /// The value expected.
        expected: usize,
    },
    /// A value that must be finite is not.
    #[error("{what} has a non-finite value ({value}) at row {row}, column {col}; remove or impute NaN/Inf values before evaluation")]
    NonFinite {
        /// What the value is.
        what: String,
        /// Row of the value.
        row: usize,
        /// Column of the value.
        col: usize,
        /// The value.
        value: f64,
    },
    /// An unknown metric group name.
    #[error("unknown metric group `{0}`; choose from: mappfn, celleval, de, perturbench, systema, distribution, all")]
    UnknownGroup(String),
    /// A parameter is outside its valid range.
    #[error("invalid parameter {name} = {value}: {hint}")]
    InvalidParameter {
        /// The name concerned.
        name: String,
        /// The value.
        value: String,
        /// How to fix it.
        hint: String,
    },
    /// Writing an output failed.
    #[error("cannot write {path}: {reason}")]
    Write {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}
