//! Errors of the data layer. Every message names the problem and how to fix it.

use std::path::PathBuf;

/// Errors raised while reading, validating or transforming data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The input file does not exist.
    #[error("file not found: {0}; check the path")]
    NotFound(PathBuf),
    /// The file exists but is not an HDF5 file.
    #[error("{0} is not an HDF5 file; give an AnnData .h5ad file (write one with `adata.write_h5ad(...)`)")]
    NotHdf5(PathBuf),
    /// The file is HDF5 but lacks the AnnData layout.
    #[error("{path} is HDF5 but not AnnData: {reason}; write it with anndata's `write_h5ad`")]
    NotAnnData {
        /// The file.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A required `obs` column is missing.
    #[error("obs column `{column}` not found; available columns: {available}; pass the right one with {flag}")]
    MissingColumn {
        /// The column asked for.
        column: String,
        /// The columns the file has.
        available: String,
        /// The command-line flag that names the column.
        flag: String,
    },
    /// `--control auto` could not tell which label marks the control cells.
    #[error("cannot tell the control label: {reason}; candidates: {candidates}; pass it with --control LABEL")]
    NoControlLabel {
        /// Why detection failed (none or several control-like labels).
        reason: String,
        /// The labels to choose from, most frequent first, with their cell counts.
        candidates: String,
    },
    /// A label (control label, context, treatment) is not present.
    #[error("{what} `{label}` not found; available: {}", available.join(", "))]
    UnknownLabel {
        /// What kind of label (context, treatment, …).
        what: String,
        /// The label asked for.
        label: String,
        /// The labels present.
        available: Vec<String>,
    },
    /// Values that must be finite are not.
    #[error("{what} has a non-finite value {value} at row {row}, column {col}; remove or impute NaN/Inf values first")]
    NonFinite {
        /// The array concerned.
        what: String,
        /// Row of the first bad value.
        row: usize,
        /// Column of the first bad value.
        col: usize,
        /// The value.
        value: f64,
    },
    /// Negative values where counts are expected.
    #[error("{what} has a negative value {value} at row {row}, column {col}, but raw counts are expected; give raw counts or skip this step")]
    Negative {
        /// The array concerned.
        what: String,
        /// Row of the first negative value.
        row: usize,
        /// Column of the first negative value.
        col: usize,
        /// The value.
        value: f64,
    },
    /// Duplicate gene or cell names.
    #[error("duplicate {what} name `{name}`; make names unique (e.g. `adata.{what}_names_make_unique()` in anndata)")]
    Duplicate {
        /// `gene` or `cell`.
        what: String,
        /// The repeated name.
        name: String,
    },
    /// Two files have different genes.
    #[error("gene lists differ: {detail}; subset both files to the same genes in the same order")]
    GenesDiffer {
        /// The first difference.
        detail: String,
    },
    /// A condition has no cells.
    #[error("condition {condition} has no cells; choose a condition that is present (see `cellshift inspect`)")]
    EmptyCondition {
        /// The condition, as `(context, treatment)`.
        condition: String,
    },
    /// A gene that must be measured is not.
    #[error("gene `{gene}` is not measured in the data; {hint}")]
    GeneNotMeasured {
        /// The gene.
        gene: String,
        /// How to fix it.
        hint: String,
    },
    /// Any other invalid input; the message says what and how to fix it.
    #[error("{0}")]
    Invalid(String),
    /// An error from the HDF5 library.
    #[error("HDF5 error in {path}: {message}")]
    Hdf5 {
        /// The file.
        path: PathBuf,
        /// The library's message.
        message: String,
    },
    /// An I/O error.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Result alias of the data layer.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
