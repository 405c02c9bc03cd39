//! `cellshift simulate`: synthetic screens from the priors (linear SCM, random SERGIO GRN) or from a
//! user-supplied network, written as `.h5ad` (`obs`: context, perturbation, treatment_value).

use std::path::{Path, PathBuf};

use anyhow::Context;
use cellshift_data::h5ad::{self, PerturbationColumns, WriteOptions};
use cellshift_data::{ExpressionScale, PerturbationData};
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

/// Runs `cellshift simulate`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let data = match &args.grn {
        Some(path) => simulate_user_grn(path, &args)?,
        None => simulate_random(&args)?,
    };
    let columns = PerturbationColumns {
        context: Some("context".into()),
        ..PerturbationColumns::default()
    };
    h5ad::write_perturbation_data(
        &args.out,
        &data,
        &columns,
        &WriteOptions {
            gzip: args.gzip,
            sparse_x: false,
        },
    )
    .with_context(|| format!("writing {}", args.out.display()))?;
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
    spinner.finish_and_clear();
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
    let bar = crate::progress::bar(args.contexts as u64, "simulating networks");
    let mut parts = Vec::with_capacity(args.contexts);
    for i in 0..args.contexts {
        let seed = args.seed.wrapping_add(i as u64);
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
    bar.finish_and_clear();
    concat_contexts(parts)
}

/// Stacks data sets with the same genes (one per context) into one.
pub fn concat_contexts(parts: Vec<PerturbationData>) -> anyhow::Result<PerturbationData> {
    let first = parts
        .first()
        .ok_or_else(|| anyhow::anyhow!("nothing simulated"))?;
    if parts.len() == 1 {
        return Ok(parts.into_iter().next().expect("one part"));
    }
    let genes = first.genes.clone();
    let control = first.control_label.clone();
    let mut annotations = cellshift_data::CellAnnotations::default();
    let mut views = Vec::new();
    for part in &parts {
        if part.genes != genes {
            anyhow::bail!(
                "simulated contexts have different genes; use the same --genes for every context"
            );
        }
        let a = part.annotations();
        annotations.cell_names.extend(
            a.cell_names
                .iter()
                .map(|c| format!("{}:{c}", part.contexts[0])),
        );
        annotations.contexts.extend(a.contexts);
        annotations.treatment_labels.extend(a.treatment_labels);
        annotations.treatment_values.extend(a.treatment_values);
        views.push(part.x.view());
    }
    let x = ndarray::concatenate(ndarray::Axis(0), &views)?;
    Ok(PerturbationData::new(genes, x, annotations, &control)?)
}
