//! Benchmark suites with known ground truth, simulated with the SERGIO prior: several cell types on one
//! network ([`multi_context`]) and single plus double knock-outs on one network ([`combinatorial`]).
//! Each suite returns raw UMI counts with the usual `obs` layout (context, `perturbation` labels with
//! `control`, `A+B` for doubles) and statistics that show how hard it is, computed by [`effects`] on the
//! normalised scale the benchmarks score on (median total, natural log1p).

pub mod combinatorial;
pub mod effects;
pub mod multi_context;

pub use combinatorial::{combinatorial_suite, CombinatorialConfig, CombinatorialStats};
pub use multi_context::{multi_context_suite, MultiContextConfig, MultiContextStats};

/// How large a suite is: `Tiny` for tests and CI (seconds), `Small` for the recorded leaderboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum SuiteScale {
    /// 50 genes, 100 cells per condition and cell type, few cell types / doubles.
    Tiny,
    /// 50 genes, 200 cells per condition and cell type (the SERGIO prior's size), more cell types /
    /// doubles.
    Small,
}

impl SuiteScale {
    /// Parses `tiny` or `small`; the error names the valid values.
    pub fn parse(text: &str) -> Result<SuiteScale, crate::PriorError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "tiny" => Ok(SuiteScale::Tiny),
            "small" => Ok(SuiteScale::Small),
            other => Err(crate::PriorError::invalid(
                "scale",
                other,
                "is not a suite scale",
                "use `tiny` (tests, CI) or `small`",
            )),
        }
    }

    /// The lower-case name.
    pub fn name(&self) -> &'static str {
        match self {
            SuiteScale::Tiny => "tiny",
            SuiteScale::Small => "small",
        }
    }

    /// Cells per condition (and cell type).
    pub fn cells(&self) -> usize {
        match self {
            SuiteScale::Tiny => 100,
            SuiteScale::Small => 200,
        }
    }
}

/// Genes per network of every suite: the width of the bundled MapPFN checkpoint, so that in-context
/// models with a one-hot over the measured genes can be scored on the suites.
pub const SUITE_GENES: usize = 50;
