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

    /// Cells per set when scoring (64 tiny, 128 small): fewer than a suite condition has, so that the
    /// oracle's independent resample of a query is not the scored cells themselves.
    pub fn set_cells(&self) -> usize {
        match self {
            SuiteScale::Tiny => 64,
            SuiteScale::Small => 128,
        }
    }
}

/// Genes per network of every suite: the width of the bundled MapPFN checkpoint, so that in-context
/// models with a one-hot over the measured genes can be scored on the suites.
pub const SUITE_GENES: usize = 50;

/// SERGIO steps between two sampled cells in the suites.
pub const SUITE_SCALE_ITER: usize = 10;

/// Per spec gene: true when it regulates another gene (has an outgoing edge). Knock-outs of the other
/// genes change nothing downstream and serve the suites as placebos that measure the noise.
pub(crate) fn regulators(spec: &crate::GrnSpec) -> Vec<bool> {
    let mut out = vec![false; spec.genes.len()];
    for e in &spec.edges {
        out[e.regulator] = true;
    }
    out
}

/// Per spec gene `g`: its direct targets (`out[g][h]` true when an edge `g → h` exists).
pub(crate) fn targets(spec: &crate::GrnSpec) -> Vec<Vec<bool>> {
    let n = spec.genes.len();
    let mut out = vec![vec![false; n]; n];
    for e in &spec.edges {
        out[e.regulator][e.target] = true;
    }
    out
}

/// Per spec gene `g`: the genes downstream of it in the network (`out[g][h]` true when a directed path
/// leads from `g` to `h`; `g` itself excluded). These are the genes a knock-out of `g` can change.
pub(crate) fn descendants(spec: &crate::GrnSpec) -> Vec<Vec<bool>> {
    let n = spec.genes.len();
    let mut children = vec![Vec::new(); n];
    for e in &spec.edges {
        children[e.regulator].push(e.target);
    }
    (0..n)
        .map(|g| {
            let mut seen = vec![false; n];
            let mut stack = children[g].clone();
            while let Some(h) = stack.pop() {
                if !seen[h] {
                    seen[h] = true;
                    stack.extend(children[h].iter().copied());
                }
            }
            seen[g] = false;
            seen
        })
        .collect()
}
