//! `cellshift simulate`: synthetic screens from the priors (linear SCM, random SERGIO GRN) or from a
//! user-supplied network, written as `.h5ad` (`obs`: context, perturbation, treatment_value).

use crate::outputs::{check_outputs, Output};
use std::path::{Path, PathBuf};

use std::time::Instant;

use anyhow::Context;
use cellshift_data::atomic::write_bytes_atomically;
use cellshift_data::h5ad::{self, PerturbationColumns, WriteOptions};
use cellshift_data::{ExpressionScale, PerturbationData};
use cellshift_prior::{
    combinatorial_suite, multi_context_suite, CombinatorialConfig, MultiContextConfig, SuiteScale,
};
use cellshift_prior::{
    normalize_dataset, simulate_knockouts_detailed, GrnDefaults, GrnSpec, KnockoutSelection,
    LinearScmConfig, LinearScmPrior, SergioPrior, SergioPriorConfig,
};

/// Which generator to use.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum PriorKind {
    /// Linear structural causal models with hard interventions (MapPFN spec §5).
    Linear,
    /// Random scale-free GRNs simulated with SERGIO, with knock-outs and technical noise (spec §6).
    Sergio,
}

/// A benchmark suite with known ground truth (see `cellshift bench suite`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SuiteKind {
    /// One SERGIO network (or --grns several) in C cell types (distinct master-regulator profiles), every
    /// single knock-out in each; contexts `grn<i>/ct<c>`.
    MultiContext,
    /// One SERGIO network, every single knock-out and a seeded sample of double knock-outs (`A+B`).
    Combinatorial,
}

/// Arguments of `cellshift simulate`.
#[derive(clap::Args)]
pub struct Args {
    /// Output `.h5ad`.
    #[arg(long)]
    pub out: PathBuf,
    /// Generator for random networks (ignored with --grn).
    #[arg(long, value_enum, default_value = "sergio")]
    pub prior: PriorKind,
    /// Simulate this network instead of a random one: the JSON network format, or a CSV edge list
    /// (regulator,target,K,n).
    #[arg(long)]
    pub grn: Option<PathBuf>,
    /// Simulate a benchmark suite instead (raw counts, statistics printed): multi-context or combinatorial.
    #[arg(long, value_enum, conflicts_with_all = ["grn", "log_normalize", "clean", "unpaired"])]
    pub suite: Option<SuiteKind>,
    /// Suite size: `tiny` (tests, CI) or `small`.
    #[arg(long, default_value = "tiny")]
    pub scale: String,
    /// Multi-context suite: networks (each in every cell type).
    #[arg(long, default_value_t = 1)]
    pub grns: usize,
    /// Multi-context suite: cell types per network (default: 3 tiny, 4 small).
    #[arg(long)]
    pub cell_types: Option<usize>,
    /// Combinatorial suite: double knock-outs to sample (default: 30 tiny, 100 small).
    #[arg(long)]
    pub doubles: Option<usize>,
    /// Suite: SERGIO steps between two sampled cells (longer = less autocorrelated cells; default: the
    /// suites' own).
    #[arg(long, requires = "suite")]
    pub scale_iter: Option<usize>,
    /// Suite: also write its statistics as JSON here.
    #[arg(long, requires = "suite")]
    pub stats: Option<PathBuf>,
    /// Knock-outs for --grn: `all`, or comma-separated gene names (the control is always simulated).
    #[arg(long, default_value = "all")]
    pub knockouts: String,
    /// Number of random networks (contexts) to simulate.
    #[arg(long, default_value_t = 1)]
    pub contexts: usize,
    /// Genes per random network (default: 20 for linear, 50 for SERGIO).
    #[arg(long)]
    pub genes: Option<usize>,
    /// Cells per condition (default: 500 for linear, 200 for SERGIO).
    #[arg(long)]
    pub cells: Option<usize>,
    /// Unpaired noise across conditions (SERGIO default is paired; linear default is unpaired).
    #[arg(long)]
    pub unpaired: bool,
    /// Paired noise for the linear prior.
    #[arg(long)]
    pub paired: bool,
    /// Write clean SERGIO expression (no technical noise, no counts).
    #[arg(long)]
    pub clean: bool,
    /// Seed; context i uses seed + i.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// gzip level for the output arrays (0–9).
    #[arg(long)]
    pub gzip: Option<u8>,
    /// SERGIO: normalise each network on its own, as the pre-training prior does (median total over the
    /// network's cells, then natural log1p), instead of writing raw counts.
    #[arg(long, conflicts_with = "clean")]
    pub log_normalize: bool,
}

