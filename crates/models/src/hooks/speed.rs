//! The speed-benchmark hook (`cellshift bench speed --method M`).

use std::path::Path;

use cellshift_data::PerturbationData;

use super::{BenchKit, HookReport};

/// What `cellshift bench speed` hands a method's speed benchmark (each uses what applies to it).
pub struct SpeedRequest<'a> {
    /// A checkpoint (or run) directory to time (`--model`).
    pub model: Option<&'a Path>,
    /// A data set and where it was read from (`--data`).
    pub data: Option<(&'a Path, &'a PerturbationData)>,
    /// Model sizes to time (`--preset`; empty: the benchmark's default).
    pub presets: &'a [String],
    /// Genes of a synthetic problem (`--genes`; `None`: the benchmark's default).
    pub genes: Option<usize>,
    /// Cells per set (`--cells`; `None`: the benchmark's default).
    pub cells: Option<usize>,
    /// Seed of weights, noise and synthetic data.
    pub seed: u64,
    /// Also time the reference implementation and report the two side by side (`--against-reference`;
    /// hooks without a reference to run refuse it).
    pub against_reference: bool,
    /// The benchmark's own `--option KEY=VALUE` settings (read with [`super::parse_options`]).
    pub options: &'a [String],
    /// Scoring machinery of the benchmark code.
    pub kit: &'a dyn BenchKit,
}

/// A method's speed benchmark.
pub type SpeedFn = fn(&SpeedRequest<'_>) -> anyhow::Result<HookReport>;

/// Refuses `--against-reference` for a benchmark (`what`) that has no reference implementation to run.
pub fn refuse_reference(request: &SpeedRequest<'_>, what: &str) -> anyhow::Result<()> {
    if request.against_reference {
        anyhow::bail!(
            "{what} has no reference implementation to time against; drop --against-reference \
             (the methods with one: scdfm, which runs the authors' code; mappfn and celltarnet include \
             their reference sampler and decoding in every run)"
        );
    }
    Ok(())
}
