//! `cellshift.simulate`: synthetic screens from the priors (linear SCMs, random SERGIO networks) and the
//! benchmark suites, as the command line's `simulate` makes them, returned in memory.

use cellshift_data::preprocess::NormalizeTarget;
use cellshift_data::PerturbationData;
use cellshift_prior::{
    combinatorial_suite, multi_context_suite, normalize_dataset, CombinatorialConfig,
    LinearScmConfig, LinearScmPrior, MultiContextConfig, SergioPrior, SergioPriorConfig,
    SuiteScale,
};

use crate::runner::Reporter;

/// A random screen: one network per context, every gene knocked out once, plus the control.
pub struct RandomScreen {
    /// `linear` or `sergio`.
    pub prior: String,
    /// Networks (contexts).
    pub contexts: usize,
    /// Genes per network (prior default when `None`).
    pub genes: Option<usize>,
    /// Cells per condition (prior default when `None`).
    pub cells: Option<usize>,
    /// Seed; context i uses seed + i.
    pub seed: u64,
    /// SERGIO: normalise each network (median total, natural log1p) instead of raw counts.
    pub log_normalize: bool,
    /// SERGIO: clean expression, no technical noise.
    pub clean: bool,
    /// Paired noise across conditions (SERGIO default paired, linear default unpaired).
    pub paired: Option<bool>,
}

/// Simulates a random screen, reporting one step per network.
pub fn random(screen: &RandomScreen, reporter: &Reporter) -> anyhow::Result<PerturbationData> {
    if screen.contexts == 0 {
        anyhow::bail!("contexts must be at least 1");
    }
    let mut parts = Vec::with_capacity(screen.contexts);
    for i in 0..screen.contexts {
        reporter.check()?;
        let seed = cellshift_data::seed::offset_seed(screen.seed, i as u64);
        let context = format!("{}_{i}", screen.prior);
        let part = match screen.prior.as_str() {
            "linear" => {
                let defaults = LinearScmConfig::default();
                let cfg = LinearScmConfig {
                    n_nodes: screen.genes.unwrap_or(defaults.n_nodes),
                    n_samples: screen.cells.unwrap_or(defaults.n_samples),
                    paired: screen.paired.unwrap_or(false),
                    ..defaults
                };
                LinearScmPrior::sample_named(&cfg, seed, &context)?
            }
            "sergio" => {
                let defaults = SergioPriorConfig::default();
                let cfg = SergioPriorConfig {
                    n_genes: screen.genes.unwrap_or(defaults.n_genes),
                    n_cells: screen.cells.unwrap_or(defaults.n_cells),
                    paired: screen.paired.unwrap_or(true),
                    technical_noise: !screen.clean,
                    ..defaults
                };
                let raw = SergioPrior::sample_named(&cfg, seed, &context)?;
                if screen.log_normalize {
                    normalize_dataset(&raw, Some(NormalizeTarget::MedianOfTotals))?
                } else {
                    raw
                }
            }
            other => anyhow::bail!("prior `{other}` is not known; use \"sergio\" or \"linear\""),
        };
        parts.push(part);
        reporter.progress(i as u64 + 1, screen.contexts as u64, "simulating networks");
    }
    concat_contexts(parts)
}

/// A benchmark suite with known ground truth.
pub struct SuiteRequest {
    /// `multi-context` or `combinatorial`.
    pub suite: String,
    /// `tiny` or `small`.
    pub scale: String,
    /// Seed of the suite.
    pub seed: u64,
    /// Multi-context: networks.
    pub grns: usize,
    /// Multi-context: cell types per network.
    pub cell_types: Option<usize>,
    /// Combinatorial: double knock-outs.
    pub doubles: Option<usize>,
    /// Genes per network.
    pub genes: Option<usize>,
    /// Cells per condition.
    pub cells: Option<usize>,
}

/// Simulates a suite; the data (raw counts) and its statistics as JSON.
pub fn suite(request: &SuiteRequest) -> anyhow::Result<(PerturbationData, serde_json::Value)> {
    let scale = SuiteScale::parse(&request.scale)?;
    match request.suite.as_str() {
        "multi-context" => {
            let defaults = MultiContextConfig::at_scale(scale, request.seed);
            let cfg = MultiContextConfig {
                n_grns: request.grns,
                n_cell_types: request.cell_types.unwrap_or(defaults.n_cell_types),
                n_genes: request.genes.unwrap_or(defaults.n_genes),
                n_cells: request.cells.unwrap_or(defaults.n_cells),
                ..defaults
            };
            let suite = multi_context_suite(&cfg)?;
            Ok((suite.data, serde_json::to_value(&suite.stats)?))
        }
        "combinatorial" => {
            let defaults = CombinatorialConfig::at_scale(scale, request.seed);
            let cfg = CombinatorialConfig {
                n_genes: request.genes.unwrap_or(defaults.n_genes),
                n_cells: request.cells.unwrap_or(defaults.n_cells),
                n_doubles: request.doubles.unwrap_or(defaults.n_doubles),
                ..defaults
            };
            let suite = combinatorial_suite(&cfg)?;
            Ok((suite.data, serde_json::to_value(&suite.stats)?))
        }
        other => anyhow::bail!(
            "suite `{other}` is not known; use \"multi-context\" or \"combinatorial\""
        ),
    }
}

/// Stacks data sets with the same genes (one per context) into one; cell names get the context prefix.
fn concat_contexts(parts: Vec<PerturbationData>) -> anyhow::Result<PerturbationData> {
    Ok(PerturbationData::stack(parts, true)?)
}