/// Writes a simulated screen to `args.out` (context column `context`, dense `X`, optional gzip).
fn write_screen(data: &PerturbationData, args: &Args) -> anyhow::Result<()> {
    let columns = PerturbationColumns {
        context: Some("context".into()),
        ..PerturbationColumns::default()
    };
    h5ad::write_perturbation_data(
        &args.out,
        data,
        &columns,
        &WriteOptions {
            gzip: args.gzip,
            sparse_x: false,
        },
    )
    .with_context(|| format!("writing {}", args.out.display()))
}

/// Runs `cellshift simulate`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let inputs: Vec<&std::path::Path> = args.grn.iter().map(|p| p.as_path()).collect();
    let mut outputs = vec![Output::File(&args.out)];
    if let Some(path) = &args.stats {
        outputs.push(Output::File(path));
    }
    check_outputs(&inputs, &outputs)?;
    if let Some(kind) = args.suite {
        return run_suite(kind, &args);
    }
    let data = match &args.grn {
        Some(path) => simulate_user_grn(path, &args)?,
        None => simulate_random(&args)?,
    };
    write_screen(&data, &args)?;
    let kind = match data.scale {
        ExpressionScale::RawCounts => "raw counts",
        _ if matches!(args.prior, PriorKind::Linear) && args.grn.is_none() => {
            "standardised SCM values"
        }
        _ if args.log_normalize => {
            "counts normalised per network to the median total, natural log1p"
        }
        _ => "clean expression (no technical noise)",
    };
    println!(
        "wrote {}: {} cells × {} genes, {} contexts, {} treatments incl. control ({kind})",
        args.out.display(),
        data.n_cells(),
        data.n_genes(),
        data.contexts.len(),
        data.treatments.len(),
    );
    Ok(())
}

