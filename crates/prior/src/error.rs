//! Errors of the synthetic priors. Every message names the problem and how to fix it.

use std::path::PathBuf;

use cellshift_data::DataError;

/// Errors raised while reading GRN specifications, validating prior parameters or simulating.
#[derive(Debug, thiserror::Error)]
pub enum PriorError {
    /// A numeric parameter is outside its valid range.
    #[error("invalid parameter `{name}` = {value}: {reason}; {fix}")]
    InvalidParameter {
        /// Parameter name as in the configuration / JSON file.
        name: String,
        /// The offending value, formatted.
        value: String,
        /// Why it is invalid.
        reason: String,
        /// How to fix it.
        fix: String,
    },
    /// A user-supplied GRN has a directed cycle (SERGIO's steady-state mode needs a DAG).
    #[error(
        "the GRN has a directed cycle {}; SERGIO's steady-state simulation needs an acyclic network: \
         remove at least one edge of the cycle",
        cycle.join(" -> ")
    )]
    CyclicGrn {
        /// The genes on the cycle, first gene repeated at the end.
        cycle: Vec<String>,
    },
    /// A gene named in a knock-out, an edge or a rate table is not a gene of the GRN.
    #[error("unknown gene `{gene}` in {context}; known genes: {}; {fix}", known.join(", "))]
    UnknownGene {
        /// The gene name as given.
        gene: String,
        /// Where it was referenced (e.g. "knock-out selection").
        context: String,
        /// The genes of the GRN (possibly truncated).
        known: Vec<String>,
        /// How to fix it.
        fix: String,
    },
    /// More interventional context experiments were requested than there are genes to intervene on.
    #[error(
        "{requested} context experiments requested but the data set has only {genes} genes (one \
         single-gene intervention per gene at most); ask for at most {genes} experiments or use more genes"
    )]
    TooManyExperiments {
        /// Number of experiments requested.
        requested: usize,
        /// Number of genes available.
        genes: usize,
    },
    /// The GRN specification is structurally invalid (missing field, duplicate edge, bad CSV row ...).
    #[error("invalid GRN specification{}: {message}", source_path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    InvalidSpec {
        /// File the specification was read from, if any.
        source_path: Option<PathBuf>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The simulation produced an unusable control condition (an all-zero cell), so the data set has no
    /// observational set.
    #[error(
        "simulation of `{context}` failed: {reason}; the reference generator discards such conditions \
         — use another seed, larger production rates or fewer cells"
    )]
    SimulationFailed {
        /// Context (GRN) name.
        context: String,
        /// What went wrong.
        reason: String,
    },
    /// Reading a file failed.
    #[error("I/O error on {path}: {source}; check that the file exists and is readable")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A JSON file could not be parsed.
    #[error("cannot parse JSON GRN file {path}: {message}; see the GRN JSON format in cellshift-prior's spec_json docs")]
    Json {
        /// The file.
        path: PathBuf,
        /// Parser message (with line/column).
        message: String,
    },
    /// Building the output data set failed.
    #[error(transparent)]
    Data(#[from] DataError),
}

impl PriorError {
    /// Shorthand for [`PriorError::InvalidParameter`].
    pub fn invalid(
        name: &str,
        value: impl std::fmt::Display,
        reason: &str,
        fix: &str,
    ) -> PriorError {
        PriorError::InvalidParameter {
            name: name.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
            fix: fix.to_string(),
        }
    }
}

/// Checks that a parameter is finite and strictly positive.
pub(crate) fn check_positive(name: &str, value: f64, fix: &str) -> Result<(), PriorError> {
    if !(value.is_finite() && value > 0.0) {
        return Err(PriorError::invalid(
            name,
            value,
            "must be a finite number > 0",
            fix,
        ));
    }
    Ok(())
}

/// Checks that a parameter is finite and non-negative.
pub(crate) fn check_non_negative(name: &str, value: f64, fix: &str) -> Result<(), PriorError> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(PriorError::invalid(
            name,
            value,
            "must be a finite number ≥ 0",
            fix,
        ));
    }
    Ok(())
}

/// Checks a `(low, high)` range: finite, `low <= high`.
pub(crate) fn check_range(name: &str, range: (f64, f64), fix: &str) -> Result<(), PriorError> {
    if !(range.0.is_finite() && range.1.is_finite() && range.0 <= range.1) {
        return Err(PriorError::invalid(
            name,
            format!("[{}, {}]", range.0, range.1),
            "must be a finite range with low ≤ high",
            fix,
        ));
    }
    Ok(())
}