fn run_suite(kind: SuiteKind, args: &Args) -> anyhow::Result<()> {
    let scale = SuiteScale::parse(&args.scale)?;
    let started = Instant::now();
    let spinner = crate::progress::spinner("simulating the suite");
    let (data, discarded, stats, summary) = match kind {
        SuiteKind::MultiContext => {
            let defaults = MultiContextConfig::at_scale(scale, args.seed);
            let cfg = MultiContextConfig {
                n_grns: args.grns,
                n_cell_types: args.cell_types.unwrap_or(defaults.n_cell_types),
                n_genes: args.genes.unwrap_or(defaults.n_genes),
                n_cells: args.cells.unwrap_or(defaults.n_cells),
                scale_iter: args.scale_iter.unwrap_or(defaults.scale_iter),
                ..defaults
            };
            let suite = multi_context_suite(&cfg)?;
            let s = &suite.stats;
            let summary = format!(
                "{} contexts, {} knock-outs present in every cell type ({} with genes downstream); mean |Δ effect| {:.4} over all genes, {:.4} downstream; mean |Δ effect difference| between cell types {:.4} over all genes, {:.4} downstream = {:.1} × the noise floor {:.4} (genes not downstream)",
                s.n_contexts,
                s.n_knockouts,
                s.n_regulator_knockouts,
                s.mean_abs_effect,
                s.mean_abs_effect_downstream,
                s.mean_abs_between_contexts,
                s.mean_abs_between_contexts_downstream,
                s.ratio_to_noise,
                s.noise_floor,
            );
            let stats = serde_json::to_value(&suite.stats)?;
            (suite.data, suite.discarded, stats, summary)
        }
        SuiteKind::Combinatorial => {
            let defaults = CombinatorialConfig::at_scale(scale, args.seed);
            let cfg = CombinatorialConfig {
                n_genes: args.genes.unwrap_or(defaults.n_genes),
                n_cells: args.cells.unwrap_or(defaults.n_cells),
                n_doubles: args.doubles.unwrap_or(defaults.n_doubles),
                scale_iter: args.scale_iter.unwrap_or(defaults.scale_iter),
                ..defaults
            };
            let suite = combinatorial_suite(&cfg)?;
            let s = &suite.stats;
            let summary = format!(
                "{} singles, {} doubles; {} of {} doubles non-additive (fraction {:.3}: some gene with |Δ_AB − Δ_A − Δ_B| > {} standard errors, the SE² widened {:.1}× as {} placebo doubles measured); mean |Δ_AB| {:.4}, mean |interaction| {:.4}",
                s.n_singles,
                s.n_doubles,
                s.n_non_additive,
                s.n_doubles,
                s.non_additive_fraction,
                s.z_threshold,
                s.noise_inflation,
                s.n_placebo_doubles,
                s.mean_abs_double_effect,
                s.mean_abs_interaction
            );
            let stats = serde_json::to_value(&suite.stats)?;
            (suite.data, suite.discarded, stats, summary)
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    spinner.finish();
    write_screen(&data, args)?;
    if !discarded.is_empty() {
        eprintln!(
            "note: conditions discarded because a simulated cell had zero expression in every gene (the reference generator drops them): {}",
            discarded.join(", ")
        );
    }
    println!(
        "wrote {}: {} cells × {} genes, {} contexts, {} treatments incl. control (raw counts); simulated in {seconds:.2} s",
        args.out.display(),
        data.n_cells(),
        data.n_genes(),
        data.contexts.len(),
        data.treatments.len(),
    );
    println!("{summary}");
    if let Some(path) = &args.stats {
        let json = serde_json::json!({"seconds": seconds, "stats": stats});
        write_bytes_atomically(path, serde_json::to_string_pretty(&json)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn simulate_user_grn(path: &Path, args: &Args) -> anyhow::Result<PerturbationData> {
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let mut spec = if is_csv {
        let defaults = GrnDefaults {
            seed: args.seed,
            ..GrnDefaults::default()
        };
        GrnSpec::from_edge_csv(path, &defaults)?
    } else {
        GrnSpec::from_json(path)?
    };
    if let Some(cells) = args.cells {
        spec.num_cells = cells;
    }
    let selection = match args.knockouts.trim() {
        "all" => KnockoutSelection::All,
        list => KnockoutSelection::Genes(
            list.split(',')
                .map(|g| g.trim().to_string())
                .filter(|g| !g.is_empty())
                .collect(),
        ),
    };
    let spinner = crate::progress::spinner("simulating");
    let seed = spec.seed;
    let report = simulate_knockouts_detailed(&spec, &selection, seed, true)?;
    spinner.finish();
    if !report.discarded.is_empty() {
        eprintln!(
            "warning: knock-outs discarded because a simulated cell had zero expression in every gene before \
             technical noise (the reference generator drops such conditions): {}",
            report.discarded.join(", ")
        );
    }
    Ok(report.data)
}

fn simulate_random(args: &Args) -> anyhow::Result<PerturbationData> {
    if args.contexts == 0 {
        anyhow::bail!("--contexts must be at least 1");
    }
    let (genes, cells) = match args.prior {
        PriorKind::Linear => {
            let d = LinearScmConfig::default();
            (
                args.genes.unwrap_or(d.n_nodes),
                args.cells.unwrap_or(d.n_samples),
            )
        }
        PriorKind::Sergio => {
            let d = SergioPriorConfig::default();
            (
                args.genes.unwrap_or(d.n_genes),
                args.cells.unwrap_or(d.n_cells),
            )
        }
    };
    // Every gene is knocked out once, plus the control: (genes + 1) conditions of `cells` cells per
    // context, float32, held twice while the contexts are stacked.
    let bytes = (args.contexts as u64)
        .saturating_mul(genes as u64 + 1)
        .saturating_mul(cells as u64)
        .saturating_mul(genes as u64)
        .saturating_mul(8);
    crate::memory::check_fits(
        bytes,
        &format!(
            "simulating {} context(s) × {} conditions × {cells} cells × {genes} genes",
            args.contexts,
            genes + 1
        ),
        "lower --cells (cells per condition) or --genes",
    )?;
    let bar = crate::progress::bar(args.contexts as u64, "simulating networks");
    let mut parts = Vec::with_capacity(args.contexts);
    for i in 0..args.contexts {
        let seed = cellshift_data::seed::offset_seed(args.seed, i as u64);
        let context = format!("{:?}_{i}", args.prior).to_lowercase();
        let part = match args.prior {
            PriorKind::Linear => {
                let defaults = LinearScmConfig::default();
                let cfg = LinearScmConfig {
                    n_nodes: args.genes.unwrap_or(defaults.n_nodes),
                    n_samples: args.cells.unwrap_or(defaults.n_samples),
                    paired: args.paired,
                    ..defaults
                };
                LinearScmPrior::sample_named(&cfg, seed, &context)?
            }
            PriorKind::Sergio => {
                let defaults = SergioPriorConfig::default();
                let cfg = SergioPriorConfig {
                    n_genes: args.genes.unwrap_or(defaults.n_genes),
                    n_cells: args.cells.unwrap_or(defaults.n_cells),
                    paired: !args.unpaired,
                    technical_noise: !args.clean,
                    ..defaults
                };
                let raw = SergioPrior::sample_named(&cfg, seed, &context)?;
                if args.log_normalize {
                    normalize_dataset(
                        &raw,
                        Some(cellshift_data::preprocess::NormalizeTarget::MedianOfTotals),
                    )?
                } else {
                    raw
                }
            }
        };
        parts.push(part);
        bar.inc(1);
    }
    bar.finish();
    concat_contexts(parts)
}

/// Stacks data sets with the same genes (one per context) into one; cell names get the context prefix.
pub fn concat_contexts(parts: Vec<PerturbationData>) -> anyhow::Result<PerturbationData> {
    if parts.is_empty() {
        anyhow::bail!("nothing simulated");
    }
    Ok(PerturbationData::stack(parts, true)?)
}
